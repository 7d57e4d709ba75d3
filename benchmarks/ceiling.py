"""Postgres-side reference loads of a spool, for comparison with ``wheels-etl load``.

* :func:`render_copy_files` turns the spool files into PostgreSQL *text* COPY files (one per
  table) -- outside any timing.
* :func:`server_copy` is the **ceiling**: the server reads those files itself
  (``COPY … FROM '<file>'``), so no client work at all; one connection, one transaction.
* :func:`client_copy` streams the spool through psycopg 3 ``COPY … FROM STDIN`` in text or
  binary format, one transaction per file (what the loader does, minus its ledger).
* :func:`executemany_load` is the naive client: ``executemany`` INSERTs, one transaction
  per file.

All of them write the very tables ``etl.db.schema.migrate`` creates (``releases``,
``artifacts``, ``drops``), with the same keys, indexes and foreign keys.  Database helpers
(create / migrate / truncate / drop) are here too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg import sql
from psycopg.adapt import Buffer, Dumper
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import Format

from etl import spoolformat as fmt
from etl.db import copystream as pgcopy

TABLES = ("releases", "artifacts", "drops")
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

#: Binary COPY types of ``artifacts`` for ``set_types`` (the loader frames its rows itself).
ARTIFACT_TYPES = ["text"] * 5 + ["timestamptz"] + ["jsonb"] * 3 + ["int4"]
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
    """Rows for :data:`ARTIFACT_COLUMNS` from a table of :data:`pgcopy.ARTIFACT_READ` columns."""
    drops = tbl.column("drops").combine_chunks()
    counts = pc.fill_null(pc.list_value_length(drops), 0)
    cols: list[list[Any]] = [
        tbl.column(n).combine_chunks().to_pylist()
        for n in pgcopy.ARTIFACT_READ
        if n not in pgcopy.JSON_COLUMNS and n != "drops"
    ]
    cols += [
        tbl.column(n).combine_chunks().cast(pa.large_binary()).to_pylist()
        for n in pgcopy.JSON_COLUMNS
    ]
    cols.append(counts.to_pylist())
    yield from zip(*cols, strict=True)


#: Binary COPY types of ``drops`` (the loader sends drops as CSV; the peers here use these).
DROP_TYPES = ["text"] * 12 + ["int8", "timestamptz"]


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
    fields = [by_name[n].to_pylist() for n in pgcopy.DROP_FIELDS]
    yield from zip(*keys, *fields, strict=True)


# --- databases -------------------------------------------------------------------------


def db_url(server_url: str, dbname: str) -> str:
    params = conninfo_to_dict(server_url)
    params["dbname"] = dbname
    return make_conninfo(**params)


def create_db(server_url: str, dbname: str, compression: str = "auto") -> str:
    """(Re)create ``dbname`` with the wheels-etl tables; returns its conninfo."""
    from etl.load import migrate_db

    drop_db(server_url, dbname)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = db_url(server_url, dbname)
    migrate_db(url, compression)
    return url


def drop_db(server_url: str, dbname: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )


def reset_tables(url: str, *, checkpoint: bool = True) -> None:
    """Empty every wheels-etl table (keeping the schema), then CHECKPOINT."""
    with psycopg.connect(url, autocommit=True) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'wheels_etl_schema'"
            ).fetchall()
        ]
        if names:
            conn.execute(
                sql.SQL("TRUNCATE {} CASCADE").format(
                    sql.SQL(", ").join(sql.Identifier(n) for n in names)
                )
            )
        if checkpoint:
            conn.execute("CHECKPOINT")


def table_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            t: int(
                conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))
                ).fetchone()[0]
            )  # type: ignore[index]
            for t in TABLES
        }


def json_checksum(url: str) -> str:
    """md5 over every stored JSON document (as jsonb text) and every drop, in key order."""
    with psycopg.connect(url) as conn:
        a = conn.execute(
            "SELECT md5(string_agg(md5(concat_ws('|', product, release, architecture, variant,"
            " dependency_graph::text, constraints_file::text, build_sequence_summary::text)),"
            " '' ORDER BY product, release, architecture, variant)) FROM artifacts"
        ).fetchone()
        d = conn.execute(
            "SELECT md5(string_agg(md5(concat_ws('|', product, release, architecture, variant,"
            " filename, name, version, build_tag, sha256, size::text, uploaded_at::text)),"
            " '' ORDER BY product, release, architecture, variant, filename)) FROM drops"
        ).fetchone()
    return f"{a[0] if a else None}/{d[0] if d else None}"


def server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


# --- reading the spool -----------------------------------------------------------------


def spool_files(spool_dir: str | Path, state: str = "ready") -> list[Path]:
    return sorted((Path(spool_dir) / state).glob("*.parquet"))


def spool_totals(files: list[Path]) -> dict[str, int]:
    """Artifacts, drops, JSON bytes and file bytes of spool files (from their footers)."""
    tot = {"files": 0, "artifacts": 0, "drops": 0, "json_bytes": 0, "file_bytes": 0}
    for p in files:
        m = fmt.read_meta(p)
        tot["files"] += 1
        tot["artifacts"] += m.artifacts
        tot["drops"] += m.drops
        tot["json_bytes"] += m.json_bytes
        tot["file_bytes"] += p.stat().st_size
    tot["releases"] = tot["files"]
    tot["rows"] = tot["artifacts"] + tot["drops"] + tot["files"]
    return tot


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


def _row_groups(path: Path, columns: list[str]) -> Iterator[pa.Table]:
    pf = pq.ParquetFile(path)
    for i in range(pf.num_row_groups):
        yield pf.read_row_group(i, columns=columns)


# --- text COPY files (rendered outside timing) -------------------------------------------

_ESC = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _text_field(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bytes):
        value = value.decode()
    elif isinstance(value, datetime):
        return value.isoformat()
    elif not isinstance(value, str):
        return str(value)
    return value.translate(_ESC)


def _text_line(row: tuple[Any, ...]) -> str:
    return "\t".join(_text_field(v) for v in row) + "\n"


def render_copy_files(spool_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Write ``releases.copy``, ``artifacts.copy``, ``drops.copy`` (PostgreSQL text format)
    for every ready spool file, readable by the server's OS user (0644 under a 0755 dir)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o755)
    files = spool_files(spool_dir)
    paths = {t: out / f"{t}.copy" for t in TABLES}
    with (
        open(paths["releases"], "w", encoding="utf-8") as rel,
        open(paths["artifacts"], "w", encoding="utf-8") as art,
        open(paths["drops"], "w", encoding="utf-8") as drp,
    ):
        for path in files:
            rel.write(_text_line(_release_row(path)))
            for tbl in _row_groups(path, pgcopy.ARTIFACT_READ):
                for row in artifact_rows(tbl):
                    art.write(_text_line(row))
            for tbl in _row_groups(path, pgcopy.DROP_READ):
                for row in drop_rows(tbl):
                    drp.write(_text_line(row))
    for p in paths.values():
        os.chmod(p, 0o644)
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
        for table, columns in (
            ("releases", RELEASE_COLUMNS),
            ("artifacts", pgcopy.ARTIFACT_COLUMNS),
            ("drops", pgcopy.DROP_COLUMNS),
        ):
            conn.execute(
                sql.SQL("COPY {} ({}) FROM {}").format(
                    sql.Identifier(table),
                    sql.SQL(", ").join(sql.Identifier(c) for c in columns),
                    sql.Literal(paths[table]),
                )
            )
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
                            for tbl in _row_groups(path, read):
                                for row in conv(tbl):
                                    cp.write_row(row)
                                    rows += 1
                elif format == "fast":
                    rows += _copy_fast(cur, path)
                else:
                    with cur.copy(_text_copy_statement("artifacts", pgcopy.ARTIFACT_COLUMNS)) as cp:
                        for tbl in _row_groups(path, pgcopy.ARTIFACT_READ):
                            for row in artifact_rows(tbl):
                                cp.write_row(
                                    tuple(v.decode() if isinstance(v, bytes) else v for v in row)
                                )
                                rows += 1
                    with cur.copy(_text_copy_statement("drops", pgcopy.DROP_COLUMNS)) as cp:
                        for tbl in _row_groups(path, pgcopy.DROP_READ):
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
        for tbl in _row_groups(path, pgcopy.ARTIFACT_READ):
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
                for tbl in _row_groups(path, pgcopy.ARTIFACT_READ):
                    batch = [
                        tuple(v.decode() if isinstance(v, bytes) else v for v in row)
                        for row in artifact_rows(tbl)
                    ]
                    cur.executemany(art_sql, batch)
                    rows += len(batch)
                for tbl in _row_groups(path, pgcopy.DROP_READ):
                    batch = list(drop_rows(tbl))
                    if batch:
                        cur.executemany(drop_sql, batch)
                    rows += len(batch)
    return {"seconds": time.perf_counter() - t0, "rows": rows + len(files)}


def read_spool(spool_dir: str) -> dict[str, Any]:
    """Decode every column of every ready file (the loader's Parquet cost, no database)."""
    files = spool_files(spool_dir)
    t0 = time.perf_counter()
    n = 0
    for path in files:
        for tbl in _row_groups(path, [f.name for f in fmt.SCHEMA]):
            n += tbl.num_rows
    return {"seconds": time.perf_counter() - t0, "rows": n}


# --- wheels-etl itself, and spool preparation ---------------------------------------------


def etl_load(url: str, spool_dir: str, workers: int = 1) -> dict[str, Any]:
    """``etl.load.load_spool`` (what ``wheels-etl load`` calls), timed from the call."""
    from etl.load import load_spool
    from etl.spool import Spool

    t0 = time.perf_counter()
    rep = load_spool(Spool(Path(spool_dir)), url, workers=workers)
    return {
        "seconds": time.perf_counter() - t0,
        "applied": len(rep.applied),
        "failed": [list(f) for f in rep.failed],
        "rows": rep.rows,
        "json_bytes": rep.json_bytes,
    }


def fresh_spool(src_ready: str | Path, dst: str | Path) -> Path:
    """A new spool root whose ``ready/`` hard-links the files of ``src_ready`` (instant)."""
    import shutil

    dst = Path(dst)
    shutil.rmtree(dst, ignore_errors=True)
    (dst / "ready").mkdir(parents=True)
    for p in sorted(Path(src_ready).glob("*.parquet")):
        os.link(p, dst / "ready" / p.name)
    return dst


def rewrite_codec(src_dir: str, dst_dir: str, codec: str) -> dict[str, Any]:
    """Copy every ready spool file with another Parquet codec (one row group per artifact,
    same key-value metadata); returns encode seconds and bytes."""
    src = spool_files(src_dir)
    out = Path(dst_dir) / "ready"
    out.mkdir(parents=True, exist_ok=True)
    level = {"zstd": 3}.get(codec)
    total = 0
    t0 = time.perf_counter()
    for path in src:
        pf = pq.ParquetFile(path)
        kv = {
            k.decode(): v.decode()
            for k, v in (pf.metadata.metadata or {}).items()
            if k.decode().startswith(fmt.META_PREFIX)
        }
        dst = out / path.name
        with pq.ParquetWriter(dst, fmt.SCHEMA, compression=codec, compression_level=level) as w:
            for i in range(pf.num_row_groups):
                tbl = pf.read_row_group(i).replace_schema_metadata(None)
                w.write_table(tbl.cast(fmt.SCHEMA), row_group_size=max(1, tbl.num_rows))
            w.add_key_value_metadata(kv)
        total += dst.stat().st_size
    return {"seconds": time.perf_counter() - t0, "bytes": total, "files": len(src)}


def big_release(tree: str, spool_dir: str, target_json_bytes: int) -> dict[str, Any]:
    """One spool file holding at least ``target_json_bytes`` of JSON in many artifacts.

    The artifacts of the first release of a generated source tree are parsed the way
    extract parses them, then written over and over (variant renamed ``<variant>-<n>``)
    through the spool's own ``ReleaseWriter`` until the target is reached.
    """
    import dataclasses
    import json as _json

    from etl.source import documents as parse
    from etl.spool import Spool

    root = Path(tree)
    index = _json.loads((root / "index.json").read_text())
    product = index["products"][0]
    listing_path = root / product["releases"]
    listing = _json.loads(listing_path.read_text())
    rel_path = (listing_path.parent / listing["releases"][0]["url"]).resolve()
    raw = _json.loads(rel_path.read_text())
    rel = parse.parse_release_doc(
        raw, product=raw["product"], version=raw["version"], url=rel_path.as_uri()
    )
    rows = []
    for art in rel.artifacts:
        data = {k: (rel_path.parent / v).read_bytes() for k, v in art.files.items()}
        u = rel_path.as_uri()
        rows.append(
            fmt.ArtifactRow(
                architecture=art.architecture,
                variant=art.variant,
                build_id=art.build_id,
                built_at=art.built_at,
                dependency_graph=parse.json_document_text(
                    data["dependency_graph"], url=u, expect=dict
                ),
                constraints_file=parse.constraints_to_json(data["constraints_file"], url=u),
                build_sequence_summary=parse.json_document_text(
                    data["build_sequence_summary"], url=u, expect=list
                ),
                drops=parse.wheels_to_drops(data["wheels"], url=u),
            )
        )
    spool = Spool(Path(spool_dir))
    t0 = time.perf_counter()
    with spool.writer(rel.product, rel.version, rel.updated_at, rel_path.as_uri()) as w:
        n = 0
        while w.json_bytes < target_json_bytes:
            base = rows[n % len(rows)]
            w.add(dataclasses.replace(base, variant=f"{base.variant}-{n // len(rows)}"))
            n += 1
        f = w.commit()
        json_bytes, drops = w.json_bytes, w.drops
    return {
        "path": str(Path(spool_dir) / f.state / f.name),
        "artifacts": n,
        "drops": drops,
        "json_bytes": json_bytes,
        "file_bytes": f.size,
        "seconds": time.perf_counter() - t0,
    }
