"""``inspect``: DuckDB over the spool files, without Postgres.

Views (over the states asked for, ``ready``, ``loading`` and ``loaded`` by default):

* ``artifacts``: one row per artifact, with ``state`` and ``file`` columns; the three JSON
  documents as text (use DuckDB's JSON functions: ``dependency_graph->'$.…'``);
* ``drops``: one row per wheel file, flattened, with the artifact's key columns;
* ``files``: one row per spool file, from its key-value metadata (no row data read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from etl.errors import ConfigError, EtlError
from etl.spool import STATES, Spool
from etl.spoolformat import META_PREFIX

DEFAULT_STATES = ("ready", "loading", "loaded")


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def _files(spool: Spool, states: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for state in states:
        out.extend(str(f.path) for f in spool.files(state))
    return out


def connect(spool: Spool, states: tuple[str, ...] = DEFAULT_STATES) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the ``artifacts``, ``drops`` and ``files`` views."""
    for s in states:
        if s not in STATES:
            raise ConfigError(f"unknown state {s!r}; states are {', '.join(STATES)}")
    con = duckdb.connect()
    files = _files(spool, states)
    if not files:
        con.execute(
            "CREATE VIEW artifacts AS SELECT NULL::VARCHAR AS product, NULL::VARCHAR AS release,"
            " NULL::VARCHAR AS architecture, NULL::VARCHAR AS variant, NULL::VARCHAR AS state,"
            " NULL::VARCHAR AS file WHERE false"
        )
        con.execute("CREATE VIEW drops AS SELECT * FROM artifacts")
        con.execute("CREATE VIEW files AS SELECT * FROM artifacts")
        return con
    # DuckDB's table functions want a constant list of paths: inline it as a literal.
    literal = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    con.execute(
        f"""CREATE VIEW artifacts AS
        SELECT * EXCLUDE (filename),
               regexp_extract(filename, '/([a-z]+)/[^/]+$', 1) AS state,
               regexp_extract(filename, '[^/]+$') AS file
        FROM read_parquet({literal}, filename = true)"""
    )
    con.execute(
        """CREATE VIEW drops AS
        SELECT product, release, architecture, variant, state, file,
               UNNEST(drops, recursive := true)
        FROM artifacts"""
    )
    prefix = META_PREFIX.replace("'", "''")
    con.execute(
        f"""CREATE VIEW files AS
        SELECT regexp_extract(file_name, '/([a-z]+)/[^/]+$', 1) AS state,
               regexp_extract(file_name, '[^/]+$') AS file,
               max(CASE WHEN k = 'product' THEN v END) AS product,
               max(CASE WHEN k = 'release' THEN v END) AS release,
               max(CASE WHEN k = 'updated_at' THEN v END) AS updated_at,
               max(CASE WHEN k = 'extracted_at' THEN v END) AS extracted_at,
               max(CASE WHEN k = 'artifacts' THEN v END)::BIGINT AS artifacts,
               max(CASE WHEN k = 'drops' THEN v END)::BIGINT AS drops,
               max(CASE WHEN k = 'json_bytes' THEN v END)::BIGINT AS json_bytes,
               max(CASE WHEN k = 'content_sha256' THEN v END) AS content_sha256
        FROM (SELECT file_name, replace(decode(key), '{prefix}', '') AS k, decode(value) AS v
              FROM parquet_kv_metadata({literal}))
        GROUP BY file_name"""
    )
    return con


def run_sql(spool: Spool, sql: str, states: tuple[str, ...] = DEFAULT_STATES) -> QueryResult:
    con = connect(spool, states)
    try:
        rel = con.execute(sql)
        columns = [d[0] for d in rel.description or []]
        return QueryResult(columns, rel.fetchall())
    except duckdb.Error as exc:
        raise EtlError(f"query failed: {exc}") from exc
    finally:
        con.close()


def summary(spool: Spool) -> QueryResult:
    """Files, releases, artifacts, drops and bytes per state (from metadata and sizes only)."""
    rows: list[tuple[Any, ...]] = []
    for state in STATES:
        files = spool.files(state)
        size = sum(f.size for f in files)
        artifacts = drops = 0
        releases: set[str] = set()
        bad = 0
        if files:
            try:
                res = run_sql(
                    spool,
                    "SELECT product, release, artifacts, drops FROM files",
                    (state,),
                )
                for product, release, arts, drs in res.rows:
                    releases.add(f"{product}/{release}")
                    artifacts += int(arts or 0)
                    drops += int(drs or 0)
            except EtlError:
                bad = len(files)  # e.g. corrupt files in failed/: counted by name only
                releases = {f.parsed.release_key for f in files if _parses(f.name)}
        rows.append((state, len(files), len(releases), artifacts, drops, size, bad))
    return QueryResult(
        ["state", "files", "releases", "artifacts", "drops", "bytes", "unreadable"], rows
    )


def _parses(name: str) -> bool:
    from etl.spool import SpoolName

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

