"""COPY streaming: one spool file's row groups into ``artifacts`` and ``drops``.

The JSON documents travel as the bytes already in the spool file: jsonb's binary wire
format is a version byte ``0x01`` followed by the JSON text, so a dumper that prefixes
that byte avoids both a ``json.loads`` and a ``json.dumps`` per document.  The drops go
as CSV written by Arrow's C++ writer (no Python object per drop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql
from psycopg.adapt import Buffer, Dumper
from psycopg.pq import Format

from etl import spoolformat as fmt
from etl.errors import SpoolFileError
from etl.spool import SpoolName
from etl.spoolformat import JSON_COLUMNS

JSONB_OID = 3802

ARTIFACT_COLUMNS = (
    "product",
    "release",
    "architecture",
    "variant",
    "build_id",
    "built_at",
    *JSON_COLUMNS,
    "drop_count",
)
ARTIFACT_TYPES = ["text"] * 5 + ["timestamptz"] + ["jsonb"] * len(JSON_COLUMNS) + ["int4"]

DROP_FIELDS = (
    "filename",
    "name",
    "version",
    "build_tag",
    "python_tag",
    "abi_tag",
    "platform_tag",
    "sha256",
    "size",
    "uploaded_at",
    "yanked",
    "yanked_reason",
    "requires_python",
)
DROP_COLUMNS = ("product", "release", "architecture", "variant", *DROP_FIELDS)


def _drop_field(items: pa.StructArray, name: str) -> pa.Array:
    """A field of the drops struct; one that older spool files lack (the PEP 691 extras)
    reads as nulls."""
    if items.type.get_field_index(name) < 0:
        return pa.nulls(len(items), fmt.DROP_TYPE.field(name).type)
    return items.field(name)


#: Parquet columns each COPY pass reads (the other pass's columns are never decoded).
ARTIFACT_READ = ["product", "release", "architecture", "variant", "build_id", "built_at"]
ARTIFACT_READ += [*JSON_COLUMNS, "drops"]
DROP_READ = ["product", "release", "architecture", "variant", "drops"]


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


def copy_statement(table: str, columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )


def _col(tbl: pa.Table, name: str) -> pa.Array:
    return tbl.column(name).combine_chunks()


def artifact_rows(tbl: pa.Table) -> Iterator[tuple[Any, ...]]:
    """Rows for :data:`ARTIFACT_COLUMNS` from a table of :data:`ARTIFACT_READ` columns."""
    drops = _col(tbl, "drops")
    counts = pc.fill_null(pc.list_value_length(drops), 0)
    cols: list[list[Any]] = [
        _col(tbl, n).to_pylist() for n in ARTIFACT_READ if n not in JSON_COLUMNS and n != "drops"
    ]
    cols += [_col(tbl, n).cast(pa.large_binary()).to_pylist() for n in JSON_COLUMNS]
    cols.append(counts.to_pylist())
    yield from zip(*cols, strict=True)


def read_meta(name: str, src: fmt.Source) -> fmt.FileMeta:
    """The file's footer, validated, and checked against the file's name."""
    parsed = SpoolName.parse(name)
    meta = fmt.read_meta(src, name)
    if not parsed.matches(meta.product, meta.release):
        raise SpoolFileError(
            f"file name says {parsed.release_key}, its metadata says {meta.product}/{meta.release}",
            path=name,
        )
    if meta.updated_at != parsed.updated_at or not meta.content_sha256.startswith(
        parsed.short_hash
    ):
        raise SpoolFileError(
            f"file name (updated {fmt.format_ts(parsed.updated_at)}, hash {parsed.short_hash})"
            f" does not match its metadata (updated {fmt.format_ts(meta.updated_at)},"
            f" hash {meta.content_sha256[:16]})",
            path=name,
        )
    return meta


def _check_keys(tbl: pa.Table, meta: fmt.FileMeta, name: str) -> None:
    for column, want in (("product", meta.product), ("release", meta.release)):
        if not pc.all(pc.equal(tbl.column(column), want)).as_py():
            raise SpoolFileError(f"a row's {column} differs from the file's ({want})", path=name)


def drops_csv(tbl: pa.Table) -> tuple[bytes, int]:
    """A row group's drops as PostgreSQL CSV, written by Arrow's C++ CSV writer.

    No Python object per drop: this is what makes the drops cheap on the client.  NULL is
    an unquoted empty field and an empty string a quoted one, as PostgreSQL's CSV expects.
    """
    drops = _col(tbl, "drops")
    items = drops.flatten()
    if len(items) == 0:
        return b"", 0
    parents = pc.list_parent_indices(drops)
    arrays = [pc.take(_col(tbl, n), parents) for n in DROP_COLUMNS[:4]]
    arrays += [_drop_field(items, n) for n in DROP_FIELDS]
    flat = pa.Table.from_arrays(arrays, names=list(DROP_COLUMNS))
    sink = pa.BufferOutputStream()
    pacsv.write_csv(flat, sink, write_options=pacsv.WriteOptions(include_header=False))
    return sink.getvalue().to_pybytes(), len(items)


def copy_release(
    cur: psycopg.Cursor[Any],
    name: str,
    src: fmt.Source,
    meta: fmt.FileMeta,
    between: Callable[[], None] | None = None,
) -> tuple[int, int]:
    """COPY one spool file into ``artifacts`` then ``drops``; returns (artifacts, drops).

    Each row group (one artifact) is decoded once: its JSON goes out at once by binary
    COPY, and only its small ``drops`` column is kept for the second COPY, which Arrow
    renders as CSV.  Memory: one artifact's documents plus the release's drops.  Runs in
    the caller's transaction (the cursor must have had :func:`register`); ``between`` is
    called after the first COPY (a crash-test hook).
    """
    kept: list[pa.Table] = []
    artifacts = drops = 0
    try:
        with cur.copy(copy_statement("artifacts", ARTIFACT_COLUMNS)) as cp:
            cp.set_types(ARTIFACT_TYPES)
            for tbl in fmt.iter_row_groups(src, ARTIFACT_READ, name):
                _check_keys(tbl, meta, name)
                for row in artifact_rows(tbl):
                    cp.write_row(row)
                    artifacts += 1
                kept.append(tbl.select(DROP_READ))
        if between is not None:
            between()
        stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
            sql.Identifier("drops"), sql.SQL(", ").join(sql.Identifier(c) for c in DROP_COLUMNS)
        )
        with cur.copy(stmt) as cp:
            while kept:
                data, n = drops_csv(kept.pop(0))
                if n:
                    cp.write(data)
                drops += n
    except pa.ArrowException as exc:
        raise SpoolFileError(f"bad spool data: {exc}", path=name) from exc
    return artifacts, drops
