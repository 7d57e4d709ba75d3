"""A release's rows as the spool writes them: one one-row table per artifact, and the
content hash over the release's logical content (what names the file and decides, at
load, whether anything changed).

An artifact's drops become Arrow columns once (:func:`drops_array`): the table is built
from them, and the hash reads the drops' upload times from them, formatted by Arrow.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from etl.spooling.format import DROP_TYPE, SCHEMA, ArtifactRow, Drop
from etl.timestamps import format_ts

_DROP_FIELDS = list(DROP_TYPE)
_DROPS_TYPE = SCHEMA.field("drops").type
_NO_DROPS = pa.array([], DROP_TYPE)
#: Where the PEP 691 extras start in a :class:`Drop` (yanked, yanked_reason, requires_python).
_EXTRAS = Drop._fields.index("yanked")


def drops_array(drops: tuple[Drop, ...]) -> pa.StructArray:
    """An artifact's drops as one Arrow struct array (one column per field, no dict per
    drop)."""
    if not drops:
        return _NO_DROPS
    columns = zip(*drops, strict=True)
    return pa.StructArray.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, _DROP_FIELDS, strict=True)],
        fields=_DROP_FIELDS,
    )


def _iso_times(drops: pa.StructArray) -> list[str | None]:
    """The drops' upload times as :func:`format_ts` writes them (``2026-01-07T17:12:30Z``,
    ``...:30.000100Z``), formatted by Arrow: the instants viewed without their zone (UTC,
    so the same digits), microseconds dropped when zero as ``isoformat`` does."""
    text = drops.field("uploaded_at").view(pa.timestamp("us")).cast(pa.string())
    text = pc.replace_substring(text, " ", "T", max_replacements=1)
    # the one "." is the fraction's, always 6 digits: a plain replace (an Arrow regex is
    # compiled at every call, 5x the time of this)
    text = pc.replace_substring(text, ".000000", "", max_replacements=1)
    return pc.binary_join_element_wise(text, "Z", "").to_pylist()  # type: ignore[no-any-return]


_NOT_PLAIN = re.compile(rb"[^\x20-\x7e]")
_ENCODE = msgspec.json.Encoder().encode


def _compact_json(value: object) -> str:
    """``json.dumps(value, separators=(",", ":"))`` of strings, integers, booleans and
    nulls: msgspec writes the same text when it is printable ASCII (json escapes everything
    else, msgspec writes UTF-8 as it is), and several times faster."""
    fast = _ENCODE(value)
    if _NOT_PLAIN.search(fast) is None:
        return fast.decode("ascii")
    return json.dumps(value, separators=(",", ":"))


_DOCUMENTS = ("dependency_graph", "constraints_file", "build_sequence_summary")


def _column(tbl: pa.Table, name: str) -> pa.Array:
    col = tbl.column(name)
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


def _views(arr: pa.Array) -> list[memoryview | None]:
    """A string column's values as views of its data buffer (None for a null)."""
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    _, offsets, data = arr.buffers()
    ends = memoryview(offsets).cast("q")[arr.offset : arr.offset + len(arr) + 1]
    body = memoryview(data if data is not None else b"")
    nulls = arr.is_null().to_pylist()
    return [None if nulls[i] else body[ends[i] : ends[i + 1]] for i in range(len(arr))]


def _entries(items: pa.StructArray) -> list[tuple[object, ...]]:
    """An artifact's drops as :meth:`ContentHasher.add` hashes them, from Arrow."""
    if len(items) == 0:
        return []
    names = items.type
    fields = [items.field(n).to_pylist() for n in ("filename", "sha256", "size")]
    extras = [
        items.field(n).to_pylist() if names.get_field_index(n) >= 0 else [None] * len(items)
        for n in ("yanked", "yanked_reason", "requires_python")
    ]
    out: list[tuple[object, ...]] = []
    for i, when in enumerate(_iso_times(items)):
        extra = (extras[0][i], extras[1][i], extras[2][i])
        base = (fields[0][i], fields[1][i], fields[2][i], when)
        out.append(base if extra == (None, None, None) else (*base, *extra))
    return out


class ContentHasher:
    """sha256 over a release's logical content: same data, same hash, whenever extracted."""

    def __init__(self, product: str, release: str, updated_at: datetime) -> None:
        self._h = hashlib.sha256()
        self._field(product)
        self._field(release)
        self._field(format_ts(updated_at))

    def _field(self, value: str | None) -> None:
        self._bytes(None if value is None else value.encode())

    def _bytes(self, data: bytes | memoryview | None) -> None:
        data = b"\xff" if data is None else data
        self._h.update(len(data).to_bytes(8, "big"))
        self._h.update(data)

    def add(self, row: ArtifactRow, drops: pa.StructArray | None = None) -> None:
        """Hash one artifact; ``drops`` is :func:`drops_array` of its drops, when built."""
        self._field(row.architecture)
        self._field(row.variant)
        self._field(row.build_id)
        self._field(format_ts(row.built_at) if row.built_at else None)
        self._field(row.dependency_graph)
        self._field(row.constraints_file)
        self._field(row.build_sequence_summary)
        if row.requirements is not None:  # files without requirements keep their hashes
            self._field("requirements")
            self._field(row.requirements)
        times = _iso_times(drops_array(row.drops) if drops is None else drops)
        # each drop as [filename, sha256, size, uploaded_at], plus the PEP 691 extras only
        # when given (files without them keep their hashes); tuples encode as arrays
        entries = [
            (d[0], d[7], d[8], t)
            if d[_EXTRAS:] == (None, None, None)
            else (d[0], d[7], d[8], t, *d[_EXTRAS:])
            for d, t in zip(row.drops, times, strict=True)
        ]
        self._field(_compact_json(entries))

    def add_table(self, tbl: pa.Table) -> None:
        """Hash the artifacts of a table read back from a spool file (the columns of
        :data:`SCHEMA` from ``architecture`` on), as :meth:`add` hashed them when written:
        the load's check that a file holds what its footer's hash says.  The documents are
        hashed as views of Arrow's buffers (no copy)."""
        keys = [_column(tbl, n).to_pylist() for n in ("architecture", "variant", "build_id")]
        built = _column(tbl, "built_at").to_pylist()
        docs = [_views(_column(tbl, n)) for n in _DOCUMENTS]
        has_requirements = "requirements" in tbl.column_names
        reqs = _views(_column(tbl, "requirements")) if has_requirements else []
        lists = _column(tbl, "drops")
        for i in range(tbl.num_rows):
            for column in keys:
                self._field(column[i])
            self._field(format_ts(built[i]) if built[i] is not None else None)
            for doc in docs:
                self._bytes(doc[i])
            if reqs and reqs[i] is not None:  # as add(): only when there are some
                self._field("requirements")
                self._bytes(reqs[i])
            self._field(_compact_json(_entries(lists.slice(i, 1).flatten())))

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def artifact_table(
    product: str,
    release: str,
    updated_at: datetime,
    row: ArtifactRow,
    drops: pa.StructArray | None = None,
) -> pa.Table:
    """One artifact as a one-row table in :data:`SCHEMA` (written as its own row group);
    ``drops`` is :func:`drops_array` of its drops, when built."""
    items = drops_array(row.drops) if drops is None else drops
    columns = [
        pa.array([product], pa.string()),
        pa.array([release], pa.string()),
        pa.array([updated_at], SCHEMA.field("release_updated_at").type),
        pa.array([row.architecture], pa.string()),
        pa.array([row.variant], pa.string()),
        pa.array([row.build_id], pa.string()),
        pa.array([row.built_at], SCHEMA.field("built_at").type),
        pa.array([row.dependency_graph], pa.large_string()),
        pa.array([row.constraints_file], pa.large_string()),
        pa.array([row.build_sequence_summary], pa.large_string()),
        pa.array([row.requirements], pa.large_string()),
        pa.ListArray.from_arrays(pa.array([0, len(items)], pa.int32()), items, type=_DROPS_TYPE),
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMA)
