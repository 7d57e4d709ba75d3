"""What a spool file must satisfy before a single value of it is decoded.

A spool file is input like any other: whoever can write to ``ready/`` can put anything
there.  Two checks read only the Parquet footer:

* :func:`check_schema`: every column has the spool schema's type (a JSON column of type
  int64 would otherwise load as jsonb ``1``);
* :func:`check_decoded_size`: no artifact (row group) decodes to more than
  :data:`MAX_ARTIFACT_BYTES`.  Parquet compresses and dictionary-encodes, so an 8 kB file
  can hold two million identical drops (1.4 GB once decoded and rendered for COPY) or a
  200 MB JSON document; the footer's row-group metadata says how many values each column
  holds and how many bytes they take uncompressed, before anything is decoded.

The estimate of one column chunk is the larger of its uncompressed size and its value
count times the width a decoded value takes at least (:data:`_WIDTH`: 8 bytes for an
int64 or timestamp, 16 for a string, its offset plus a short text).  It is a floor, not
a ceiling: long identical strings under a dictionary decode to more than it says.  What
gets through it anyway and still kills its loader is stopped by the spool's kill count
(:data:`etl.spooling.sidecar.MAX_LOADER_DEATHS`).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from etl.errors import CorruptSpoolFileError, SpoolFileError
from etl.protocol import MAX_ARTIFACT_BYTES

__all__ = [
    "MAX_ARTIFACT_BYTES", "check_decoded_size", "check_schema", "decoded_size", "oversized",
]  # fmt: skip

#: Least bytes one decoded value takes, by Parquet physical type.
_WIDTH = {"BOOLEAN": 1, "INT32": 4, "FLOAT": 4, "INT64": 8, "DOUBLE": 8, "INT96": 12}
_TEXT_WIDTH = 16  # BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY: a 4-byte offset and a short text


def decoded_size(rg: pq.RowGroupMetaData) -> tuple[int, int]:
    """``(estimated decoded bytes, most values in one column)`` of a row group, from its
    metadata alone."""
    sizes = _column_sizes(rg)
    return sum(sizes.values()), max((v for _, v in sizes), default=0)


def _column_sizes(rg: pq.RowGroupMetaData) -> dict[tuple[str, int], int]:
    """Each column chunk's estimated decoded bytes, keyed by (top-level column, values)."""
    out: dict[tuple[str, int], int] = {}
    for j in range(rg.num_columns):
        cc = rg.column(j)
        values = int(cc.num_values)
        width = _WIDTH.get(str(cc.physical_type), _TEXT_WIDTH)
        key = (str(cc.path_in_schema).split(".")[0], values)
        out[key] = out.get(key, 0) + max(int(cc.total_uncompressed_size), values * width)
    return out


def oversized(md: pq.FileMetaData, limit: int = MAX_ARTIFACT_BYTES) -> str | None:
    """Why a file with this footer cannot be loaded (one of its row groups would decode to
    more than ``limit`` bytes, naming the artifact and its largest column: a document, or
    ``drops``), or None.  The one size check: load refuses such a file, extract does not
    write it."""
    for i in range(md.num_row_groups):
        rg = md.row_group(i)
        sizes = _column_sizes(rg)
        size = sum(sizes.values())
        if size > limit:
            by_column: dict[str, int] = {}
            for (column, _), n in sizes.items():
                by_column[column] = by_column.get(column, 0) + n
            largest = max(by_column, key=lambda c: by_column[c])
            values = max(v for _, v in sizes)
            return (
                f"artifact {i + 1} of {md.num_row_groups}{_which(rg)} would decode to about "
                f"{size / 1e6:,.0f} MB (its largest part: {largest}, about "
                f"{by_column[largest] / 1e6:,.0f} MB; {values:,} values in its largest "
                f"column), over the {limit // (1024 * 1024)} MiB one artifact may take at load"
            )
    return None


def _which(rg: pq.RowGroupMetaData) -> str:
    """`` (architecture/variant)`` of a row group, from its statistics when written."""
    names = []
    for j in range(rg.num_columns):
        cc = rg.column(j)
        if cc.path_in_schema in ("architecture", "variant") and cc.is_stats_set:
            stats = cc.statistics
            if stats.has_min_max and stats.min == stats.max:
                names.append(str(stats.min))
    return f" ({'/'.join(names)})" if len(names) == 2 else ""


def check_decoded_size(
    md: pq.FileMetaData, path: str | Path, limit: int = MAX_ARTIFACT_BYTES
) -> None:
    """Refuse (:class:`SpoolFileError`, not corrupt: its release is not fetched again) a
    file one of whose row groups would decode to more than ``limit`` bytes."""
    reason = oversized(md, limit)
    if reason is not None:
        raise SpoolFileError(f"{reason}: refused before decoding", path=str(path))


def _same_type(got: pa.DataType, want: pa.DataType) -> bool:
    """``got`` reads as ``want``: equal, a JSON column as string or large string, a UTC
    timestamp in microseconds whatever its zone is called."""
    if pa.types.is_timestamp(want):
        return bool(
            pa.types.is_timestamp(got)
            and got.unit == "us"
            and got.tz in ("UTC", "+00:00", "Etc/UTC", "Z")
        )
    if pa.types.is_large_string(want):
        return bool(pa.types.is_large_string(got) or pa.types.is_string(got))
    return bool(got.equals(want))


#: Fields of a drop that files written before PEP 691 support lack (read as null).
_OPTIONAL_DROP_FIELDS = ("yanked", "yanked_reason", "requires_python")


def check_schema(schema: pa.Schema, want: pa.Schema, path: str | Path) -> None:
    """Every column of ``want`` (the spool schema) that the file has is of its type; a
    drop's PEP 691 extras may be absent.  A file with, say, a JSON column of type int64 is
    refused naming the column (:class:`CorruptSpoolFileError`: not a file extract wrote)."""
    for field in want:
        if field.name not in schema.names:
            continue
        got = schema.field(field.name).type
        if pa.types.is_list(field.type):
            bad = _list_of_struct_error(got, field.type.value_type)
            if bad is not None:
                raise CorruptSpoolFileError(f"column {field.name}: {bad}", path=str(path))
        elif not _same_type(got, field.type):
            raise CorruptSpoolFileError(
                f"column {field.name} is of type {got}, the spool schema says {field.type}",
                path=str(path),
            )


def _list_of_struct_error(got: pa.DataType, item: pa.StructType) -> str | None:
    if not pa.types.is_list(got) or not pa.types.is_struct(got.value_type):
        return f"of type {got}, the spool schema says list<struct<...>>"
    have: pa.StructType = got.value_type
    for field in item:
        index = have.get_field_index(field.name)
        if index < 0:
            if field.name in _OPTIONAL_DROP_FIELDS:
                continue
            return f"its items lack the field {field.name}"
        field_type = have.field(index).type
        if not _same_type(field_type, field.type):
            return (
                f"its items' {field.name} is of type {field_type}, "
                f"the spool schema says {field.type}"
            )
    return None
