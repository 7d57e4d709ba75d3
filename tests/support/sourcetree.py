"""Build a small, valid wheel-collections source tree (protocol v1) for tests.

The artifact bodies are real fromager output (``samples/fromager/stevedore`` in the repo);
``wheels.json`` lists the wheels named in its build-sequence summary.  Release listings can
be split into pages: page 1 is ``releases.json``, page N is ``releases.json@page=N`` on
disk, which :class:`tests.support.httpserver.SourceServer` serves as
``releases.json?page=N`` (the way a paginating service would)::

    tree = write_source_tree(tmp_path / "src", {"rhai": ["3.0.0", "3.0.1"]}, page_size=1)
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "fromager" / "stevedore"
FORMAT = "wheel-collections/1"
DEFAULT_ARTIFACTS = (("x86_64", "cpu"), ("aarch64", "cpu"))


def sample_bodies() -> dict[str, bytes]:
    """The four artifact files, keyed by their file name in the tree."""
    summary = json.loads((SAMPLES / "build-sequence-summary.json").read_bytes())
    files = []
    for entry in summary:
        filename = posixpath.basename(entry["wheel_filename"])
        files.append(
            {
                "filename": filename,
                "hashes": {"sha256": hashlib.sha256(filename.encode()).hexdigest()},
                "size": 1000 + len(filename),
                "upload-time": "2026-09-30T22:41:10Z",
            }
        )
    return {
        "graph.json": (SAMPLES / "graph.json").read_bytes(),
        "constraints.txt": (SAMPLES / "constraints.txt").read_bytes(),
        "build-sequence-summary.json": (SAMPLES / "build-sequence-summary.json").read_bytes(),
        "wheels.json": json.dumps({"files": files}, indent=1).encode(),
    }


def _dump(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")


def updated_at(i: int) -> str:
    return f"2026-10-{1 + i % 28:02d}T12:00:00Z"


def write_source_tree(
    root: Path,
    products: Mapping[str, Sequence[str]] | None = None,
    *,
    artifacts: Sequence[tuple[str, str]] = DEFAULT_ARTIFACTS,
    page_size: int | None = None,
) -> Path:
    """Write index.json, each product's release pages, release.json files and artifact
    files under ``root``; returns ``root``.  All URLs inside are relative."""
    products = products if products is not None else {"rhai": ["3.0.0", "3.0.1"]}
    bodies = sample_bodies()
    _dump(
        root / "index.json",
        {
            "format": FORMAT,
            "products": [{"name": p, "releases": f"{p}/releases.json"} for p in products],
        },
    )
    for product, versions in products.items():
        entries = [
            {"version": v, "updated_at": updated_at(i), "url": f"{v}/release.json"}
            for i, v in enumerate(versions)
        ]
        size = page_size or max(1, len(entries))
        pages = [entries[i : i + size] for i in range(0, len(entries), size)] or [[]]
        for n, page in enumerate(pages, start=1):
            doc: dict[str, Any] = {"product": product, "releases": page}
            if n < len(pages):
                doc["next"] = f"releases.json?page={n + 1}"
            name = "releases.json" if n == 1 else f"releases.json@page={n}"
            _dump(root / product / name, doc)
        for i, version in enumerate(versions):
            arts = []
            for arch, variant in artifacts:
                base = f"{arch}/{variant}"
                for fname, data in bodies.items():
                    path = root / product / version / arch / variant / fname
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
                arts.append(
                    {
                        "architecture": arch,
                        "variant": variant,
                        "build_id": f"pipeline-{1000 + i}",
                        "built_at": "2026-09-30T22:10:05Z",
                        "files": {
                            "dependency_graph": f"{base}/graph.json",
                            "constraints_file": f"{base}/constraints.txt",
                            "build_sequence_summary": f"{base}/build-sequence-summary.json",
                            "wheels": f"{base}/wheels.json",
                        },
                    }
                )
            _dump(
                root / product / version / "release.json",
                {
                    "product": product,
                    "version": version,
                    "updated_at": updated_at(i),
                    "artifacts": arts,
                },
            )
    return root
