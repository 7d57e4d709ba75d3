"""``inspect``: DuckDB over the spool files, without Postgres.

The spool hands over its files as an Arrow dataset (:meth:`Spool.dataset`), which DuckDB
scans in place, from a local folder or object storage alike.  Views (over the states
asked for, ``ready``, ``loading`` and ``loaded`` by default):

* ``artifacts``: one row per artifact, with ``state`` and ``file`` columns; the three JSON
  documents as text (use DuckDB's JSON functions: ``dependency_graph->'$.…'``);
* ``drops``: one row per wheel file, flattened, with the artifact's key columns;
* ``files``: one row per spool file, from its key-value metadata (no row data read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from etl.errors import ConfigError, EtlError
from etl.spool import STATES, Spool, SpoolFile, SpoolName, SpoolState
from etl.spoolformat import format_ts

DEFAULT_STATES: tuple[SpoolState, ...] = ("ready", "loading", "loaded")
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


def _check(states: tuple[str, ...]) -> list[SpoolState]:
    out: list[SpoolState] = []
    for s in states:
        if s not in STATES:
            raise ConfigError(f"unknown state {s!r}; states are {', '.join(STATES)}")
        out.extend(st for st in STATES if st == s)
    return out


def _files_table(spool: Spool, files: list[SpoolFile]) -> pa.Table:
    rows = []
    for f in files:
        m = spool.read_meta(f)
        rows.append(
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
        )
    return pa.Table.from_pylist(rows, schema=_FILES)


def connect(spool: Spool, states: tuple[str, ...] = DEFAULT_STATES) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the ``artifacts``, ``drops`` and ``files`` views."""
    files = [f for s in _check(states) for f in spool.files(s)]
    con = duckdb.connect()
    if not files:
        con.execute(
            "CREATE VIEW artifacts AS SELECT NULL::VARCHAR AS product, NULL::VARCHAR AS release,"
            " NULL::VARCHAR AS architecture, NULL::VARCHAR AS variant, NULL::VARCHAR AS state,"
            " NULL::VARCHAR AS file WHERE false"
        )
        con.execute("CREATE VIEW drops AS SELECT * FROM artifacts")
        con.execute("CREATE VIEW files AS SELECT * FROM artifacts")
        return con
    con.register("spool_rows", spool.dataset(files))
    con.register("spool_files", _files_table(spool, files))
    con.execute("CREATE VIEW artifacts AS SELECT * FROM spool_rows")
    con.execute(
        """CREATE VIEW drops AS
        SELECT product, release, architecture, variant, state, file,
               UNNEST(drops, recursive := true)
        FROM artifacts"""
    )
    con.execute("CREATE VIEW files AS SELECT * FROM spool_files")
    return con


def run_sql(spool: Spool, sql: str, states: tuple[str, ...] = DEFAULT_STATES) -> QueryResult:
    try:
        con = connect(spool, states)
    except (duckdb.Error, pa.ArrowException) as exc:
        raise EtlError(f"query failed: {exc}") from exc
    try:
        rel = con.execute(sql)
        columns = [d[0] for d in rel.description or []]
        return QueryResult(columns, rel.fetchall())
    except (duckdb.Error, pa.ArrowException) as exc:
        raise EtlError(f"query failed: {exc}") from exc
    finally:
        con.close()


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
