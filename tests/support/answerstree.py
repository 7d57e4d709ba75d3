"""Source trees whose search / diff / why answers are known by construction.

:func:`write_synth` writes product ``synth`` (releases 1.0 and 2.0) and product ``legacy``
(build ``x86_64/cpu``: fromager's legacy graph format, the real ``old_graph.json``; build
``x86_64/cuda``: the real ``e2e-ai-stack/graph.json``, node/edge format):

* builds: ``aarch64/cpu`` identical in both releases (``same``); ``x86_64/cpu`` changed;
  ``x86_64/cuda12.4-ubi9`` renamed ``cuda12.8-ubi9`` (paired by architecture);
  ``s390x/cpu`` only in 1.0 (``removed``); ``ppc64le/cpu`` only in 2.0 (``added``);
* in ``x86_64/cpu`` and the cuda pair, from 1.0 to 2.0: ``gone`` removed, ``newpkg`` added
  (reused), ``bumped`` 1.0 → 1.1 (up), ``downer`` 2.0 → 1.9 (down), ``multi`` {1.0, 2.0} →
  {0.5, 3.0} (mixed, no summary entry: origin null), ``rebuilt`` 1.0 build tag 0 → 1,
  ``flip`` 1.0 built → prebuilt (same file), ``keep`` unchanged; constraints: ``gone``
  removed, ``newpkg`` added, ``bumped`` changed;
* graphs: ``app`` top-level, a cycle ``cyc-a`` ↔ ``cyc-b`` under it, and ``deep`` below
  :data:`LAYERS` complete layers of :data:`WIDTH` nodes (WIDTH**LAYERS paths from ``app``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

LAYERS, WIDTH = 14, 5
FROMAGER = Path(__file__).resolve().parents[2] / "samples" / "fromager"
LEGACY_GRAPH = FROMAGER / "e2e-ai-stack-legacy" / "old_graph.json"
#: fromager's own fixture of a real AI stack, node/edge format without ``constraint``,
#: 301 nodes, several versions of some packages (install-dependency conflicts)
AI_STACK_GRAPH = FROMAGER / "e2e-ai-stack" / "graph.json"

Wheel = tuple[str, str, str | None, str | None]  # name, version, build tag, origin

_OLD: list[Wheel] = [
    ("keep", "1.0", None, "built"),
    ("gone", "1.0", None, "built"),
    ("bumped", "1.0", None, "built"),
    ("downer", "2.0", None, "built"),
    ("multi", "1.0", None, None),
    ("multi", "2.0", None, None),
    ("rebuilt", "1.0", "0", "built"),
    ("flip", "1.0", None, "built"),
]
_NEW: list[Wheel] = [
    ("keep", "1.0", None, "built"),
    ("newpkg", "3.0", None, "reused"),
    ("bumped", "1.1", None, "built"),
    ("downer", "1.9", None, "built"),
    ("multi", "0.5", None, None),
    ("multi", "3.0", None, None),
    ("rebuilt", "1.0", "1", "built"),
    ("flip", "1.0", None, "prebuilt"),
]
_CONSTRAINTS_OLD = "keep==1.0\ngone==1.0\nbumped==1.0\n"
_CONSTRAINTS_NEW = "keep==1.0\nbumped==1.1\nnewpkg==3.0\n"


def filename(w: Wheel) -> str:
    name, version, tag, _ = w
    return f"{name}-{version}{'-' + tag if tag else ''}-py3-none-any.whl"


def graph(wheels: list[Wheel]) -> dict[str, Any]:
    """The current node/edge format: root -> app -> every wheel, the cycle and the layers."""

    def node(key: str, kids: list[tuple[str, str]]) -> dict[str, Any]:
        name, _, version = key.partition("==")
        return {
            "download_url": "",
            "pre_built": False,
            "version": version or "0",
            "canonicalized_name": name,
            "constraint": None,
            "edges": [{"key": k, "req_type": rt, "req": k.partition("==")[0]} for k, rt in kids],
        }

    doc = {"": node("", [("app==1.0", "toplevel")])}
    app_kids = [(f"{w[0]}=={w[1]}", "install") for w in wheels]
    app_kids += [("cyc-a==1.0", "install"), ("setuptools==70.0", "build-system")]
    app_kids += [(f"l0-n{j}==1.0", "install") for j in range(WIDTH)]
    doc["app==1.0"] = node("app==1.0", app_kids)
    for w in wheels:
        doc[f"{w[0]}=={w[1]}"] = node(f"{w[0]}=={w[1]}", [])
    doc["setuptools==70.0"] = node("setuptools==70.0", [])
    doc["cyc-a==1.0"] = node("cyc-a==1.0", [("cyc-b==1.0", "install")])
    doc["cyc-b==1.0"] = node("cyc-b==1.0", [("cyc-a==1.0", "install"), ("keep==1.0", "install")])
    for i in range(LAYERS):
        nxt = [(f"l{i + 1}-n{j}==1.0", "install") for j in range(WIDTH)]
        if i == LAYERS - 1:
            nxt = [("deep==1.0", "install")]
        for j in range(WIDTH):
            doc[f"l{i}-n{j}==1.0"] = node(f"l{i}-n{j}==1.0", nxt)
    doc["deep==1.0"] = node("deep==1.0", [("setuptools==70.0", "build-system")])
    return doc


def _summary(wheels: list[Wheel]) -> list[dict[str, Any]]:
    return [
        {
            "name": w[0],
            "version": w[1],
            "prebuilt": w[3] == "prebuilt",
            "download_url": "",
            "wheel_filename": f"/opt/builder/wheels-repo/downloads/{filename(w)}",
            "skipped": w[3] == "reused",
        }
        for w in wheels
        if w[3] is not None
    ]


def _wheels(wheels: list[Wheel]) -> dict[str, Any]:
    files = [
        {
            "filename": filename(w),
            "hashes": {"sha256": hashlib.sha256(filename(w).encode()).hexdigest()},
            "size": 100 + len(filename(w)),
            "upload-time": "2026-01-01T00:00:00Z",
        }
        for w in wheels
    ]
    return {"files": files}


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=1))


def _release(
    root: Path,
    product: str,
    version: str,
    updated: str,
    builds: dict[tuple[str, str], tuple[list[Wheel], str, Any]],
) -> None:
    arts = []
    for (arch, variant), (wheels, constraints, graph_doc) in builds.items():
        base = root / product / version / arch / variant
        _write(base / "graph.json", graph_doc)
        _write(base / "constraints.txt", constraints)
        _write(base / "build-sequence-summary.json", _summary(wheels))
        _write(base / "wheels.json", _wheels(wheels))
        rel = f"{arch}/{variant}"
        arts.append(
            {
                "architecture": arch,
                "variant": variant,
                "build_id": f"b-{version}",
                "built_at": updated,
                "files": {
                    "dependency_graph": f"{rel}/graph.json",
                    "constraints_file": f"{rel}/constraints.txt",
                    "build_sequence_summary": f"{rel}/build-sequence-summary.json",
                    "wheels": f"{rel}/wheels.json",
                },
            }
        )
    _write(
        root / product / version / "release.json",
        {"product": product, "version": version, "updated_at": updated, "artifacts": arts},
    )


Build = tuple[list[Wheel], str, Any]


def write_synth(root: Path) -> Path:
    same = [w for w in _OLD if w[0] in ("keep", "bumped")]
    old_b: Build = (_OLD, _CONSTRAINTS_OLD, graph(_OLD))
    new_b: Build = (_NEW, _CONSTRAINTS_NEW, graph(_NEW))
    same_b: Build = (same, "keep==1.0\n", graph(same))
    releases = {
        ("1.0", "2026-01-01T00:00:00Z"): {
            ("x86_64", "cpu"): old_b,
            ("x86_64", "cuda12.4-ubi9"): old_b,
            ("aarch64", "cpu"): same_b,
            ("s390x", "cpu"): old_b,
        },
        ("2.0", "2026-02-01T00:00:00Z"): {
            ("x86_64", "cpu"): new_b,
            ("x86_64", "cuda12.8-ubi9"): new_b,
            ("aarch64", "cpu"): same_b,
            ("ppc64le", "cpu"): new_b,
        },
    }
    for (version, updated), builds in releases.items():
        _release(root, "synth", version, updated, builds)
    legacy = json.loads(LEGACY_GRAPH.read_text())
    torch: list[Wheel] = [("torch", "2.3.1", None, "built")]
    _release(
        root,
        "legacy",
        "1.0",
        "2025-01-01T00:00:00Z",
        {
            ("x86_64", "cpu"): (torch, "torch==2.3.1\n", legacy),
            ("x86_64", "cuda"): (torch, "torch==2.3.1\n", json.loads(AI_STACK_GRAPH.read_text())),
        },
    )
    products = ["synth", "legacy"]
    _write(
        root / "index.json",
        {
            "format": "wheel-collections/1",
            "products": [{"name": p, "releases": f"{p}/releases.json"} for p in products],
        },
    )
    for p in products:
        versions = sorted(d.name for d in (root / p).iterdir() if d.is_dir())
        entries = [json.loads((root / p / v / "release.json").read_text()) for v in versions]
        _write(
            root / p / "releases.json",
            {
                "product": p,
                "releases": [
                    {
                        "version": e["version"],
                        "updated_at": e["updated_at"],
                        "url": f"{e['version']}/release.json",
                    }
                    for e in entries
                ],
            },
        )
    return root
