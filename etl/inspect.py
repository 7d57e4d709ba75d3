"""``inspect``: DuckDB over the spool files, without Postgres, read-only.

The spool hands over its files as an Arrow dataset (:meth:`Spool.dataset`), which DuckDB
scans in place, from a local folder or object storage alike.  Views (over the states
asked for, ``ready``, ``loading`` and ``loaded`` by default):

* ``artifacts``: one row per artifact, with ``state`` and ``file`` columns; the three JSON
  documents as text (use DuckDB's JSON functions: ``dependency_graph->'$.…'``);
* ``drops``: one row per wheel file, flattened, with the artifact's key columns;
* ``files``: one row per spool file, from its key-value metadata (no row data read).

Read-only by construction: only one ``SELECT`` (or ``WITH … SELECT``) statement is run,
and once the spool's data is registered DuckDB is locked down (no file system or network
access, no extension install or autoload, configuration locked), so ``COPY … TO``,
``ATTACH``, ``read_text('/etc/…')``, ``INSTALL`` and ``SET`` are refused (a
:class:`ConfigError`: exit 2).  A spool file whose footer cannot be read, whose columns
are not of the spool schema's types, or which would decode to more than load takes
(:mod:`etl.spooling.checks`) is skipped with a warning naming it; the rest of the state is
still shown.  Results are fetched in batches
and written as they come (:func:`write_json`), so memory does not grow with the spool.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import duckdb
import pyarrow as pa

from etl.errors import ConfigError, EtlError
from etl.spool import STATES, Spool, SpoolFile, SpoolName, SpoolState
from etl.spooling.format import SCHEMA, FileMeta
from etl.timestamps import format_ts

log = logging.getLogger(__name__)

DEFAULT_STATES: tuple[SpoolState, ...] = ("ready", "loading", "loaded")
BATCH_ROWS = 256  # rows fetched from DuckDB at a time
_LOCKDOWN = (
    "SET enable_external_access = false",
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET allow_community_extensions = false",
    "SET lock_configuration = true",
)
_ROWS = SCHEMA.append(pa.field("state", pa.string())).append(pa.field("file", pa.string()))
_FILES = pa.schema(
    [
        ("state", pa.string()),
        ("file", pa.string()),
        ("product", pa.string()),
        ("release", pa.string()),
        ("updated_at", pa.string()),
        ("extracted_at", pa.string()),
        ("artifacts", pa.int64()),
        ("drops", pa.int64()),
        ("json_bytes", pa.int64()),
        ("content_sha256", pa.string()),
    ]
)


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


@dataclass
class _Readable:
    files: list[SpoolFile] = field(default_factory=list)
    metas: list[FileMeta] = field(default_factory=list)


def _check(states: tuple[str, ...]) -> list[SpoolState]:
    out: list[SpoolState] = []
    for s in states:
        if s not in STATES:
            raise ConfigError(f"unknown state {s!r}; states are {', '.join(STATES)}")
        out.extend(st for st in STATES if st == s)
    return out


def _readable(spool: Spool, files: list[SpoolFile]) -> _Readable:
    """The files whose footer reads, whose columns have the spool schema's types and
    whose artifacts decode to a bounded size; each other one skipped with a warning naming
    it (one such file never breaks the views of the others)."""
    out = _Readable()
    for f in files:
        try:
            meta = spool.read_meta(f, bounded=True)
        except EtlError as exc:
            log.warning("skipped spool file %s/%s: %s", f.state, f.name, exc.message)
            continue
        out.files.append(f)
        out.metas.append(meta)
    return out


def _files_table(found: _Readable) -> pa.Table:
    rows = [
        {
            "state": f.state,
            "file": f.name,
            "product": m.product,
            "release": m.release,
            "updated_at": format_ts(m.updated_at),
            "extracted_at": format_ts(m.extracted_at),
            "artifacts": m.artifacts,
            "drops": m.drops,
            "json_bytes": m.json_bytes,
            "content_sha256": m.content_sha256,
        }
        for f, m in zip(found.files, found.metas, strict=True)
    ]
    return pa.Table.from_pylist(rows, schema=_FILES)


def connect(spool: Spool, states: tuple[str, ...] = DEFAULT_STATES) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the ``artifacts``, ``drops`` and ``files`` views, locked
    down (see the module docstring); empty states give the same columns, with no rows."""
    found = _readable(spool, [f for s in _check(states) for f in spool.files(s)])
    con = duckdb.connect()
    try:
        rows: Any = spool.dataset(found.files) if found.files else _ROWS.empty_table()
        con.register("spool_rows", rows)
        con.register("spool_files", _files_table(found))
        con.execute("CREATE VIEW artifacts AS SELECT * FROM spool_rows")
        con.execute(
            """CREATE VIEW drops AS
            SELECT product, release, architecture, variant, state, file,
                   UNNEST(drops, recursive := true)
            FROM artifacts"""
        )
        con.execute("CREATE VIEW files AS SELECT * FROM spool_files")
        for statement in _LOCKDOWN:
            con.execute(statement)
    except BaseException:
        con.close()
        raise
    return con


def _only_select(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """The one statement of ``sql`` if it is a query; :class:`ConfigError` otherwise."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise ConfigError(f"inspect --sql: {' '.join(str(exc).split())}") from exc
    if len(statements) != 1:
        raise ConfigError(f"inspect --sql takes exactly one statement, got {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise ConfigError(
            f"inspect --sql is read-only: only a SELECT query is allowed, not {kind.name}"
        )
    return sql


def _error(exc: BaseException) -> EtlError:
    text = " ".join(str(exc).split())
    if isinstance(exc, duckdb.PermissionException | duckdb.InvalidInputException):
        return ConfigError(f"inspect --sql is read-only, refused: {text}")
    return EtlError(f"query failed: {text}")


class Cursor:
    """A running query: its column names and its rows, streamed from DuckDB as Arrow
    record batches of :data:`BATCH_ROWS` rows (never the whole result at once)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, rel: duckdb.DuckDBPyRelation) -> None:
        self._con = con
        self.columns: list[str] = list(rel.columns)
        self._reader = rel.to_arrow_reader(BATCH_ROWS)

    def batches(self) -> Iterator[list[tuple[Any, ...]]]:
        try:
            for batch in self._reader:
                columns = [c.to_pylist() for c in batch.columns]
                yield list(zip(*columns, strict=True))
        except (duckdb.Error, pa.ArrowException) as exc:
            raise _error(exc) from exc

    def close(self) -> None:
        self._con.close()


def query(spool: Spool, sql: str, states: tuple[str, ...] = DEFAULT_STATES) -> Cursor:
    """Start ``sql`` (one SELECT) over the spool; the caller closes the :class:`Cursor`."""
    try:
        con = connect(spool, states)
    except (duckdb.Error, pa.ArrowException) as exc:
        raise _error(exc) from exc
    try:
        return Cursor(con, con.sql(_only_select(con, sql)))
    except (duckdb.Error, pa.ArrowException) as exc:
        con.close()
        raise _error(exc) from exc
    except BaseException:
        con.close()
        raise


def write_json(cur: Cursor, out: TextIO) -> int:
    """Write the rows as one JSON array, object by object as they are fetched; returns the
    number of rows."""
    n = 0
    out.write("[")
    for batch in cur.batches():
        for row in batch:
            out.write(",\n  " if n else "\n  ")
            out.write(json.dumps(dict(zip(cur.columns, row, strict=True)), default=str))
            n += 1
    out.write("\n]\n" if n else "]\n")
    return n


def run(
    spool: Spool,
    sql: str | None,
    states: tuple[str, ...] | None,
    *,
    as_json: bool,
    width: int,
    out: TextIO,
) -> None:
    """The ``inspect`` command: the summary, or ``sql``'s rows, as a table or JSON."""
    if sql is None:
        result = summary(spool)
        if as_json:
            out.write(json.dumps([dict(zip(result.columns, r, strict=True)) for r in result.rows],
                                 indent=2) + "\n")  # fmt: skip
        else:
            out.write(format_table(result, max_width=width) + "\n")
        return
    cur = query(spool, sql, states or DEFAULT_STATES)
    try:
        if as_json:
            write_json(cur, out)
        else:
            rows = [r for batch in cur.batches() for r in batch]
            out.write(format_table(QueryResult(cur.columns, rows), max_width=width) + "\n")
    finally:
        cur.close()


def summary(spool: Spool) -> QueryResult:
    """Files, releases, artifacts, drops and bytes per state (from metadata and sizes only)."""
    rows: list[tuple[Any, ...]] = []
    for state in STATES:
        files = spool.files(state)
        size = sum(f.size for f in files)
        artifacts = drops = bad = 0
        releases: set[str] = set()
        for f in files:
            try:
                meta = spool.read_meta(f)
            except EtlError:  # e.g. corrupt files in failed/: counted by name only
                bad += 1
                if _parses(f.name):
                    releases.add(f.parsed.release_key)
                continue
            releases.add(SpoolName.key(meta.product, meta.release))
            artifacts += meta.artifacts
            drops += meta.drops
        rows.append((state, len(files), len(releases), artifacts, drops, size, bad))
    return QueryResult(
        ["state", "files", "releases", "artifacts", "drops", "bytes", "unreadable"], rows
    )


def _parses(name: str) -> bool:
    try:
        SpoolName.parse(name)
    except EtlError:
        return False
    return True


def format_table(result: QueryResult, max_width: int = 60) -> str:
    """Plain fixed-width rendering for a terminal."""

    def cell(v: Any) -> str:
        text = "NULL" if v is None else str(v)
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    body = [[cell(v) for v in row] for row in result.rows]
    widths = [len(c) for c in result.columns]
    for row in body:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(result.columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in body]
    lines.append(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")
    return "\n".join(lines)
