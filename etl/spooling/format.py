"""The layout of one spool file: one Parquet file = one release, one row group = one artifact.

Parquet holds one table per file, so the release's drops are nested: every artifact row
carries its wheel files as a ``list<struct>`` column.  Readers flatten them
(``UNNEST(drops)`` in DuckDB; ``inspect`` exposes a flat ``drops`` view).

File-level facts live in the Parquet key-value metadata under ``wheels_etl.*`` keys, so
``duckdb``'s ``parquet_kv_metadata()`` or ``pyarrow.parquet.read_metadata`` shows them
without reading any row.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, NamedTuple, TypeAlias

import pyarrow as pa
import pyarrow.parquet as pq

from etl.errors import SpoolFileError
from etl.protocol import IDENT_PATTERN

#: Bumped on any incompatible change of the columns below; the loader refuses others.
SPOOL_SCHEMA_VERSION = 1
META_PREFIX = "wheels_etl."
JSON_COLUMNS = ("dependency_graph", "constraints_file", "build_sequence_summary")

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
            raise SpoolFileError("not a wheels-etl spool file (no metadata)", path=str(path))
        get = {k[len(META_PREFIX) :]: v for k, v in raw.items() if k.startswith(META_PREFIX)}
        try:
            version = int(get["schema_version"])
            if version != SPOOL_SCHEMA_VERSION:
                raise SpoolFileError(
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
            raise SpoolFileError(f"bad spool metadata: {exc!r}", path=str(path)) from exc


def format_ts(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_ts(text: str) -> datetime:
    """RFC 3339 → aware UTC datetime (raises ValueError)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {text!r}")
    return value.astimezone(UTC)


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


def read_meta(source: Source, name: str | None = None) -> FileMeta:
    """Read and validate a spool file's footer (raises :class:`SpoolFileError`).

    ``source`` is a path or a random-access stream (what :meth:`Spool.open` returns);
    ``name`` is the file's name for messages.
    """
    path = _name(source, name)
    try:
        md = pq.read_metadata(source)
    except (OSError, pa.ArrowException) as exc:
        raise SpoolFileError(f"unreadable Parquet file: {exc}", path=str(path)) from exc
    return _checked_meta(md, path)


def open_file(source: Source, name: str | None = None) -> tuple[pq.ParquetFile, FileMeta]:
    """The file opened once: a reader of its row groups and its validated footer."""
    path = _name(source, name)
    try:
        pf = pq.ParquetFile(source)
    except (OSError, pa.ArrowException) as exc:
        raise SpoolFileError(f"unreadable Parquet file: {exc}", path=str(path)) from exc
    return pf, _checked_meta(pf.metadata, path)


def _checked_meta(md: pq.FileMetaData, path: str) -> FileMeta:
    meta = FileMeta.from_kv(md.metadata, path)
    if md.num_rows != meta.artifacts:
        raise SpoolFileError(
            f"file holds {md.num_rows} artifact rows, its metadata says {meta.artifacts}",
            path=str(path),
        )
    schema = md.schema.to_arrow_schema()
    missing = [f.name for f in SCHEMA if f.name not in schema.names]
    if missing:
        raise SpoolFileError(f"spool file lacks columns {missing}", path=str(path))
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
        for i in range(pf.num_row_groups):
            yield pf.read_row_group(i, columns=columns, use_threads=use_threads)
    except (OSError, pa.ArrowException) as exc:
        raise SpoolFileError(f"corrupt or truncated Parquet file: {exc}", path=str(path)) from exc


# --- file names -------------------------------------------------------------------

SUFFIX = ".parquet"
_SEP = "~"  # not in the identifier alphabet [A-Za-z0-9._+-], so names parse unambiguously
#: A product or release longer than this appears in file and record names shortened to its
#: first :data:`_KEEP` characters, ``=`` (outside the identifier alphabet, so a shortened
#: part never equals a real identifier) and 16 hex digits of its sha256: every name stays
#: far below the 255-byte limit of file systems (at most ~150 bytes for a spool file, with
#: room for temp and sidecar suffixes) while 128-character identifiers (the protocol's
#: maximum) still work.  The full identity is always in the Parquet metadata and records.
NAME_PART_MAX = 48
_KEEP = NAME_PART_MAX - 17
_PART = rf"(?:[A-Za-z0-9][A-Za-z0-9._+-]{{{_KEEP - 1}}}=[0-9a-f]{{16}}|{IDENT_PATTERN})"
_NAME_RE = re.compile(
    rf"^(?P<product>{_PART})~(?P<release>{_PART})"
    r"~(?P<ts>\d{8}T\d{6}(?:\.\d{6})?Z)~(?P<hash>[0-9a-f]{16})\.parquet$"
)
_TS_NAME = "%Y%m%dT%H%M%S"


def name_part(ident: str) -> str:
    """``ident`` as it appears in file and record names (shortened when long, see above)."""
    if len(ident) <= NAME_PART_MAX:
        return ident
    return f"{ident[:_KEEP]}={hashlib.sha256(ident.encode()).hexdigest()[:16]}"


def release_stem(product: str, release: str) -> str:
    """``product~release`` in names (temp uploads, records): bounded length, unambiguous."""
    return _SEP.join([name_part(product), name_part(release)])


@dataclass(frozen=True, order=True)
class SpoolName:
    """The parts encoded in a spool file name (built and parsed only here).

    Built from the full product and release; parsed back, a long one comes back in its
    shortened name form (:attr:`shortened`): the full identity is then in the file's
    metadata (:func:`read_meta`), and :meth:`matches` compares the two.
    """

    product: str
    release: str
    updated_at: datetime
    short_hash: str

    def __str__(self) -> str:
        ts = self.updated_at.astimezone(UTC)
        text = f"{ts.year:04d}" + ts.strftime(_TS_NAME[2:])  # glibc %Y does not pad year 1
        if ts.microsecond:
            text += f".{ts.microsecond:06d}"
        stem = release_stem(self.product, self.release)
        return _SEP.join([stem, text + "Z", self.short_hash]) + SUFFIX

    @classmethod
    def parse(cls, name: str) -> SpoolName:
        m = _NAME_RE.match(name)
        if not m:
            raise SpoolFileError("file name is not a wheels-etl spool name", path=name)
        ts_text = m["ts"][:-1]
        layout = _TS_NAME + (".%f" if "." in ts_text else "")
        ts = datetime.strptime(ts_text, layout).replace(tzinfo=UTC)
        return cls(m["product"], m["release"], ts, m["hash"])

    @property
    def shortened(self) -> bool:
        """The product or release is in its shortened form (read the metadata for it)."""
        return "=" in self.product or "=" in self.release

    def matches(self, product: str, release: str) -> bool:
        """Whether this name belongs to the full ``product``/``release``."""
        return (name_part(product), name_part(release)) == (
            name_part(self.product),
            name_part(self.release),
        )

    @property
    def release_key(self) -> str:
        return self.key(self.product, self.release)

    @staticmethod
    def key(product: str, release: str) -> str:
        """``product/release``: how a release is named in messages, locks and reports."""
        return f"{product}/{release}"


def spool_name(product: str, release: str, updated_at: datetime, content_sha256: str) -> str:
    return str(SpoolName(product, release, updated_at, content_sha256[:16]))
