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

__all__ = ["MAX_ARTIFACT_BYTES", "check_decoded_size", "check_schema", "decoded_size"]

#: The most one artifact (one row group) may decode to.  Loading holds about three times
#: an artifact's decoded size at once (decompressed pages, decoded columns, their COPY
#: rendering), so 128 MiB keeps a loader within the worker pod's 512 MiB; a real artifact
#: is a few MB (the largest benchmark artifacts: under 10 MB).
MAX_ARTIFACT_BYTES = 128 * 1024 * 1024

#: Least bytes one decoded value takes, by Parquet physical type.
_WIDTH = {"BOOLEAN": 1, "INT32": 4, "FLOAT": 4, "INT64": 8, "DOUBLE": 8, "INT96": 12}
_TEXT_WIDTH = 16  # BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY: a 4-byte offset and a short text


def decoded_size(rg: pq.RowGroupMetaData) -> tuple[int, int]:
    """``(estimated decoded bytes, most values in one column)`` of a row group, from its
    metadata alone."""
    total = most = 0
    for j in range(rg.num_columns):
        cc = rg.column(j)
        values = int(cc.num_values)
        width = _WIDTH.get(str(cc.physical_type), _TEXT_WIDTH)
        total += max(int(cc.total_uncompressed_size), values * width)
        most = max(most, values)
    return total, most


def check_decoded_size(
    md: pq.FileMetaData, path: str | Path, limit: int = MAX_ARTIFACT_BYTES
) -> None:
    """Refuse (:class:`SpoolFileError`, not corrupt: its release is not fetched again) a
    file one of whose row groups would decode to more than ``limit`` bytes."""
    for i in range(md.num_row_groups):
        size, values = decoded_size(md.row_group(i))
        if size > limit:
            raise SpoolFileError(
                f"artifact {i + 1} of {md.num_row_groups} would decode to about "
                f"{size / 1e6:,.0f} MB ({values:,} values in its largest column), over the "
                f"{limit // (1024 * 1024)} MiB one artifact may take at load: refused "
                "before decoding",
                path=str(path),
            )


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
