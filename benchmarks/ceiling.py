"""Postgres-side reference loads of a spool, for comparison with ``wheels-etl load``.

* :func:`render_copy_files` writes the server's own text ``COPY … TO`` output of the rows
  ``wheels-etl load`` stores for the spool (one file per table) -- outside any timing.
* :func:`server_copy` is the **ceiling**: the server reads those files itself
  (``COPY … FROM '<file>'``), so no client work at all; one connection, one transaction.
* :func:`client_copy` streams the spool through psycopg 3 ``COPY … FROM STDIN`` in text or
  binary format, one transaction per file (what the loader does, minus its ledger).
* :func:`executemany_load` is the naive client: ``executemany`` INSERTs, one transaction
  per file.

All of them write the very tables ``etl.schema.migrate`` creates (``releases``,
``artifacts``, ``drops``), with the same keys, indexes and foreign keys (databases:
:mod:`benchmarks.benchdb`; spool files: :mod:`benchmarks.spoolfiles`).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql
from psycopg.adapt import Buffer, Dumper
from psycopg.pq import Format

from benchmarks.benchdb import TABLES, reset_tables
from benchmarks.spoolfiles import fresh_spool, row_groups, spool_files, spool_totals
from etl.db import copystream as pgcopy
from etl.spooling import format as fmt

#: Binary COPY types of ``artifacts`` for ``set_types`` (the loader frames its rows itself).
ARTIFACT_TYPES = ["text"] * 5 + ["timestamptz"] + ["jsonb"] * len(fmt.JSON_COLUMNS) + ["int4"]
JSONB_OID = 3802


class JsonText(bytes):
    """UTF-8 JSON text already serialised (marker type for the dumper registration)."""


class JsonbBytesBinaryDumper(Dumper):
    """jsonb, binary format: version byte 1 + the JSON text as it is."""

    format = Format.BINARY
    oid = JSONB_OID

    def dump(self, obj: Any) -> Buffer | None:
        return b"\x01" + bytes(obj)


def register(cur: psycopg.Cursor[Any]) -> None:
    """Make ``set_types([... "jsonb" ...])`` on this cursor take JSON bytes as they are."""
    cur.adapters.register_dumper(JsonText, JsonbBytesBinaryDumper)


def artifact_rows(tbl: pa.Table) -> Iterator[tuple[Any, ...]]:
    """Python rows for ``pgcopy.ARTIFACT_COLUMNS`` (the loader itself sends no Python rows)."""
    drops = tbl.column("drops").combine_chunks()
    counts = pc.fill_null(pc.list_value_length(drops), 0)
    cols: list[list[Any]] = [
        tbl.column(n).combine_chunks().to_pylist()
        for n in pgcopy.ARTIFACT_READ
        if n not in fmt.JSON_COLUMNS and n != "drops"
    ]
    cols += [
        tbl.column(n).combine_chunks().cast(pa.large_binary()).to_pylist() for n in fmt.JSON_COLUMNS
    ]
    cols.append(counts.to_pylist())
    yield from zip(*cols, strict=True)


#: Binary COPY types of ``drops`` (the loader sends drops as CSV; the peers here use these).
DROP_TYPES = ["text"] * 12 + ["int8", "timestamptz", "bool", "text", "text"]


def drop_rows(tbl: pa.Table) -> Iterator[tuple[Any, ...]]:
    """Python rows for ``pgcopy.DROP_COLUMNS`` from a table of ``pgcopy.DROP_READ`` columns."""
    drops = tbl.column("drops").combine_chunks()
    if len(drops) == 0:
        return
    parents = pc.list_parent_indices(drops)
    items = drops.flatten()  # the struct values, honouring offsets
    if len(items) == 0:
        return
    keys = [
        pc.take(tbl.column(n).combine_chunks(), parents).to_pylist()
        for n in pgcopy.DROP_COLUMNS[:4]
    ]
    by_name = dict(zip(items.type.names, items.flatten(), strict=True))  # offset-aware
    fields = [  # older spool files lack the PEP 691 extras: nulls
        by_name[n].to_pylist() if n in by_name else [None] * len(items) for n in pgcopy.DROP_FIELDS
    ]
    yield from zip(*keys, *fields, strict=True)


RELEASE_COLUMNS = (
    "product",
    "release",
    "updated_at",
    "extracted_at",
    "content_sha256",
    "spool_file",
    "source_url",
    "artifact_count",
    "drop_count",
    "loaded_at",
)


# --- reading the spool -----------------------------------------------------------------


def _release_row(path: Path) -> tuple[Any, ...]:
    m = fmt.read_meta(path)
    return (
        m.product,
        m.release,
        m.updated_at,
        m.extracted_at,
        m.content_sha256,
        path.name,
        m.source_url,
        m.artifacts,
        m.drops,
        datetime.now(UTC),
    )


#: What load writes that the ceiling leaves out: the ledger and the schema version.
NOT_COPIED = ("spool_files", "load_attempts", "wheels_etl_schema")
_OTHERS = """SELECT tablename FROM pg_tables WHERE schemaname = 'public'
    AND NOT tablename = ANY(%s) ORDER BY tablename"""
_COLUMNS = {
    "releases": RELEASE_COLUMNS,
    "artifacts": pgcopy.ARTIFACT_COLUMNS,
    "drops": pgcopy.DROP_COLUMNS,
}


def _has_rows(cur: psycopg.Cursor[Any], table: str) -> bool:
    query = sql.SQL("SELECT EXISTS (SELECT FROM {})").format(sql.Identifier(table))
    row = cur.execute(query).fetchone()
    return bool(row and row[0])


def _table_columns(table: str) -> sql.Composable:
    """``table (its loaded columns)``, or the bare table (all columns)."""
    if table not in _COLUMNS:
        return sql.Identifier(table)
    names = sql.SQL(", ").join(map(sql.Identifier, _COLUMNS[table]))
    return sql.SQL("{} ({})").format(sql.Identifier(table), names)


# --- the ceiling's COPY files: the server's own output (made outside timing) ----------------


def render_copy_files(
    spool_dir: str | Path, out_dir: str | Path, url: str, scratch: str | Path
) -> dict[str, Any]:
    """Write ``releases.copy``, ``artifacts.copy``, ``drops.copy`` (and one for each other
    table load filled, e.g. ``build_origins``): the server's own
    ``COPY <table> (<columns>) TO STDOUT`` (text format) of the rows that ``wheels-etl
    load`` stores for the ready files of ``spool_dir`` (loaded from a copy in ``scratch``
    into ``url``'s emptied tables, which are left loaded: the caller resets them).  Not a
    rendering of ours: byte for byte what the server writes, and reads back the fastest.
    The files are readable by the server's OS user (0644 under a 0755 dir)."""
    from etl.load import load_spool
    from etl.spool import Spool

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o755)
    files = spool_files(spool_dir)
    reset_tables(url, checkpoint=False)
    report = load_spool(Spool(fresh_spool(Path(spool_dir) / "ready", Path(scratch))), url)
    if report.failed or len(report.applied) != len(files):
        raise RuntimeError(f"loading the ceiling's rows failed: {report.failed}")
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        # and the domain tables load fills in the same transactions (etl.db.domain)
        others = [r[0] for r in cur.execute(_OTHERS, ([*TABLES, *NOT_COPIED],)).fetchall()]
        extra = [t for t in others if _has_rows(cur, t)]
        paths = {t: out / f"{t}.copy" for t in (*TABLES, *extra)}
        for table, path in paths.items():
            stmt = sql.SQL("COPY {} TO STDOUT").format(_table_columns(table))
            with open(path, "wb") as sink, cur.copy(stmt) as cp:
                for chunk in cp:
                    sink.write(chunk)
            os.chmod(path, 0o644)
    shutil.rmtree(scratch, ignore_errors=True)
    return {
        "paths": {t: str(p) for t, p in paths.items()},
        "bytes": {t: p.stat().st_size for t, p in paths.items()},
        **spool_totals(files),
    }


# --- the measured loads (each called in its own process by benchmarks.measure) ------------


def server_copy(url: str, paths: dict[str, str]) -> dict[str, Any]:
    """The ceiling: ``COPY <table> FROM '<file>'``, read by the server, one transaction."""
    t0 = time.perf_counter()
    with psycopg.connect(url) as conn:
        pid = conn.info.backend_pid
        for table, path in paths.items():  # in the order written: parents first
            stmt = sql.SQL("COPY {} FROM {}").format(_table_columns(table), sql.Literal(path))
            conn.execute(stmt)
        conn.commit()
    return {"seconds": time.perf_counter() - t0, "backend_pid": pid}


def _insert_release(cur: psycopg.Cursor[Any], path: Path) -> None:
    cur.execute(
        sql.SQL("INSERT INTO releases ({}) VALUES ({})").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in RELEASE_COLUMNS),
            sql.SQL(", ").join(sql.Placeholder() * len(RELEASE_COLUMNS)),
        ),
        _release_row(path),
    )


def _text_copy_statement(table: str, columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )


def client_copy(url: str, spool_dir: str, format: str = "binary") -> dict[str, Any]:
    """psycopg 3 ``COPY FROM STDIN`` per spool file (text or binary), one txn per file."""
    files = spool_files(spool_dir)
    rows = 0
    t0 = time.perf_counter()
    with psycopg.connect(url) as conn:
        for path in files:
            with conn.transaction(), conn.cursor() as cur:
                _insert_release(cur, path)
                if format == "binary":
                    register(cur)
                    specs = [
                        (
                            "artifacts",
                            pgcopy.ARTIFACT_COLUMNS,
                            ARTIFACT_TYPES,
                            pgcopy.ARTIFACT_READ,
                            artifact_rows,
                        ),
                        (
                            "drops",
                            pgcopy.DROP_COLUMNS,
                            DROP_TYPES,
                            pgcopy.DROP_READ,
                            drop_rows,
                        ),
                    ]
                    for table, cols, types, read, conv in specs:
                        with cur.copy(pgcopy.copy_statement(table, cols)) as cp:
                            cp.set_types(types)
                            for tbl in row_groups(path, read):
                                for row in conv(tbl):
                                    cp.write_row(row)
                                    rows += 1
                elif format == "fast":
                    rows += _copy_fast(cur, path)
                else:
                    with cur.copy(_text_copy_statement("artifacts", pgcopy.ARTIFACT_COLUMNS)) as cp:
                        for tbl in row_groups(path, pgcopy.ARTIFACT_READ):
                            for row in artifact_rows(tbl):
                                cp.write_row(
                                    tuple(v.decode() if isinstance(v, bytes) else v for v in row)
                                )
                                rows += 1
                    with cur.copy(_text_copy_statement("drops", pgcopy.DROP_COLUMNS)) as cp:
                        for tbl in row_groups(path, pgcopy.DROP_READ):
                            for row in drop_rows(tbl):
                                cp.write_row(row)
                                rows += 1
    return {"seconds": time.perf_counter() - t0, "rows": rows + len(files)}


def _drops_csv(tbl: pa.Table) -> tuple[bytes, int]:
    """A row group's drops as PostgreSQL CSV, built by Arrow's C++ writer (no Python rows)."""
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    drops = tbl.column("drops").combine_chunks()
    items = drops.flatten()
    if len(items) == 0:
        return b"", 0
    parents = pc.list_parent_indices(drops)
    arrays = [pc.take(tbl.column(n).combine_chunks(), parents) for n in pgcopy.DROP_COLUMNS[:4]]
    arrays += [items.field(n) for n in pgcopy.DROP_FIELDS]
    flat = pa.Table.from_arrays(arrays, names=list(pgcopy.DROP_COLUMNS))
    sink = pa.BufferOutputStream()
    pacsv.write_csv(flat, sink, write_options=pacsv.WriteOptions(include_header=False))
    return sink.getvalue().to_pybytes(), len(items)


def _copy_fast(cur: psycopg.Cursor[Any], path: Path) -> int:
    """What profiling suggests for the loader: decode each row group once (artifacts and
    drops from the same read), artifacts by binary COPY, drops by Arrow-written CSV."""
    register(cur)
    kept: list[pa.Table] = []
    rows = 0
    with cur.copy(pgcopy.copy_statement("artifacts", pgcopy.ARTIFACT_COLUMNS)) as cp:
        cp.set_types(ARTIFACT_TYPES)
        for tbl in row_groups(path, pgcopy.ARTIFACT_READ):
            for row in artifact_rows(tbl):
                cp.write_row(row)
                rows += 1
            kept.append(tbl.select(list(pgcopy.DROP_READ)))
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier("drops"), sql.SQL(", ").join(sql.Identifier(c) for c in pgcopy.DROP_COLUMNS)
    )
    with cur.copy(stmt) as cp:
        for tbl in kept:
            data, n = _drops_csv(tbl)
            if n:
                cp.write(data)
            rows += n
    return rows


def executemany_load(url: str, spool_dir: str) -> dict[str, Any]:
    """Naive client: ``executemany`` INSERT (pipelined by psycopg 3), one txn per file."""
    files = spool_files(spool_dir)
    art_sql = sql.SQL("INSERT INTO artifacts ({}) VALUES ({})").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in pgcopy.ARTIFACT_COLUMNS),
        sql.SQL(", ").join(
            sql.SQL("%s::jsonb") if c in fmt.JSON_COLUMNS else sql.Placeholder()
            for c in pgcopy.ARTIFACT_COLUMNS
        ),
    )
    drop_sql = sql.SQL("INSERT INTO drops ({}) VALUES ({})").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in pgcopy.DROP_COLUMNS),
        sql.SQL(", ").join(sql.Placeholder() * len(pgcopy.DROP_COLUMNS)),
    )
    rows = 0
    t0 = time.perf_counter()
    with psycopg.connect(url) as conn:
        for path in files:
            with conn.transaction(), conn.cursor() as cur:
                _insert_release(cur, path)
                for tbl in row_groups(path, pgcopy.ARTIFACT_READ):
                    batch = [
                        tuple(v.decode() if isinstance(v, bytes) else v for v in row)
                        for row in artifact_rows(tbl)
                    ]
                    cur.executemany(art_sql, batch)
                    rows += len(batch)
                for tbl in row_groups(path, pgcopy.DROP_READ):
                    batch = list(drop_rows(tbl))
                    if batch:
                        cur.executemany(drop_sql, batch)
                    rows += len(batch)
    return {"seconds": time.perf_counter() - t0, "rows": rows + len(files)}


# --- wheels-etl itself, and spool preparation ---------------------------------------------


def etl_load(url: str, spool_dir: str, workers: int = 1) -> dict[str, Any]:
    """``etl.load.load_spool`` (what ``wheels-etl load`` calls), timed from the call;
    ``call_cpu_s`` leaves out the interpreter's start and the imports."""
    from etl.load import load_spool
    from etl.spool import Spool

    t0, c0 = time.perf_counter(), time.process_time()
    rep = load_spool(Spool(spool_dir), url, workers=workers)
    return {
        "seconds": time.perf_counter() - t0,
        "call_cpu_s": time.process_time() - c0,  # the process's CPU in the call, all threads
        "applied": len(rep.applied),
        "failed": [list(f) for f in rep.failed],
        "rows": rep.rows,
        "json_bytes": rep.json_bytes,
    }
