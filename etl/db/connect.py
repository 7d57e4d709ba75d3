"""Connecting to PostgreSQL, and what a psycopg error means for the run.

* the server cannot be reached, restarts, drops the connection, has too many clients
  (SQLSTATE classes 08, 40, 53, 57, 58): :class:`TransientLoadError`, retried with backoff;
* the settings are wrong (unknown database or role, bad password, unparsable URL):
  :class:`ConfigError` (exit 2), nothing is retried;
* anything else the server rejects (a file's content): :class:`FatalLoadError`.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg

from etl.errors import ConfigError, FatalLoadError, LoadError, TransientLoadError

Conn = psycopg.Connection[Any]

_TRANSIENT_CLASSES = ("08", "40", "53", "57", "58")
#: Connection failures that no retry can fix: the settings are wrong.
_BAD_SETTINGS = re.compile(
    r"does not exist|authentication failed|no password supplied|pg_hba\.conf|"
    r"permission denied|invalid (connection option|dsn|integer value|sslmode|port)|"
    r"missing \"=\"|could not translate host name.*not known|invalid URI|invalid percent-encoded",
    re.IGNORECASE,
)


def connect(conninfo: str) -> Conn:
    """An autocommit connection; unreachable server → Transient, bad settings → Config."""
    try:
        return psycopg.connect(conninfo, autocommit=True)
    except psycopg.Error as exc:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if isinstance(exc, psycopg.ProgrammingError) or _BAD_SETTINGS.search(str(exc)):
            raise ConfigError(f"cannot connect to the database: {text}") from exc
        raise TransientLoadError(f"database unavailable: {text}") from exc


def classify(exc: psycopg.Error, conn: Conn | None, *, release: str, path: str) -> LoadError:
    """A psycopg error as Transient (Postgres went away) or Fatal (the content is bad)."""
    state = exc.sqlstate
    transient = (
        isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
        or (state is not None and state[:2] in _TRANSIENT_CLASSES)
        or (conn is not None and (conn.closed or conn.broken))
    )
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    message = f"{type(exc).__name__}: {lines[0]}"
    context = (getattr(exc.diag, "context", None) or "").splitlines()
    where = [c for c in context if c.startswith("COPY ")] or context[:1]
    if where:  # e.g. "COPY artifacts, line 3, column dependency_graph"
        message += f" ({where[0]})"
    cls = TransientLoadError if transient else FatalLoadError
    return cls(message, release=release, path=path, sqlstate=state)
