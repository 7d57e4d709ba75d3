"""wheels-etl: source -> Parquet spool -> Postgres, crash-proof and with flat memory."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("wheels-etl")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
