"""Settings: a flag overrides its environment variable, which overrides the default.

Every setting is declared once, in :data:`OPTIONS`: its field, its environment variable,
its flag, how its text is parsed (sizes take ``10MiB``, durations take ``90s`` / ``7d``),
and its help.  ``cli.py`` builds each command's flags from this table and ``--help`` shows
each flag's default and variable from it, so a Kubernetes manifest can set anything a flag
can.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from etl.errors import ConfigError
from etl.units import (
    parse_bool,
    parse_choice,
    parse_duration,
    parse_int,
    parse_list,
    parse_size,
    parse_str,
)

Command = Literal[
    "extract", "load", "migrate", "status", "inspect", "replay", "prune", "db",
    "worker", "enqueue", "reconcile", "search", "diff", "why", "spool",
]  # fmt: skip

DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024


def sample_source() -> Path:
    """The sample collection shipped inside the package (``etl/sample_collection``)."""
    return Path(str(resources.files("etl") / "sample_collection"))


#: Shipped sample collection, used when ``ETL_SOURCE_URL`` is not set.
SAMPLE_SOURCE = sample_source()


def _default_workers() -> int:
    return max(2, min(8, (os.cpu_count() or 2) * 2))


# --- the settings --------------------------------------------------------------------
def _spool(text: str) -> str | Path:
    """A spool location: ``s3://bucket/prefix`` as given, anything else a folder."""
    return text if "://" in text else Path(text)


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know; built once by ``cli.py`` (or a worker task)."""

    source_url: str = ""
    source_token: str | None = field(default=None, repr=False)
    spool_dir: str | Path = Path("spool")  # a folder, or s3://bucket/prefix
    database_url: str | None = field(default=None, repr=False)
    products: tuple[str, ...] = ()
    workers: int = field(default_factory=_default_workers)
    #: Cap on response bytes held in memory across all fetch workers.
    max_inflight_bytes: int = 512 * 1024 * 1024
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    spool_compression: str = "lz4"  # spooling.format.COMPRESSIONS
    retries: int = 5
    retry_max_seconds: float = 120.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    #: Overall time for one document, retries included (a slow-drip server ends here).
    document_timeout: float = 600.0
    ca_bundle: str | None = None
    verify_tls: bool = True
    full: bool = False
    load_workers: int = 1
    load_retry_seconds: float = 60.0
    #: Object-storage spool: a claim whose lease was not renewed for this long is an orphan.
    lease_seconds: float = 900.0
    #: Run notes (``state/run~*``) older than this are deleted by prune and reconcile.
    notes_max_age: float = 7 * 86400.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then every option's environment variable, then ``overrides`` (flags;
        ``None`` means "not given")."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {
            "source_url": str(SAMPLE_SOURCE),
            "source_token": env.get("ETL_SOURCE_TOKEN") or None,
        }
        names = {f.name for f in fields(cls)}
        for opt in OPTIONS:
            raw = env.get(opt.env) if opt.env else None
            if raw is not None and raw != "" and opt.field in names:
                try:
                    values[opt.field] = opt.convert(raw)
                except ConfigError as exc:
                    raise ConfigError(f"{opt.env}: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = replace(cls(), **values)
        settings.validate()
        return settings

    def validate(self) -> None:
        positive = {
            "workers": ("--workers", self.workers),
            "load_workers": ("load --workers", self.load_workers),
            "max_file_bytes": ("--max-file-bytes", self.max_file_bytes),
            "max_inflight_bytes": ("--max-inflight-bytes", self.max_inflight_bytes),
            "retries": ("--retries", self.retries),
        }
        for flag, value in positive.values():
            if value < 1:
                raise ConfigError(f"{flag} must be at least 1, got {value}")
        for flag, seconds in (
            ("--retry-seconds", self.load_retry_seconds),
            ("--lease-seconds", self.lease_seconds),
            ("--notes-max-age", self.notes_max_age),
            ("--retry-max-seconds", self.retry_max_seconds),
            ("--connect-timeout", self.connect_timeout),
            ("--read-timeout", self.read_timeout),
            ("--document-timeout", self.document_timeout),
        ):
            if not math.isfinite(seconds) or seconds < 0:
                raise ConfigError(f"{flag} must be a finite number of seconds >= 0, got {seconds}")


# --- the option table ------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One setting: where it lives (``field`` of :class:`Settings`, or a command argument),
    its environment variable and flag, its parser and its help."""

    field: str
    flag: str
    env: str | None
    convert: Callable[[str], Any]
    help: str
    commands: tuple[Command, ...]
    default: str = ""  # as shown in --help
    metavar: str | None = None
    repeat: bool = False  # a flag given several times (the variable is comma-separated)
    switch: bool = False  # a flag without a value (the variable is 1/0, true/false)


_FETCH: tuple[Command, ...] = ("extract", "enqueue", "worker")
_DB: tuple[Command, ...] = ("load", "migrate", "status", "replay", "db", "worker", "enqueue",
                            "search", "diff", "why")  # fmt: skip
_SPOOL: tuple[Command, ...] = (
    "extract", "load", "status", "inspect", "replay", "prune", "worker", "enqueue", "reconcile",
    "spool",
)  # fmt: skip

OPTIONS: tuple[Option, ...] = (
    Option(
        "spool_dir",
        "--spool",
        "ETL_SPOOL_DIR",
        _spool,
        "spool folder (or s3://bucket/prefix)",
        _SPOOL,
        "./spool",
        "PATH",
    ),
    Option(
        "database_url",
        "--database-url",
        "DATABASE_URL",
        parse_str,
        "Postgres conninfo or URL; unset: the embedded server",
        _DB,
        "embedded",
        "URL",
    ),
    Option(
        "source_url",
        "--source",
        "ETL_SOURCE_URL",
        parse_str,
        "base URL (http(s)://, file://) or folder of the source",
        _FETCH,
        "the shipped sample collection",
        "URL",
    ),
    Option(
        "products",
        "--product",
        "ETL_PRODUCTS",
        parse_list,
        "only this product (repeatable; the variable is comma-separated)",
        _FETCH,
        "all",
        "NAME",
        repeat=True,
    ),
    Option(
        "workers",
        "--workers",
        "ETL_WORKERS",
        parse_int,
        "parallel fetches",
        ("extract",),
        "2 x CPUs, 2..8",
        "N",
    ),
    Option(
        "full",
        "--full",
        "ETL_FULL",
        parse_bool,
        "re-extract even unchanged releases",
        _FETCH,
        "off",
        switch=True,
    ),
    Option(
        "max_file_bytes",
        "--max-file-bytes",
        "ETL_MAX_FILE_BYTES",
        parse_size,
        "size limit per document (larger fails its release)",
        ("extract",),
        "256MiB",
        "SIZE",
    ),
    Option(
        "max_inflight_bytes",
        "--max-inflight-bytes",
        "ETL_MAX_INFLIGHT_BYTES",
        parse_size,
        "fetched bytes held in memory by all workers (peak: this plus one artifact's files)",
        ("extract",),
        "512MiB",
        "SIZE",
    ),
    Option(
        "spool_compression",
        "--spool-compression",
        "ETL_SPOOL_COMPRESSION",
        parse_choice("lz4", "zstd"),
        "codec of new spool files: lz4 costs the least CPU, zstd about 0.6x the disk",
        ("extract", "worker"),
        "lz4",
        "CODEC",
    ),
    Option(
        "retries",
        "--retries",
        "ETL_RETRIES",
        parse_int,
        "attempts per document on transient errors",
        ("extract",),
        "5",
        "N",
    ),
    Option(
        "retry_max_seconds",
        "--retry-max-seconds",
        "ETL_RETRY_MAX_SECONDS",
        parse_duration,
        "total time spent retrying one document",
        ("extract",),
        "120s",
        "DURATION",
    ),
    Option(
        "connect_timeout",
        "--connect-timeout",
        "ETL_CONNECT_TIMEOUT",
        parse_duration,
        "TCP/TLS connect timeout",
        ("extract",),
        "10s",
        "DURATION",
    ),
    Option(
        "read_timeout",
        "--read-timeout",
        "ETL_READ_TIMEOUT",
        parse_duration,
        "longest silence while reading a response",
        ("extract",),
        "60s",
        "DURATION",
    ),
    Option(
        "document_timeout",
        "--document-timeout",
        "ETL_DOCUMENT_TIMEOUT",
        parse_duration,
        "overall time for one document, retries included",
        ("extract",),
        "10m",
        "DURATION",
    ),
    Option(
        "ca_bundle",
        "--ca-bundle",
        "ETL_CA_BUNDLE",
        parse_str,
        "CA bundle for TLS verification",
        ("extract",),
        "system CAs",
        "FILE",
    ),
    Option(
        "verify_tls",
        "--insecure",
        "ETL_INSECURE",
        lambda t: not parse_bool(t),
        "do not verify TLS certificates",
        ("extract",),
        "off",
        switch=True,
    ),
    Option(
        "load_workers",
        "--workers",
        "ETL_LOAD_WORKERS",
        parse_int,
        "parallel connections, each file still one transaction",
        ("load", "replay"),
        "1",
        "N",
    ),
    Option(
        "load_retry_seconds",
        "--retry-seconds",
        "ETL_LOAD_RETRY_SECONDS",
        parse_duration,
        "how long to retry an unavailable database before giving up",
        ("load", "replay"),
        "60s",
        "DURATION",
    ),
    Option(
        "lease_seconds",
        "--lease-seconds",
        "ETL_SPOOL_LEASE_SECONDS",
        parse_duration,
        "s3:// spool: a claim not renewed for this long is an orphan (loads renew it)",
        ("load", "replay"),
        "900",
        "DURATION",
    ),
    Option(
        "notes_max_age",
        "--notes-max-age",
        "ETL_RUN_NOTES_MAX_AGE",
        parse_duration,
        "run notes of enqueue runs (state/run~*) older than this are deleted",
        ("prune", "reconcile"),
        "7d",
        "DURATION",
    ),
)

#: Variables read outside :data:`OPTIONS` (secrets and process-wide switches).
OTHER_VARIABLES: dict[str, str] = {
    "ETL_SOURCE_TOKEN": "bearer token for the source; sent to its own origin only, never logged",
    "ETL_LOG_FORMAT": "log line format: text (default) or json",
    "ETL_LOG_LEVEL": "quiet, normal (default), verbose or debug (like -q, -v, -vv)",
    "ETL_EMBEDDED_PG_DIR": "embedded PostgreSQL data folder (default: per-user data folder)",
    # Celery workers (etl.workers.settings reads these)
    "ETL_BROKER_URL": "Celery broker: redis://host:6379/0 or amqp://user:pass@host:5672//",
    "ETL_BROKER_VISIBILITY_TIMEOUT": "Redis: seconds before an unacknowledged task is "
    "delivered again (default 60)",
    "ETL_QUEUE": "Celery queue name (default wheels-etl)",
    "ETL_TASK_MAX_RETRIES": "retries of a task after a transient error (default 5)",
    "ETL_RECONCILE_INTERVAL": "seconds between periodic reconciles under celery beat (300)",
    "ETL_WAIT_POLL_SECONDS": "how often enqueue --wait looks at the spool (default 1)",
}


#: Read by the code for its tests only: never shown in --help or the README.
TEST_ONLY_VARIABLES: dict[str, str] = {
    "ETL_CRASH_AT": "kill the process at a named point (etl/crashpoint.py)",
}


def worker_variables() -> tuple[str, ...]:
    """Variables a worker reads with no ``worker`` flag of their own: each task reads the
    extract settings from the worker's environment (``Settings.from_env``)."""
    flags = {o.env for o in options_for("worker")}
    return tuple(o.env for o in OPTIONS if o.env and "extract" in o.commands and o.env not in flags)


def options_for(command: Command) -> tuple[Option, ...]:
    return tuple(o for o in OPTIONS if command in o.commands)
