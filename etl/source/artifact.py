"""One artifact's four documents → its spool row, each document checked (and parsed) once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from etl.protocol import ArtifactFileKey
from etl.source.constraints import constraints_to_json
from etl.source.documents import ArtifactRef, json_document_text
from etl.source.wheels import wheels_to_drops
from etl.spooling.format import ArtifactRow


class Body(Protocol):
    """A fetched document: where it was read (for messages) and its bytes."""

    @property
    def url(self) -> str: ...

    @property
    def data(self) -> bytes: ...


def artifact_row(
    art: ArtifactRef, docs: Mapping[ArtifactFileKey, Body], *, release: str
) -> ArtifactRow:
    """The row of ``art``: the graph and the summary as the JSON text the source sent
    (checked), the constraints as their JSON array, the wheels as drops."""
    g, c, s, w = (
        docs[k]
        for k in ("dependency_graph", "constraints_file", "build_sequence_summary", "wheels")
    )
    return ArtifactRow(
        architecture=art.architecture,
        variant=art.variant,
        build_id=art.build_id,
        built_at=art.built_at,
        dependency_graph=json_document_text(g.data, url=g.url, release=release, expect=dict),
        constraints_file=constraints_to_json(c.data, url=c.url, release=release),
        build_sequence_summary=json_document_text(s.data, url=s.url, release=release, expect=list),
        drops=wheels_to_drops(w.data, url=w.url, release=release),
    )
