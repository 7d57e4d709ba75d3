"""What a correct ETL lands for a source tree, recomputed from the files.

Plain ``json``, the generator's tree walk (:mod:`tests.support.gen.readback`), the
reference ``packaging`` requirement parser for constraints and the oracle's own wheel-name
split (:mod:`tests.support.oracle.wheelname`): nothing from ``etl/``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from tests.support.gen.model import parse_ts
from tests.support.gen.readback import _load, iter_release_entries, resolve
from tests.support.oracle.wheelname import pep503, split_wheel_name


@dataclass(frozen=True)
class ExpectedConstraint:
    """One constraints line as the spool stores it (protocol: name, specifier, marker)."""

    name: str
    specifier: str
    marker: str | None


@dataclass(frozen=True)
class ExpectedDrop:
    filename: str
    name: str  # PEP 503 normalized
    version: str
    build_tag: str | None
    python_tag: str
    abi_tag: str
    platform_tag: str
    sha256: str
    size: int
    uploaded_at: datetime | None


@dataclass(frozen=True)
class ExpectedArtifact:
    architecture: str
    variant: str
    build_id: str | None
    built_at: datetime | None
    graph_nodes: int  # package nodes, root "" excluded
    graph_sha256: str  # of the canonical JSON (sort_keys, compact) of graph.json
    constraints: tuple[ExpectedConstraint, ...]
    summary_entries: int
    drops: tuple[ExpectedDrop, ...]


@dataclass(frozen=True)
class ExpectedRelease:
    product: str
    version: str
    updated_at: datetime
    url: str  # path of release.json relative to the source root
    artifacts: tuple[ExpectedArtifact, ...]

    @property
    def drop_count(self) -> int:
        return sum(len(a.drops) for a in self.artifacts)


def parse_constraints(text: str) -> tuple[ExpectedConstraint, ...]:
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        req = Requirement(line)
        out.append(
            ExpectedConstraint(
                name=pep503(req.name),
                specifier=str(req.specifier),
                marker=str(req.marker) if req.marker else None,
            )
        )
    return tuple(out)


def expected_drop(entry: dict[str, Any]) -> ExpectedDrop:
    filename = entry["filename"]
    wheel = split_wheel_name(filename)
    uploaded = entry.get("upload-time")
    return ExpectedDrop(
        filename=filename,
        name=wheel.name,
        version=wheel.version,
        build_tag=wheel.build_tag,
        python_tag=wheel.python_tag,
        abi_tag=wheel.abi_tag,
        platform_tag=wheel.platform_tag,
        sha256=entry["hashes"]["sha256"].lower(),
        size=int(entry["size"]),
        uploaded_at=parse_ts(uploaded) if uploaded else None,
    )


def iter_expected(root: Path) -> Iterator[ExpectedRelease]:
    """What a correct ETL lands for the tree at ``root``, recomputed from the files."""
    root = Path(root)
    for product, _page, entry, rel_path in iter_release_entries(root):
        rel = _load(rel_path)
        artifacts = []
        for art in rel["artifacts"]:
            files = art["files"]
            graph_path = resolve(rel_path, files["dependency_graph"], root)
            graph = _load(graph_path)
            canon = json.dumps(graph, sort_keys=True, separators=(",", ":"))
            constraints = resolve(rel_path, files["constraints_file"], root).read_text()
            summary_doc = _load(resolve(rel_path, files["build_sequence_summary"], root))
            wheels = _load(resolve(rel_path, files["wheels"], root))
            built = art.get("built_at")
            artifacts.append(
                ExpectedArtifact(
                    architecture=art["architecture"],
                    variant=art["variant"],
                    build_id=art.get("build_id"),
                    built_at=parse_ts(built) if built else None,
                    graph_nodes=sum(1 for k in graph if k != ""),
                    graph_sha256=hashlib.sha256(canon.encode()).hexdigest(),
                    constraints=parse_constraints(constraints),
                    summary_entries=len(summary_doc),
                    drops=tuple(expected_drop(f) for f in wheels["files"]),
                )
            )
        yield ExpectedRelease(
            product=product,
            version=entry["version"],
            updated_at=parse_ts(entry["updated_at"]),
            url=rel_path.relative_to(root).as_posix(),
            artifacts=tuple(artifacts),
        )
