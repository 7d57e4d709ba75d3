"""Settings: a flag overrides its environment variable, which overrides the default.

Every setting is declared once, in :data:`OPTIONS`, as a :class:`click.Option`: its flag,
its ``ETL_*`` variable (``envvar=``), its default, its type (sizes take ``512KiB``,
durations ``90s`` / ``7d``: :mod:`etl.units` parses both) and its help; ``--help`` shows
the variable and the default (``show_envvar``, ``show_default``).  ``etl/cli.py`` puts
each option on its commands; :meth:`Settings.from_env` reads the same declarations for a
worker's task (no command line there), so a Kubernetes manifest can set anything a flag can.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import click

from etl.errors import ConfigError
from etl.protocol import MAX_ARTIFACT_BYTES
from etl.units import parse_duration, parse_size

Command = Literal[
    "extract", "load", "migrate", "status", "inspect", "replay", "prune", "db",
    "worker", "enqueue", "reconcile", "search", "diff", "why", "spool",
]  # fmt: skip


def sample_source() -> Path:
    """The sample collection shipped inside the package (``etl/sample_collection``): a
    folder beside this module (``importlib.resources`` gave the same path for the installs
    we support, for 5 ms of imports at every start)."""
    return Path(__file__).resolve().parent / "sample_collection"


#: Shipped sample collection, used when ``ETL_SOURCE_URL`` is not set.
SAMPLE_SOURCE = sample_source()


def _default_workers() -> int:
    return max(2, min(8, (os.cpu_count() or 2) * 2))


# --- parameter types -------------------------------------------------------------------


class _Parsed(click.ParamType[Any]):
    """A value parsed by an :mod:`etl.units` function (its ConfigError: a bad parameter)."""

    def __init__(self, name: str, parse: Callable[[str], Any]) -> None:
        self.name = name
        self._parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self._parse(value)
        except ConfigError as exc:
            self.fail(exc.message, param, ctx)


def _spool(text: str) -> str | Path:
    """A spool location: ``s3://bucket/prefix`` as given, a folder, or refused (``gs://``
    would otherwise become a local folder named ``gs:``)."""
    scheme, sep, _ = text.partition("://")
    if not sep:
        return Path(text)
    if scheme.lower() != "s3":
        raise ConfigError(
            f"unknown spool URL scheme {scheme!r}: use a folder or s3://bucket/prefix"
        )
    return text


def _database_url(text: str) -> str:
    """A Postgres URL (``postgresql://``, ``postgres://``) or ``key=value`` conninfo, as
    given; another scheme is refused here, for every command alike (``mysql://x`` would
    otherwise reach libpq, or only be shown by ``status`` and ``db url``)."""
    scheme, sep, _ = text.partition("://")
    if sep and scheme.lower() not in ("postgresql", "postgres"):
        raise ConfigError(
            f"unknown database URL scheme {scheme!r}: use postgresql://... or key=value conninfo"
        )
    return text


class _Names(click.ParamType[str]):
    """A name, repeatable as a flag; its variable is comma-separated."""

    name = "name"
    envvar_list_splitter = ","

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return str(value).strip()


def _positive_size(text: str) -> int:
    """A size of at least one byte (a cap or a limit of 0 would refuse everything)."""
    size = parse_size(text)
    if size < 1:
        raise ConfigError(f"size {text!r} must be at least 1 byte")
    return size


SIZE = _Parsed("size", _positive_size)
DURATION = _Parsed("duration", parse_duration)
SPOOL = _Parsed("spool", _spool)
DATABASE_URL = _Parsed("url", _database_url)
COUNT = click.IntRange(min=1)
PRODUCT = _Names()


# --- the option table ------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One setting: the :class:`Settings` field it fills, the commands that take its flag,
    and the click option that declares everything else."""

    field: str
    commands: tuple[Command, ...]
    option: click.Option
    to_field: Callable[[Any], Any] = lambda value: value

    @property
    def flag(self) -> str:
        return self.option.opts[0]

    @property
    def env(self) -> str:
        return str(self.option.envvar)

    def from_text(self, text: str) -> Any:
        """The field's value from its variable's text, as click converts it."""
        opt = self.option
        try:
            if opt.multiple:
                parts = [p for p in text.split(",") if p.strip()]
                value: Any = tuple(opt.type.convert(p, opt, None) for p in parts)
            else:
                value = (click.BOOL if opt.is_flag else opt.type).convert(text, opt, None)
        except click.BadParameter as exc:
            raise ConfigError(f"{self.env}: {exc.message}") from None
        return self.to_field(value)


def _option(flag: str, name: str, env: str, help_: str, **kw: Any) -> click.Option:
    kw.setdefault("show_default", True)
    return click.Option([flag, name], envvar=env, show_envvar=True, help=help_, **kw)


_FETCH: tuple[Command, ...] = ("extract", "enqueue", "worker")
_DB: tuple[Command, ...] = ("load", "migrate", "status", "replay", "db", "worker", "enqueue",
                            "search", "diff", "why")  # fmt: skip
_SPOOL: tuple[Command, ...] = (
    "extract", "load", "status", "inspect", "replay", "prune", "worker", "enqueue", "reconcile",
    "spool",
)  # fmt: skip
_EXTRACT: tuple[Command, ...] = ("extract",)
_LOAD: tuple[Command, ...] = ("load", "replay")

OPTIONS: tuple[Setting, ...] = (
    Setting("spool_dir", _SPOOL, _option(
        "--spool", "spool_dir", "ETL_SPOOL_DIR", "spool folder, or s3://bucket/prefix",
        type=SPOOL, default="./spool", metavar="PATH")),
    Setting("database_url", _DB, _option(
        "--database-url", "database_url", "DATABASE_URL",
        "Postgres conninfo or URL; unset: the embedded server", type=DATABASE_URL,
        show_default="embedded", metavar="URL")),
    Setting("source_url", _FETCH, _option(
        "--source", "source_url", "ETL_SOURCE_URL",
        "base URL (http(s)://, file://) or folder of the source",
        show_default="the shipped sample collection", metavar="URL")),
    Setting("products", _FETCH, _option(
        "--product", "products", "ETL_PRODUCTS",
        "only this product (repeatable; the variable is comma-separated)", type=PRODUCT,
        multiple=True, show_default="all", metavar="NAME")),
    Setting("workers", _EXTRACT, _option(
        "--workers", "workers", "ETL_WORKERS", "parallel fetches", type=COUNT,
        default=_default_workers, show_default="2 x CPUs, 2..8", metavar="N")),
    Setting("full", _FETCH, _option(
        "--full", "full", "ETL_FULL", "re-extract even unchanged releases", is_flag=True,
        show_default="off")),
    Setting("max_file_bytes", _EXTRACT, _option(
        "--max-file-bytes", "max_file_bytes", "ETL_MAX_FILE_BYTES",
        "size limit per document (larger fails its release; an artifact's documents and"
        f" drops together: at most the {MAX_ARTIFACT_BYTES // 2**20}MiB load takes)", type=SIZE,
        default=f"{MAX_ARTIFACT_BYTES // 2**20}MiB", metavar="SIZE")),
    Setting("max_inflight_bytes", _EXTRACT, _option(
        "--max-inflight-bytes", "max_inflight_bytes", "ETL_MAX_INFLIGHT_BYTES",
        "fetched bytes held in memory by all workers (peak: this plus one artifact's files)",
        type=SIZE, default="512MiB", metavar="SIZE")),
    Setting("spool_compression", ("extract", "worker"), _option(
        "--spool-compression", "spool_compression", "ETL_SPOOL_COMPRESSION",
        "codec of new spool files: lz4 costs the least CPU, zstd about 0.6x the disk",
        type=click.Choice(["lz4", "zstd"]), default="lz4")),
    Setting("retries", _EXTRACT, _option(
        "--retries", "retries", "ETL_RETRIES", "attempts per document on transient errors",
        type=COUNT, default=5, metavar="N")),
    Setting("retry_max_seconds", _EXTRACT, _option(
        "--retry-max-seconds", "retry_max_seconds", "ETL_RETRY_MAX_SECONDS",
        "total time spent retrying one document", type=DURATION, default="120s",
        metavar="DURATION")),
    Setting("connect_timeout", _EXTRACT, _option(
        "--connect-timeout", "connect_timeout", "ETL_CONNECT_TIMEOUT",
        "TCP/TLS connect timeout", type=DURATION, default="10s", metavar="DURATION")),
    Setting("read_timeout", _EXTRACT, _option(
        "--read-timeout", "read_timeout", "ETL_READ_TIMEOUT",
        "longest silence while reading a response", type=DURATION, default="60s",
        metavar="DURATION")),
    Setting("document_timeout", _EXTRACT, _option(
        "--document-timeout", "document_timeout", "ETL_DOCUMENT_TIMEOUT",
        "overall time for one document, retries included (a slow-drip server ends here)",
        type=DURATION, default="10m", metavar="DURATION")),
    Setting("ca_bundle", _EXTRACT, _option(
        "--ca-bundle", "ca_bundle", "ETL_CA_BUNDLE", "CA bundle for TLS verification",
        show_default="system CAs", metavar="FILE")),
    Setting("verify_tls", _EXTRACT, _option(
        "--insecure", "insecure", "ETL_INSECURE", "do not verify TLS certificates",
        is_flag=True, show_default="off"), to_field=lambda insecure: not insecure),
    Setting("load_workers", _LOAD, _option(
        "--workers", "load_workers", "ETL_LOAD_WORKERS",
        "parallel connections, each file still one transaction", type=COUNT, default=1,
        metavar="N")),
    Setting("load_retry_seconds", _LOAD, _option(
        "--retry-seconds", "load_retry_seconds", "ETL_LOAD_RETRY_SECONDS",
        "how long to retry an unavailable database before giving up", type=DURATION,
        default="60s", metavar="DURATION")),
    Setting("lease_seconds", _LOAD, _option(
        "--lease-seconds", "lease_seconds", "ETL_SPOOL_LEASE_SECONDS",
        "s3:// spool: a claim not renewed for this long is an orphan (loads renew it)",
        type=DURATION, default="900", metavar="DURATION")),
    Setting("notes_max_age", ("prune", "reconcile"), _option(
        "--notes-max-age", "notes_max_age", "ETL_RUN_NOTES_MAX_AGE",
        "run notes of enqueue runs (state/run~*) older than this are deleted", type=DURATION,
        default="7d", metavar="DURATION")),
)  # fmt: skip


def options_for(command: Command) -> tuple[Setting, ...]:
    return tuple(s for s in OPTIONS if command in s.commands)


def _default(setting: Setting) -> Any:
    """A field's default, from its option's declaration."""
    default = setting.option.default
    value = default() if callable(default) else default
    return setting.to_field(setting.option.type.convert(value, setting.option, None))


_DEFAULTS = {s.field: _default(s) for s in OPTIONS if isinstance(s.option.default, str | int)}


# --- the settings ------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know; built once by ``cli.py`` (or a worker task).
    Defaults come from :data:`OPTIONS`."""

    source_url: str = ""
    source_token: str | None = field(default=None, repr=False)
    spool_dir: str | Path = _DEFAULTS["spool_dir"]  # a folder, or s3://bucket/prefix
    database_url: str | None = field(default=None, repr=False)
    products: tuple[str, ...] = ()
    workers: int = field(default_factory=_default_workers)
    #: Cap on response bytes held in memory across all fetch workers.
    max_inflight_bytes: int = _DEFAULTS["max_inflight_bytes"]
    max_file_bytes: int = _DEFAULTS["max_file_bytes"]
    spool_compression: str = _DEFAULTS["spool_compression"]  # spooling.format.COMPRESSIONS
    retries: int = _DEFAULTS["retries"]
    retry_max_seconds: float = _DEFAULTS["retry_max_seconds"]
    connect_timeout: float = _DEFAULTS["connect_timeout"]
    read_timeout: float = _DEFAULTS["read_timeout"]
    #: Overall time for one document, retries included (a slow-drip server ends here).
    document_timeout: float = _DEFAULTS["document_timeout"]
    ca_bundle: str | None = None
    verify_tls: bool = True
    full: bool = False
    load_workers: int = _DEFAULTS["load_workers"]
    load_retry_seconds: float = _DEFAULTS["load_retry_seconds"]
    #: Object-storage spool: a claim whose lease was not renewed for this long is an orphan.
    lease_seconds: float = _DEFAULTS["lease_seconds"]
    #: Run notes (``state/run~*``) older than this are deleted by prune and reconcile.
    notes_max_age: float = _DEFAULTS["notes_max_age"]

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
        for setting in OPTIONS:
            raw = env.get(setting.env)
            if raw and setting.field in names:
                values[setting.field] = setting.from_text(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)


#: Variables read outside :data:`OPTIONS` (secrets and process-wide switches); the
#: workers' own are declared in :mod:`etl.workers.settings`.
OTHER_VARIABLES: dict[str, str] = {
    "ETL_SOURCE_TOKEN": "bearer token for the source; sent to its own origin only, never logged",
    "ETL_LOG_FORMAT": "log line format: text (default) or json",
    "ETL_LOG_LEVEL": "quiet, normal (default), verbose or debug (like -q, -v, -vv)",
    "ETL_EMBEDDED_PG_DIR": "embedded PostgreSQL data folder (default: per-user data folder)",
}

#: Read by the code for its tests only: never shown in --help or the README.
TEST_ONLY_VARIABLES: dict[str, str] = {
    "ETL_CRASH_AT": "kill the process at a named point (etl/crashpoint.py)",
}


def worker_variables() -> tuple[str, ...]:
    """Variables a worker reads with no ``worker`` flag of their own: each task reads the
    extract settings from the worker's environment (``Settings.from_env``)."""
    flags = {s.env for s in options_for("worker")}
    return tuple(s.env for s in OPTIONS if "extract" in s.commands and s.env not in flags)
