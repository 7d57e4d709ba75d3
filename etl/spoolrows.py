"""A release's rows as the spool writes them: one one-row table per artifact, and the
content hash over the release's logical content (what names the file and decides, at
load, whether anything changed)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import pyarrow as pa

from etl.spoolformat import SCHEMA, ArtifactRow, Drop, format_ts


class ContentHasher:
    """sha256 over a release's logical content: same data, same hash, whenever extracted."""

    def __init__(self, product: str, release: str, updated_at: datetime) -> None:
        self._h = hashlib.sha256()
        self._field(product)
        self._field(release)
        self._field(format_ts(updated_at))

    def _field(self, value: str | None) -> None:
        data = b"\xff" if value is None else value.encode()
        self._h.update(len(data).to_bytes(8, "big"))
        self._h.update(data)

    def add(self, row: ArtifactRow) -> None:
        self._field(row.architecture)
        self._field(row.variant)
        self._field(row.build_id)
        self._field(format_ts(row.built_at) if row.built_at else None)
        self._field(row.dependency_graph)
        self._field(row.constraints_file)
        self._field(row.build_sequence_summary)
        drops = [
            [d.filename, d.sha256, d.size, format_ts(d.uploaded_at) if d.uploaded_at else None]
            # the PEP 691 extras only when given: files without them keep their hashes
            + ([d.yanked, d.yanked_reason, d.requires_python] if _has_extras(d) else [])
            for d in row.drops
        ]
        self._field(json.dumps(drops, separators=(",", ":")))

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def _has_extras(d: Drop) -> bool:
    return d.yanked is not None or d.yanked_reason is not None or d.requires_python is not None


def artifact_table(product: str, release: str, updated_at: datetime, row: ArtifactRow) -> pa.Table:
    """One artifact as a one-row table in :data:`SCHEMA` (written as its own row group)."""
    drops = [
        {
            "filename": d.filename,
            "name": d.name,
            "version": d.version,
            "build_tag": d.build_tag,
            "python_tag": d.python_tag,
            "abi_tag": d.abi_tag,
            "platform_tag": d.platform_tag,
            "sha256": d.sha256,
            "size": d.size,
            "uploaded_at": d.uploaded_at,
            "yanked": d.yanked,
            "yanked_reason": d.yanked_reason,
            "requires_python": d.requires_python,
        }
        for d in row.drops
    ]
    columns: dict[str, Any] = {
        "product": [product],
        "release": [release],
        "release_updated_at": [updated_at],
        "architecture": [row.architecture],
        "variant": [row.variant],
        "build_id": [row.build_id],
        "built_at": [row.built_at],
        "dependency_graph": [row.dependency_graph],
        "constraints_file": [row.constraints_file],
        "build_sequence_summary": [row.build_sequence_summary],
        "drops": [drops],
    }
    return pa.Table.from_pydict(columns, schema=SCHEMA)
