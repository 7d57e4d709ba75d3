"""COPY streaming: one spool file's row groups into ``artifacts`` and ``drops``.

The JSON documents travel as the bytes already in the spool file: jsonb's binary wire
format is a version byte ``0x01`` followed by the JSON text, so the artifacts' binary COPY
rows are framed here around the bytes of Arrow's buffers (no ``json.loads``/``json.dumps``,
no Python object per document, and no copy of a large one).  The drops go as CSV written
by Arrow's C++ writer (no Python object per drop), handed to libpq as a view of Arrow's
buffer.  :func:`prepare` does all of that for one row group without a connection (the
read-ahead thread of :mod:`etl.loadahead` runs it); :func:`send` only writes.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql

from etl.db.dropshold import DropsHold
from etl.errors import CorruptSpoolFileError
from etl.protocol import IDENT_PATTERN
from etl.spooling import format as fmt
from etl.spooling.format import JSON_COLUMNS

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
    col = tbl.column(name)
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()  # no copy of one chunk


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


#: A document longer than this is handed to libpq as a view of Arrow's buffer; shorter
#: ones are copied into the row's bytes (one write per row group instead of one per
#: document: a write costs more than copying a few kB).
INLINE_MAX = 256 * 1024


def artifact_rows(tbl: pa.Table) -> list[memoryview]:
    """Binary COPY rows for :data:`ARTIFACT_COLUMNS` from a table of :data:`ARTIFACT_READ`.

    A jsonb field is the version byte 1 then the JSON text, so each document goes to libpq
    as the bytes already in the spool file: no Python object per document, and no copy of
    a large one (a view of the Arrow data buffer).  The caller writes :data:`SIGNATURE`
    before the first row and :data:`TRAILER` after the last.
    """
    keys = [_col(tbl, n).to_pylist() for n in ARTIFACT_READ[:5]]
    built = pc.cast(_col(tbl, "built_at"), pa.int64()).to_pylist()  # µs since 1970 (UTC)
    counts = pc.fill_null(pc.list_value_length(_col(tbl, "drops")), 0).to_pylist()
    docs = [_Docs(_col(tbl, n)) for n in JSON_COLUMNS]
    pieces: list[memoryview] = []
    out = bytearray()
    for i in range(tbl.num_rows):
        out += _I2(len(ARTIFACT_COLUMNS))
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
            if len(view) > INLINE_MAX:
                pieces += (memoryview(out), view)
                out = bytearray()
            else:
                out += view
        out += _I4(4) + _I4(counts[i])
    if out:
        pieces.append(memoryview(out))
    return pieces


@dataclass(frozen=True)
class Batch:
    """One row group (one artifact) rendered for the wire, ready to send.

    Made off the connection's thread (:mod:`etl.loadahead`) so that decoding and rendering
    overlap the server's work; holds views of Arrow buffers, no Python object per row.
    """

    artifact_data: list[memoryview]  # binary COPY rows
    artifacts: int
    drops_csv: memoryview  # PostgreSQL CSV
    drops: int

    @property
    def nbytes(self) -> int:
        return sum(len(b) for b in self.artifact_data) + len(self.drops_csv)


def prepare(tbl: pa.Table, meta: fmt.FileMeta, name: str) -> Batch:
    """A row group of :data:`ARTIFACT_READ` columns → its :class:`Batch`; a bad row is a
    :class:`CorruptSpoolFileError` naming the file."""
    try:
        _check_keys(tbl, meta, name)
        _check_values(tbl, name)
        rows = artifact_rows(tbl)
        csv, drops = drops_csv(tbl)
    except pa.ArrowException as exc:
        raise CorruptSpoolFileError(f"bad spool data: {exc}", path=name) from exc
    return Batch(rows, int(tbl.num_rows), csv, drops)


def _check_keys(tbl: pa.Table, meta: fmt.FileMeta, name: str) -> None:
    for column, want in (("product", meta.product), ("release", meta.release)):
        if any(v != want for v in _col(tbl, column).to_pylist()):  # a row group: one row
            raise CorruptSpoolFileError(
                f"a row's {column} differs from the file's ({want})", path=name
            )


#: An identifier, whole (``fullmatch``: ``$`` would let a trailing newline through).
_IDENT = re.compile(IDENT_PATTERN).fullmatch
_SHA256 = "^[0-9a-f]{64}$"


def _bad(arr: pa.Array, pattern: str) -> object:
    """The first non-null value of ``arr`` not matching ``pattern``, or None."""
    ok = pc.match_substring_regex(arr, pattern)
    bad = pc.filter(arr, pc.invert(pc.fill_null(ok, True)))
    return bad[0].as_py() if len(bad) else None


def _check_values(tbl: pa.Table, name: str) -> None:
    """The values extract guarantees (identifiers, hashes, sizes), checked again: the file
    may not come from extract.  Vectorised: no Python object per drop."""
    for column in ("architecture", "variant"):  # a value per artifact: Python's re, which
        # compiles once (Arrow compiled the pattern at every call: 70 of 140 ms of checks)
        bad = [v for v in _col(tbl, column).to_pylist() if v is not None and not _IDENT(v)]
        if bad:
            raise CorruptSpoolFileError(f"invalid {column} {str(bad[0])[:80]!r}", path=name)
    items = _col(tbl, "drops").flatten()
    if len(items) == 0:
        return
    smallest = pc.min(items.field("size")).as_py()
    if smallest is not None and smallest < 0:
        raise CorruptSpoolFileError(f"a drop's size is negative ({smallest})", path=name)
    value = _bad(items.field("sha256"), _SHA256)
    if value is not None:
        shown = str(value)[:80]
        raise CorruptSpoolFileError(f"a drop's sha256 is not 64 hex digits: {shown!r}", path=name)
    for field in ("filename", "name", "version"):
        if pc.any(pc.equal(pc.binary_length(items.field(field)), 0)).as_py():
            raise CorruptSpoolFileError(f"a drop's {field} is empty", path=name)


_UPLOADED_AT = DROP_COLUMNS.index("uploaded_at")
_NAIVE = pa.timestamp("us")
_UTC_SUFFIX = (pa.scalar("+00"), pa.scalar(""))


def pg_timestamps(ts: pa.Array) -> pa.Array:
    """UTC timestamps as PostgreSQL ``timestamptz`` input text, ``YYYY-MM-DD
    HH:MM:SS.ffffff+00``; nulls stay null.

    Arrow formats a zoned timestamp through a C++ stream and the zone database, 3 µs a
    value and most of the drops' client CPU; the same instants viewed without a zone (no
    copy) take its fast formatter, and the offset is appended: an eighth of the time.
    """
    text = pc.cast(ts.view(_NAIVE), pa.string())
    return pc.call_function("binary_join_element_wise", [text, *_UTC_SUFFIX])


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
    arrays[_UPLOADED_AT] = pg_timestamps(arrays[_UPLOADED_AT])
    flat = pa.Table.from_arrays(arrays, names=list(DROP_COLUMNS))
    sink = pa.BufferOutputStream()
    pacsv.write_csv(flat, sink, write_options=pacsv.WriteOptions(include_header=False))
    return memoryview(sink.getvalue()), len(items)


def send(
    cur: psycopg.Cursor[Any],
    batches: Iterable[Batch],
    between: Callable[[], None] | None = None,
) -> tuple[int, int]:
    """COPY one file's batches into ``artifacts`` then ``drops``; returns (artifacts, drops).

    The artifacts go out as the batches arrive; only the drops' CSV is held for the
    second COPY (drops reference artifacts), in memory up to :data:`HOLD_IN_MEMORY` and
    in a temporary file past it.  Memory: the batches in flight plus at most that much.
    Runs in the caller's transaction; ``between`` is called after the first COPY (a
    crash-test hook).
    """
    artifacts = drops = 0
    with DropsHold() as held:
        with cur.copy(copy_statement("artifacts", ARTIFACT_COLUMNS)) as cp:
            cp.write(SIGNATURE)
            for batch in batches:
                for piece in batch.artifact_data:
                    cp.write(piece)
                artifacts += batch.artifacts
                if batch.drops:
                    held.add(batch.drops_csv)
                    drops += batch.drops
            cp.write(TRAILER)
        if between is not None:
            between()
        if drops:
            with cur.copy(_DROPS_COPY) as cp:
                for chunk in held.chunks():
                    cp.write(chunk)
    return artifacts, drops


_DROPS_COPY = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
    sql.Identifier("drops"), sql.SQL(", ").join(sql.Identifier(c) for c in DROP_COLUMNS)
)
