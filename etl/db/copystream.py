"""COPY streaming: one spool file's row groups into ``artifacts`` and ``drops``.

The JSON documents travel as the bytes already in the spool file: jsonb's binary wire
format is a version byte ``0x01`` followed by the JSON text, so the artifacts' binary COPY
rows are framed here around views of Arrow's buffers (no ``json.loads``/``json.dumps``,
no Python object, no copy per document).  The drops go as CSV written by Arrow's C++
writer (no Python object per drop), handed to libpq as a view of Arrow's buffer.
"""

from __future__ import annotations

import queue
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql

from etl import spoolformat as fmt
from etl.errors import SpoolFileError
from etl.spool import SpoolName
from etl.spoolformat import JSON_COLUMNS

#: Binary COPY framing (PostgreSQL docs, "COPY", binary format).
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_I2 = struct.Struct("!h").pack
_I4 = struct.Struct("!i").pack
_I8 = struct.Struct("!q").pack
#: PostgreSQL's timestamps count µs from 2000-01-01 UTC; Arrow's from 1970-01-01.
_PG_EPOCH_US = 946_684_800_000_000

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


def copy_statement(table: str, columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )


def _col(tbl: pa.Table, name: str) -> pa.Array:
    return tbl.column(name).combine_chunks()


class _Docs:
    """The values of a (large) string column as zero-copy views of its Arrow data buffer."""

    def __init__(self, arr: pa.Array) -> None:
        if arr.type != pa.large_string():
            arr = arr.cast(pa.large_string())
        _, offsets, data = arr.buffers()
        self.offsets = memoryview(offsets).cast("q")[arr.offset : arr.offset + len(arr) + 1]
        self.data = memoryview(data if data is not None else b"")
        self.nulls = arr.is_null().to_pylist()

    def view(self, i: int) -> memoryview | None:
        if self.nulls[i]:
            return None
        return self.data[self.offsets[i] : self.offsets[i + 1]]


def _text(out: bytearray, value: str | None) -> None:
    if value is None:
        out += _NULL
    else:
        raw = value.encode()
        out += _I4(len(raw))
        out += raw


def write_artifacts(cp: psycopg.Copy, tbl: pa.Table) -> int:
    """Binary COPY rows for :data:`ARTIFACT_COLUMNS` from a table of :data:`ARTIFACT_READ`.

    The JSON documents go to libpq straight from the Arrow data buffer (a jsonb field is
    the version byte 1 then the JSON text): no Python object and no copy per document on
    our side.  The caller writes :data:`SIGNATURE` before the first row and
    :data:`TRAILER` after the last.
    """
    keys = [_col(tbl, n).to_pylist() for n in ARTIFACT_READ[:5]]
    built = pc.cast(_col(tbl, "built_at"), pa.int64()).to_pylist()  # µs since 1970 (UTC)
    counts = pc.fill_null(pc.list_value_length(_col(tbl, "drops")), 0).to_pylist()
    docs = [_Docs(_col(tbl, n)) for n in JSON_COLUMNS]
    for i in range(tbl.num_rows):
        out = bytearray(_I2(len(ARTIFACT_COLUMNS)))
        for column in keys:
            _text(out, column[i])
        out += _NULL if built[i] is None else _I4(8) + _I8(built[i] - _PG_EPOCH_US)
        for doc in docs:
            view = doc.view(i)
            if view is None:
                out += _NULL
                continue
            out += _I4(len(view) + 1)
            out += b"\x01"
            cp.write(out)
            cp.write(view)
            out = bytearray()
        out += _I4(4) + _I4(counts[i])
        cp.write(out)
    return int(tbl.num_rows)


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


def drops_csv(tbl: pa.Table) -> tuple[memoryview, int]:
    """A row group's drops as PostgreSQL CSV, written by Arrow's C++ CSV writer.

    No Python object per drop: this is what makes the drops cheap on the client.  NULL is
    an unquoted empty field and an empty string a quoted one, as PostgreSQL's CSV expects.
    """
    drops = _col(tbl, "drops")
    items = drops.flatten()
    if len(items) == 0:
        return memoryview(b""), 0
    parents = pc.list_parent_indices(drops)
    arrays = [pc.take(_col(tbl, n), parents) for n in DROP_COLUMNS[:4]]
    arrays += [_drop_field(items, n) for n in DROP_FIELDS]
    flat = pa.Table.from_arrays(arrays, names=list(DROP_COLUMNS))
    sink = pa.BufferOutputStream()
    pacsv.write_csv(flat, sink, write_options=pacsv.WriteOptions(include_header=False))
    return memoryview(sink.getvalue()), len(items)


_DONE = object()


def read_ahead(
    src: fmt.Source, columns: list[str], name: str, depth: int = 1
) -> Iterator[pa.Table]:
    """The file's row groups, decoded by a reader thread ``depth`` row groups ahead.

    Arrow decodes without the GIL, so the next artifact is decompressed while this one
    goes over the socket and the server parses it.  Memory: ``depth + 1`` row groups.
    Errors of the reader are raised here; leaving the loop early stops the reader.
    """
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for tbl in fmt.iter_row_groups(src, columns, name):
                if not put(tbl):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)

    thread = threading.Thread(target=reader, name=f"read-ahead {name}", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, pa.Table)
            yield item
    finally:
        stop.set()
        thread.join()


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
    the caller's transaction; ``between`` is called after the first COPY (a crash-test
    hook).
    """
    kept: list[pa.Table] = []
    artifacts = drops = 0
    try:
        with cur.copy(copy_statement("artifacts", ARTIFACT_COLUMNS)) as cp:
            cp.write(SIGNATURE)
            for tbl in read_ahead(src, ARTIFACT_READ, name):
                _check_keys(tbl, meta, name)
                artifacts += write_artifacts(cp, tbl)
                kept.append(tbl.select(DROP_READ))
            cp.write(TRAILER)
        if between is not None:
            between()
        stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
            sql.Identifier("drops"), sql.SQL(", ").join(sql.Identifier(c) for c in DROP_COLUMNS)
        )
        with cur.copy(stmt) as cp:
            while kept:
                data, n = drops_csv(kept.pop(0))  # a view of Arrow's buffer, not a copy
                if n:
                    cp.write(data)
                drops += n
    except pa.ArrowException as exc:
        raise SpoolFileError(f"bad spool data: {exc}", path=name) from exc
    return artifacts, drops
