"""The ledger: which spool file the database holds (``spool_files``) and every attempt to
load one (``load_attempts``, append-only).  Reads and writes, in the caller's transaction.

``spool_files.outcome`` is what the file did the first time it counted: once a file has
*applied* its data the row says so for good; ``last_outcome`` is the latest load of it
(re-loading an applied file records ``unchanged`` there, never over ``outcome``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar, cast

import psycopg
from psycopg import sql

from etl.db.connect import classify, connect
from etl.db.schema import recorded_compression, schema_version
from etl.spooling.format import FileMeta

Conn = psycopg.Connection[Any]
_T = TypeVar("_T")

#: What loading a file did.  ``recovered``: found committed, only moved to ``loaded/``.
Outcome = Literal["applied", "unchanged", "superseded", "recovered"]
#: One row of ``load_attempts``.
AttemptOutcome = Literal["applied", "unchanged", "superseded", "recovered", "failed"]


@dataclass(frozen=True)
class Attempt:
    """One try at loading one spool file, as ``load_attempts`` stores it."""

    file_name: str
    outcome: AttemptOutcome
    started_at: datetime
    seconds: float
    meta: FileMeta | None = None  # None when the file's footer could not be read
    rows: int = 0
    file_bytes: int | None = None
    error: str | None = None
    sqlstate: str | None = None


# --- writes --------------------------------------------------------------------------


_ATTEMPT_INSERT = """INSERT INTO load_attempts (file_name, content_sha256, product, release,
        outcome, started_at, seconds, rows, file_bytes, json_bytes, error, sqlstate)
    VALUES (%(a_file)s, %(a_sha)s, %(a_product)s, %(a_release)s, %(a_outcome)s,
        %(a_started)s, %(a_seconds)s, %(a_rows)s, %(a_file_bytes)s, %(a_json_bytes)s,
        %(a_error)s, %(a_sqlstate)s)"""


def _attempt_params(attempt: Attempt) -> dict[str, Any]:
    meta = attempt.meta
    return {
        "a_file": attempt.file_name,
        "a_sha": meta and meta.content_sha256,
        "a_product": meta and meta.product,
        "a_release": meta and meta.release,
        "a_outcome": attempt.outcome,
        "a_started": attempt.started_at,
        "a_seconds": attempt.seconds,
        "a_rows": attempt.rows,
        "a_file_bytes": attempt.file_bytes,
        "a_json_bytes": meta and meta.json_bytes,
        "a_error": attempt.error,
        "a_sqlstate": attempt.sqlstate,
    }


def record_file(conn: Conn, meta: FileMeta, file_bytes: int, attempt: Attempt) -> None:
    """Insert or bump the file's ledger row and append ``attempt``, in one statement.

    An ``applied`` outcome is never replaced (``last_outcome`` has the latest load).
    """
    conn.execute(
        "WITH attempt AS (" + _ATTEMPT_INSERT + ")"
        """INSERT INTO spool_files AS s (file_name, content_sha256, product, release,
               updated_at, extracted_at, artifact_count, drop_count, json_bytes, file_bytes,
               outcome, last_outcome, seconds)
           VALUES (%(file)s, %(sha)s, %(product)s, %(release)s, %(updated_at)s,
               %(extracted_at)s, %(artifacts)s, %(drops)s, %(json_bytes)s, %(file_bytes)s,
               %(outcome)s, %(outcome)s, %(seconds)s)
           ON CONFLICT (file_name) DO UPDATE SET
               content_sha256 = EXCLUDED.content_sha256, extracted_at = EXCLUDED.extracted_at,
               artifact_count = EXCLUDED.artifact_count, drop_count = EXCLUDED.drop_count,
               json_bytes = EXCLUDED.json_bytes, file_bytes = EXCLUDED.file_bytes,
               outcome = CASE WHEN s.outcome = 'applied' THEN s.outcome
                              ELSE EXCLUDED.outcome END,
               last_outcome = EXCLUDED.last_outcome, seconds = EXCLUDED.seconds,
               last_loaded_at = now(), load_count = s.load_count + 1""",
        {"file": attempt.file_name, "sha": meta.content_sha256, "product": meta.product,
         "release": meta.release, "updated_at": meta.updated_at,
         "extracted_at": meta.extracted_at, "artifacts": meta.artifacts, "drops": meta.drops,
         "json_bytes": meta.json_bytes, "file_bytes": file_bytes, "outcome": attempt.outcome,
         "seconds": attempt.seconds, **_attempt_params(attempt)},
    )  # fmt: skip


def record_attempt(conn: Conn, attempt: Attempt) -> None:
    """Append one row to ``load_attempts`` (never updated, never deleted)."""
    conn.execute(_ATTEMPT_INSERT, _attempt_params(attempt))


# --- reads ---------------------------------------------------------------------------


def in_ledger(conn: Conn, file_name: str, content_sha256: str) -> bool:
    """Is this file (name and content) committed in the ledger?"""
    row = conn.execute(
        "SELECT 1 FROM spool_files WHERE file_name = %s AND content_sha256 = %s",
        [file_name, content_sha256],
    ).fetchone()
    return row is not None


def ledger_names(conn: Conn) -> set[str]:
    """Every spool file name the database has loaded (empty before the first migrate)."""
    if schema_version(conn) == 0:
        return set()
    return {row[0] for row in conn.execute("SELECT file_name FROM spool_files")}


def attempts(conn: Conn, file_name: str) -> list[dict[str, Any]]:
    """The file's ``load_attempts`` rows, oldest first."""
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute(
        "SELECT outcome, started_at, seconds, rows, file_bytes, json_bytes, error, sqlstate"
        " FROM load_attempts WHERE file_name = %s ORDER BY id",
        [file_name],
    ).fetchall()


def ledger_summary(conn: Conn) -> dict[str, Any]:
    """Schema version, ledger files by outcome, the last one loaded, table row counts."""
    version = schema_version(conn)
    out: dict[str, Any] = {"schema_version": version, "files": 0, "outcomes": {}}
    if version == 0:
        return out
    out["compression"] = recorded_compression(conn)
    for outcome, n in conn.execute("SELECT outcome, count(*) FROM spool_files GROUP BY 1"):
        out["outcomes"][outcome] = n
    out["files"] = sum(out["outcomes"].values())
    last = conn.execute(
        "SELECT file_name, last_loaded_at FROM spool_files"
        " ORDER BY last_loaded_at DESC, file_name DESC LIMIT 1"
    ).fetchone()
    out["last_file"] = last[0] if last else None
    out["last_loaded_at"] = last[1].isoformat() if last else None
    for table in ("releases", "artifacts", "drops"):
        got = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        ).fetchone()
        out[table] = got[0] if got else 0
    return out


def _read(conninfo: str, query: Callable[[Conn], _T]) -> _T:
    with connect(conninfo) as conn:
        try:
            return query(conn)
        except psycopg.Error as exc:
            raise classify(exc, conn, release="", path="") from exc


def summary(conninfo: str) -> dict[str, Any]:
    """:func:`ledger_summary` on a connection of its own (for ``status``; no writes)."""
    return _read(conninfo, ledger_summary)


def names(conninfo: str) -> set[str]:
    """:func:`ledger_names` on a connection of its own (for ``status``; no writes)."""
    return _read(conninfo, ledger_names)


def outcomes(conninfo: str, file_names: list[str], after: int = 0) -> dict[str, Outcome]:
    """The outcome of the last load of each named file among the attempts recorded after
    attempt ``after`` (:func:`last_attempt`), for ``enqueue --wait``: this run's outcomes,
    never an older load's (a file loaded before the run has none)."""

    def query(conn: Conn) -> dict[str, Outcome]:
        if schema_version(conn) == 0:
            return {}
        rows = conn.execute(
            """SELECT DISTINCT ON (file_name) file_name, outcome FROM load_attempts
               WHERE file_name = ANY(%s) AND id > %s AND outcome <> 'failed'
               ORDER BY file_name, id DESC""",
            [file_names, after],
        ).fetchall()
        return {name: cast(Outcome, outcome) for name, outcome in rows}

    return _read(conninfo, query)


def last_attempt(conninfo: str) -> int:
    """The id of the last load attempt recorded so far (0: none, or no tables yet)."""

    def query(conn: Conn) -> int:
        if schema_version(conn) == 0:
            return 0
        row = conn.execute("SELECT coalesce(max(id), 0) FROM load_attempts").fetchone()
        return int(row[0]) if row else 0

    return _read(conninfo, query)
