"""wheels-etl: source -> Parquet spool -> Postgres, crash-proof and with flat memory."""

import os
from importlib.metadata import PackageNotFoundError, version

# Arrow's allocator: the C library's, which gives freed memory back.  pyarrow's default
# (mimalloc) keeps the pages of freed buffers for reuse; extract builds and frees one
# release's tables at a time in several threads, and kept about 20 MB more resident with
# it (benchmarks/FINDINGS.md, "Arrow's allocator").  Arrow reads this when it loads, so it
# is set here, before any module imports pyarrow; a value the user set wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

try:
    __version__ = version("wheels-etl")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
