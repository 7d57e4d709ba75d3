"""Connecting to PostgreSQL, and what a psycopg error means for the run.

An error the server sent carries a SQLSTATE, and its *class* alone decides:

* ``08`` connection exception, ``40`` transaction rollback (serialization failure,
  deadlock), ``53`` insufficient resources (disk full, out of memory, too many clients),
  ``57P`` operator intervention (shutdown, crash, starting up, database dropped):
  :class:`TransientLoadError` (retryable: the file goes back to ``ready``, retried with
  backoff);
* every other class -- ``22`` data exception, ``23`` integrity constraint, ``54`` program
  limit exceeded (a jsonb value too large, a too deeply nested document, an index row too
  big), ``57014`` query cancelled, ``58`` system error, ... -- :class:`FatalLoadError`:
  the file's content cannot be loaded as it is, it goes to ``failed/``.  (psycopg files
  class 54 under ``OperationalError``, which is why the exception class is not asked.)

An error without a SQLSTATE was not sent by the server: psycopg lost the connection (an
``OperationalError`` / ``InterfaceError``, or the connection reads closed or broken) --
retryable -- or refused a value before sending it (fatal).

Connecting: libpq reports a failed connection attempt without a SQLSTATE, so
:func:`connect` decides "bad settings" (:class:`ConfigError`, exit 2, never retried) from
what psycopg exposes -- the conninfo does not parse (``ProgrammingError``), libpq's
``PQping`` says it made no attempt (the options are wrong), the server wants a password
none was given for, the port is no number, the host name does not exist (``EAI_NONAME``)
-- and, for the server's refusals during start-up
(unknown database or role, password or ``pg_hba.conf`` rejection), from the only thing
libpq gives: its message (:data:`_STARTUP_REFUSAL`).  Anything else is the server being
unreachable: :class:`TransientLoadError`.
"""

from __future__ import annotations

import re
import socket
from typing import Any

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

from etl.errors import ConfigError, FatalLoadError, LoadError, TransientLoadError

Conn = psycopg.Connection[Any]

#: SQLSTATE prefixes of the errors worth retrying (see the module's docstring).
RETRYABLE_SQLSTATES = ("08", "40", "53", "57P")

#: The server's refusals while a connection starts (3D000 unknown database, 28000 unknown
#: role or pg_hba.conf, 28P01 bad password, 42501 no CONNECT privilege).  A regex only
#: because libpq exposes no SQLSTATE for a failed connection attempt; the retryable
#: refusals of that moment (53300 too many clients, 57P03 starting up) do not match.
_STARTUP_REFUSAL = re.compile(
    r"does not exist|authentication failed|pg_hba\.conf|permission denied", re.IGNORECASE
)


def retryable_sqlstate(sqlstate: str) -> bool:
    """True for the SQLSTATE classes that say "the server, not the data": 08, 40, 53, 57P."""
    return sqlstate.startswith(RETRYABLE_SQLSTATES)


def connect(conninfo: str) -> Conn:
    """An autocommit connection; unreachable server → Transient, bad settings → Config."""
    try:
        return psycopg.connect(conninfo, autocommit=True)
    except psycopg.Error as exc:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if _bad_settings(exc, conninfo):
            raise ConfigError(f"cannot connect to the database: {text}") from exc
        raise TransientLoadError(f"database unavailable: {text}") from exc


def _bad_settings(exc: psycopg.Error, conninfo: str) -> bool:
    """Is this failed connection attempt the settings' fault (see the module docstring)?"""
    if isinstance(exc, psycopg.ProgrammingError):  # the conninfo does not parse
        return True
    if exc.pgconn is not None and exc.pgconn.needs_password:
        return True
    params = conninfo_to_dict(conninfo)
    if _bad_port(params) or _unknown_host(params):
        return True
    ping = pq.Ping(pq.PGconn.ping(conninfo.encode()))
    if ping == pq.Ping.NO_ATTEMPT:  # libpq: "the parameters are obviously incorrect"
        return True
    # The server is up and refused us: who we are (settings) or how busy it is (retry)?
    return ping == pq.Ping.OK and bool(_STARTUP_REFUSAL.search(str(exc)))


def _bad_port(params: dict[str, Any]) -> bool:
    """libpq checks a port only when it connects, and then says "no response"."""
    for port in str(params.get("port") or "").split(","):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            return True
    return False


def _unknown_host(params: dict[str, Any]) -> bool:
    """A host name the resolver says does not exist (``EAI_NONAME``; a resolver that is
    down, ``EAI_AGAIN``, is worth retrying).  psycopg resolves names itself and keeps
    only the message, so the name is asked again here."""
    hosts = str(params.get("host") or "").split(",")
    for host in hosts:
        if not host or host.startswith("/") or _is_address(host):
            continue
        try:
            socket.getaddrinfo(host, None)
        except socket.gaierror as err:
            if err.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
                return True
    return False


def _is_address(host: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except OSError:
            continue
    return False


def statement_error(exc: psycopg.Error) -> psycopg.Error:
    """The error of the statement that failed, for one raised in pipeline mode: psycopg
    raises ``PipelineAborted`` (an ``OperationalError`` without SQLSTATE) for the
    statements the server then skipped, over the failed statement's own error."""
    while isinstance(exc, psycopg.errors.PipelineAborted) and isinstance(
        exc.__context__, psycopg.Error
    ):
        exc = exc.__context__
    return exc


def classify(exc: psycopg.Error, conn: Conn | None, *, release: str, path: str) -> LoadError:
    """A psycopg error as Transient (Postgres went away) or Fatal (the content is bad)."""
    exc = statement_error(exc)
    state = exc.sqlstate
    if state:
        transient = retryable_sqlstate(state)
    else:  # not from the server: the connection was lost, or psycopg refused a value
        transient = isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) or (
            conn is not None and (conn.closed or conn.broken)
        )
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    message = f"{type(exc).__name__}: {lines[0]}"
    context = (getattr(exc.diag, "context", None) or "").splitlines()
    where = [c for c in context if c.startswith("COPY ")] or context[:1]
    if where:  # e.g. "COPY artifacts, line 3, column dependency_graph"
        message += f" ({where[0]})"
    cls = TransientLoadError if transient else FatalLoadError
    return cls(message, release=release, path=path, sqlstate=state)
