"""The layout of one spool file: one Parquet file = one release, one row group = one artifact.

Parquet holds one table per file, so the release's drops are nested: every artifact row
carries its wheel files as a ``list<struct>`` column.  Readers flatten them
(``UNNEST(drops)`` in DuckDB; ``inspect`` exposes a flat ``drops`` view).

File-level facts live in the Parquet key-value metadata under ``wheels_etl.*`` keys, so
``duckdb``'s ``parquet_kv_metadata()`` or ``pyarrow.parquet.read_metadata`` shows them
without reading any row.  A file's footer must agree with its name
(:mod:`etl.spooling.names`): :func:`check_name`.  Every way a file can be unreadable or
contradict itself is a :class:`~etl.errors.CorruptSpoolFileError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, NamedTuple, TypeAlias

import pyarrow as pa
import pyarrow.parquet as pq

from etl.errors import CorruptSpoolFileError
from etl.spooling.checks import check_decoded_size, check_schema
from etl.spooling.names import SpoolName
from etl.timestamps import format_ts, parse_ts

#: Bumped on any incompatible change of the columns below; the loader refuses others.
SPOOL_SCHEMA_VERSION = 1
META_PREFIX = "wheels_etl."
JSON_COLUMNS = ("dependency_graph", "constraints_file", "build_sequence_summary", "requirements")
#: Columns added after version 1 was first written: files without them are still version 1
#: and read as if the column held nulls (:func:`iter_row_groups`).
OPTIONAL_COLUMNS = ("requirements",)

TS = pa.timestamp("us", tz="UTC")

DROP_TYPE = pa.struct(
    [
        pa.field("filename", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),  # PEP 503 normalized
        pa.field("version", pa.string(), nullable=False),
        pa.field("build_tag", pa.string()),  # e.g. "0" or "1abc"; null when absent
        pa.field("python_tag", pa.string(), nullable=False),
        pa.field("abi_tag", pa.string(), nullable=False),
        pa.field("platform_tag", pa.string(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
        pa.field("size", pa.int64(), nullable=False),
        pa.field("uploaded_at", TS),
        # PEP 691, when the source gives them (null otherwise); files written before these
        # fields existed lack them and read as null.
        pa.field("yanked", pa.bool_()),
        pa.field("yanked_reason", pa.string()),
        pa.field("requires_python", pa.string()),
    ]
)

SCHEMA = pa.schema(
    [
        pa.field("product", pa.string(), nullable=False),
        pa.field("release", pa.string(), nullable=False),
        pa.field("release_updated_at", TS, nullable=False),
        pa.field("architecture", pa.string(), nullable=False),
        pa.field("variant", pa.string(), nullable=False),
        pa.field("build_id", pa.string()),
        pa.field("built_at", TS),
        # The three large documents, as JSON text (valid JSON, checked at extract time).
        pa.field("dependency_graph", pa.large_string()),
        pa.field("constraints_file", pa.large_string()),
        pa.field("build_sequence_summary", pa.large_string()),
        # the collection's top-level requirements (GitLab tarballs' release/inputs/
        # requirements.txt), as constraints_file's JSON array; null when there is none
        pa.field("requirements", pa.large_string()),
        pa.field("drops", pa.list_(pa.field("item", DROP_TYPE, nullable=False))),
    ]
)


class Drop(NamedTuple):
    """One wheel file of an artifact; its fields in :data:`DROP_TYPE`'s order (a named
    tuple: a release's hundreds of drops are built cheaply, and turned into Arrow columns
    with one ``zip``)."""

    filename: str
    name: str
    version: str
    build_tag: str | None
    python_tag: str
    abi_tag: str
    platform_tag: str
    sha256: str
    size: int
    uploaded_at: datetime | None
    yanked: bool | None = None
    yanked_reason: str | None = None
    requires_python: str | None = None


@dataclass(frozen=True)
class ArtifactRow:
    """One artifact as extract hands it to the spool writer."""

    architecture: str
    variant: str
    build_id: str | None
    built_at: datetime | None
    dependency_graph: str | None
    constraints_file: str | None
    build_sequence_summary: str | None
    drops: tuple[Drop, ...]
    requirements: str | None = None


@dataclass(frozen=True)
class FileMeta:
    """What a spool file says about itself (its Parquet key-value metadata)."""

    schema_version: int
    product: str
    release: str
    updated_at: datetime
    extracted_at: datetime
    source_url: str
    content_sha256: str
    artifacts: int
    drops: int
    json_bytes: int

    def to_kv(self) -> dict[str, str]:
        values = {
            "schema_version": str(self.schema_version),
            "product": self.product,
            "release": self.release,
            "updated_at": format_ts(self.updated_at),
            "extracted_at": format_ts(self.extracted_at),
            "source_url": self.source_url,
            "content_sha256": self.content_sha256,
            "artifacts": str(self.artifacts),
            "drops": str(self.drops),
            "json_bytes": str(self.json_bytes),
        }
        return {META_PREFIX + k: v for k, v in values.items()}

    @classmethod
    def from_kv(cls, kv: dict[bytes, bytes] | None, path: str | Path) -> FileMeta:
        raw = {k.decode(): v.decode() for k, v in (kv or {}).items()}
        if META_PREFIX + "schema_version" not in raw:
            raise CorruptSpoolFileError("not a wheels-etl spool file (no metadata)", path=str(path))
        get = {k[len(META_PREFIX) :]: v for k, v in raw.items() if k.startswith(META_PREFIX)}
        try:
            version = int(get["schema_version"])
            if version != SPOOL_SCHEMA_VERSION:
                raise CorruptSpoolFileError(
                    f"unknown spool schema version {version} "
                    f"(this wheels-etl reads version {SPOOL_SCHEMA_VERSION})",
                    path=str(path),
                )
            return cls(
                schema_version=version,
                product=get["product"],
                release=get["release"],
                updated_at=parse_ts(get["updated_at"]),
                extracted_at=parse_ts(get["extracted_at"]),
                source_url=get["source_url"],
                content_sha256=get["content_sha256"],
                artifacts=int(get["artifacts"]),
                drops=int(get["drops"]),
                json_bytes=int(get["json_bytes"]),
            )
        except (KeyError, ValueError) as exc:
            raise CorruptSpoolFileError(f"bad spool metadata: {exc!r}", path=str(path)) from exc


Source: TypeAlias = "str | Path | pa.NativeFile | IO[bytes]"


def _name(source: Source, name: str | None) -> str:
    return name if name is not None else str(getattr(source, "name", source))


#: Columns written without a dictionary and without min/max statistics: the JSON documents
#: (one value per row group, never filtered on) cost the writer a dictionary attempt and a
#: min/max over megabytes of text each, and the reader a dictionary decode, for nothing.
_PLAIN_COLUMNS = frozenset(JSON_COLUMNS)
_INDEXED = [f.name for f in SCHEMA if f.name not in _PLAIN_COLUMNS]
#: Min/max statistics only for the artifact's own columns (what a reader filters row groups
#: on: product, release, architecture, ...).  A row group is one artifact, so the min and
#: max of its drops' names or hashes select nothing, and computing them was 35 % of the
#: writer's time for a release of 600 drops (5.3 -> 3.5 ms).
_WITH_STATISTICS = [name for name in _INDEXED if name != "drops"]


#: Codecs of new spool files (readers take any).  ``lz4``, the default: the cheapest to
#: write and to read (loading a JSON-heavy release decodes in half the CPU of zstd);
#: ``zstd`` (level 1: within 2 % of level 3's size at 60 % of its CPU) makes files about
#: 40 % smaller.  Measured in ``benchmarks/REPORT.md``.
COMPRESSIONS: dict[str, dict[str, Any]] = {
    "lz4": {"compression": "lz4"},
    "zstd": {"compression": "zstd", "compression_level": 1},
    "none": {"compression": "none"},  # for measurements (benchmarks/), not offered
}


def parquet_writer(stream: IO[bytes] | pa.NativeFile, compression: str = "lz4") -> pq.ParquetWriter:
    """The Parquet writer of a spool file over a stream the spool opened."""
    if compression not in COMPRESSIONS:
        raise ValueError(f"unknown spool compression {compression!r}")
    return pq.ParquetWriter(
        stream,
        SCHEMA,
        use_dictionary=_INDEXED,
        write_statistics=_WITH_STATISTICS,
        **COMPRESSIONS[compression],
    )


def read_meta(source: Source, name: str | None = None, *, bounded: bool = False) -> FileMeta:
    """Read and validate a spool file's footer (raises :class:`CorruptSpoolFileError`); with
    ``bounded``, a file whose row groups would decode to too much is refused as well
    (:func:`etl.spooling.checks.check_decoded_size`).

    ``source`` is a path or a random-access stream (what :meth:`Spool.open` returns);
    ``name`` is the file's name for messages.
    """
    path = _name(source, name)
    try:
        md = pq.read_metadata(source)
    except (OSError, pa.ArrowException) as exc:
        raise CorruptSpoolFileError(f"unreadable Parquet file: {exc}", path=str(path)) from exc
    meta = _checked_meta(md, path)
    if bounded:
        check_decoded_size(md, path)
    return meta


def open_file(source: Source, name: str | None = None) -> tuple[pq.ParquetFile, FileMeta]:
    """The file opened once: a reader of its row groups and its validated footer."""
    path = _name(source, name)
    try:
        pf = pq.ParquetFile(source)
    except (OSError, pa.ArrowException) as exc:
        raise CorruptSpoolFileError(f"unreadable Parquet file: {exc}", path=str(path)) from exc
    meta = _checked_meta(pf.metadata, path)
    check_decoded_size(pf.metadata, path)
    return pf, meta


def _checked_meta(md: pq.FileMetaData, path: str) -> FileMeta:
    meta = FileMeta.from_kv(md.metadata, path)
    if md.num_rows != meta.artifacts:
        raise CorruptSpoolFileError(
            f"file holds {md.num_rows} artifact rows, its metadata says {meta.artifacts}",
            path=str(path),
        )
    try:
        schema = md.schema.to_arrow_schema()
    except (pa.ArrowException, ValueError) as exc:
        raise CorruptSpoolFileError(f"unreadable Parquet schema: {exc}", path=str(path)) from exc
    missing = [
        f.name for f in SCHEMA if f.name not in schema.names and f.name not in OPTIONAL_COLUMNS
    ]
    if missing:
        raise CorruptSpoolFileError(f"spool file lacks columns {missing}", path=str(path))
    check_schema(schema, SCHEMA, path)
    return meta


def iter_row_groups(
    source: Source | pq.ParquetFile,
    columns: list[str] | None = None,
    name: str | None = None,
    *,
    use_threads: bool = True,
) -> Iterator[pa.Table]:
    """Yield the file one artifact (row group) at a time: memory bounded by one artifact.

    ``use_threads=False`` decodes in the caller's thread (less CPU in all: for a caller
    that is a background thread already).
    """
    path = _name(source, name)
    try:
        pf = source if isinstance(source, pq.ParquetFile) else pq.ParquetFile(source)
        absent = [
            SCHEMA.field(c)
            for c in OPTIONAL_COLUMNS
            if (columns is None or c in columns) and c not in pf.schema_arrow.names
        ]
        for i in range(pf.num_row_groups):
            tbl = pf.read_row_group(i, columns=columns, use_threads=use_threads)
            for f in absent:  # a file written before the column existed: nulls
                tbl = tbl.append_column(f, pa.nulls(tbl.num_rows, f.type))
            yield tbl
    except (OSError, pa.ArrowException) as exc:
        raise CorruptSpoolFileError(
            f"corrupt or truncated Parquet file: {exc}", path=str(path)
        ) from exc


def check_name(name: str, meta: FileMeta) -> FileMeta:
    """``meta`` if the file's name agrees with it (release, timestamp, hash); a
    :class:`CorruptSpoolFileError` otherwise."""
    parsed = SpoolName.parse(name)
    if not parsed.matches(meta.product, meta.release):
        raise CorruptSpoolFileError(
            f"file name says {parsed.release_key}, its metadata says {meta.product}/{meta.release}",
            path=name,
        )
    if meta.updated_at != parsed.updated_at or not meta.content_sha256.startswith(
        parsed.short_hash
    ):
        raise CorruptSpoolFileError(
            f"file name (updated {format_ts(parsed.updated_at)}, hash {parsed.short_hash})"
            f" does not match its metadata (updated {format_ts(meta.updated_at)},"
            f" hash {meta.content_sha256[:16]})",
            path=name,
        )
    return meta
