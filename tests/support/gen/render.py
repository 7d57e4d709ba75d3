"""Rendering one artifact's documents (graph, constraints, summary, wheels)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from packaging.version import Version

from tests.support.gen.constants import _COMPILED, _MARKERS, _PYTAGS
from tests.support.gen.model import Summary, _h, _sha, wheel_name_part
from tests.support.gen.template import _Pkg, _Template


# --------------------------------------------------------------------------------------
# Rendering one artifact's documents
# --------------------------------------------------------------------------------------
def _key(pkg: _Pkg, r: int) -> str:
    return f"{pkg.name}=={pkg.version_at(r)}"


def _sdist_url(name: str, version: str) -> str:
    h = _sha("sdist", name, version)
    return (
        f"https://files.pythonhosted.org/packages/{h[:2]}/{h[2:4]}/{h[4:64]}/"
        f"{wheel_name_part(name)}-{version}.tar.gz"
    )


def _prebuilt_wheel(name: str, version: str, arch: str) -> str:
    return (
        f"{wheel_name_part(name)}-{version}-py3-none-"
        f"manylinux2014_{arch}.manylinux_2_17_{arch}.manylinux_2_28_{arch}.whl"
    )


def _wheel(pkg: _Pkg, version: str, arch: str, round_: int) -> str | None:
    """Filename of the round_-th wheel of a package on an architecture (None: no more)."""
    if pkg.pre_built:
        return _prebuilt_wheel(pkg.name, version, arch) if round_ == 0 else None
    stem = f"{wheel_name_part(pkg.name)}-{version}"
    if pkg.kind in _COMPILED:
        tag = _PYTAGS[round_ % len(_PYTAGS)]
        build = round_ // len(_PYTAGS)
        return f"{stem}-{build}-{tag}-{tag}-linux_{arch}.whl"
    return f"{stem}-{round_}-py3-none-any.whl"


def _wheel_size(filename: str, kind: str) -> int:
    h = _h("size", filename)
    if kind == "k":
        return 2_000_000 + h % 900_000_000
    if kind in _COMPILED:
        return 150_000 + h % 40_000_000
    return 8_000 + h % 2_500_000


def render_graph(tpl: _Template, r: int, *, legacy: bool = False) -> dict[str, Any]:
    """fromager graph.json as a dict: 0.101.0 format, or with ``legacy`` the 0.29-0.68
    format of the real e2e AI stack graph (no ``constraint`` key, URLs with ``#sha256=``)."""
    pkgs = tpl.pkgs
    root: dict[str, Any] = {
        "download_url": "",
        "pre_built": False,
        "version": "0",
        "canonicalized_name": "",
        "constraint": None,
        "edges": [
            {
                "key": _key(pkgs[j], r),
                "req_type": "toplevel",
                "req": req.format(version=pkgs[j].version_at(r)),
            }
            for j, req in tpl.toplevel
        ],
    }
    if legacy:
        del root["constraint"]
    graph: dict[str, Any] = {"": root}
    for i in tpl.order:
        pkg = pkgs[i]
        version = pkg.version_at(r)
        if pkg.pre_built:
            h = _sha("whl", pkg.name, version)
            url = (
                f"https://files.pythonhosted.org/packages/{h[:2]}/{h[2:4]}/{h[4:64]}/"
                + _prebuilt_wheel(pkg.name, version, "x86_64")
            )
        else:
            url = _sdist_url(pkg.name, version)
        if legacy:
            url += "#sha256=" + _sha("file", url)
        node: dict[str, Any] = {
            "download_url": url,
            "pre_built": pkg.pre_built,
            "version": version,
            "canonicalized_name": pkg.name,
            "constraint": pkg.constraint,
            "edges": [
                {"key": _key(pkgs[j], r), "req_type": rt, "req": req} for j, rt, req in pkg.edges
            ],
        }
        if legacy:
            del node["constraint"]
        graph[f"{pkg.name}=={version}"] = node
    return graph


def install_reachable(graph: dict[str, Any]) -> dict[str, set[str]]:
    """Canonical name -> versions of the nodes reachable from the root by install edges
    (what ``fromager graph to-constraints`` pins)."""
    reach: dict[str, set[str]] = {}
    stack = [e["key"] for e in graph[""]["edges"]]
    seen: set[str] = set()
    while stack:
        key = stack.pop()
        if key in seen or key not in graph:
            continue
        seen.add(key)
        node = graph[key]
        reach.setdefault(node["canonicalized_name"], set()).add(node["version"])
        stack.extend(e["key"] for e in node["edges"] if e["req_type"] in ("install", "toplevel"))
    return reach


def constraints_text(graph: dict[str, Any]) -> str:
    """fromager ``graph to-constraints``: install-reachable nodes, one line per name."""
    reach = install_reachable(graph)
    lines: list[str] = []
    markers_used = 0
    for name in sorted(reach):
        versions = sorted(reach[name], key=Version)
        chosen = versions[0]
        if len(versions) > 1:
            lines.append(f"# NOTE: fromager selected {name}=={chosen} from: {versions}")
        marker = _MARKERS.get(name)
        if marker and markers_used < 2:
            lines.append(f"{name}=={chosen}; {marker}")
            markers_used += 1
        else:
            lines.append(f"{name}=={chosen}")
    if lines and markers_used == 0:  # at least one marker line, as the protocol allows
        for k, line in enumerate(lines):
            if not line.startswith("#"):
                lines[k] = line + '; python_version >= "3.11"'
                break
    return "".join(line + "\n" for line in lines)


def _artifact_wheels(tpl: _Template, r: int, arch: str, drops: int) -> list[tuple[_Pkg, str, str]]:
    """[(pkg, version, filename)] of the drops, first the one wheel per node, then extras."""
    out: list[tuple[_Pkg, str, str]] = []
    round_ = 0
    while len(out) < drops:
        added = 0
        for i in tpl.order:
            if len(out) >= drops:
                break
            pkg = tpl.pkgs[i]
            version = pkg.version_at(r)
            fn = _wheel(pkg, version, arch, round_)
            if fn is not None:
                out.append((pkg, version, fn))
                added += 1
        if not added:
            break
        round_ += 1
    return out


def _write(path: Path, data: str, summary: Summary) -> None:
    raw = data.encode()
    path.write_bytes(raw)
    summary.files += 1
    summary.bytes += len(raw)


def _dump(doc: Any) -> str:
    return json.dumps(doc, indent=2)


_q = json.encoder.encode_basestring_ascii


def dump_graph(graph: dict[str, Any]) -> str:
    """``json.dumps(graph, indent=2)`` for fromager graphs, several times faster."""
    out = ["{"]
    first = True
    for key, node in graph.items():
        out.append(("\n" if first else ",\n") + f"  {_q(key)}: {{")
        first = False
        items = []
        for k, v in node.items():
            if k == "edges":
                if not v:
                    items.append('\n    "edges": []')
                    continue
                edges = ",".join(
                    "\n      {"
                    + ",".join(f"\n        {_q(ek)}: {_q(ev)}" for ek, ev in e.items())
                    + "\n      }"
                    for e in v
                )
                items.append(f'\n    "edges": [{edges}\n    ]')
            else:
                items.append(f"\n    {_q(k)}: {json.dumps(v)}")
        out.append(",".join(items) + "\n  }")
    out.append("\n}" if not first else "}")
    return "".join(out)


def dump_wheels(files: list[dict[str, Any]]) -> str:
    """``json.dumps({"files": files}, indent=2)`` for PEP 691 file entries, fast."""
    if not files:
        return '{\n  "files": []\n}'
    body = ",".join(
        f'\n    {{\n      "filename": {_q(f["filename"])},'
        f'\n      "hashes": {{\n        "sha256": {_q(f["hashes"]["sha256"])}\n      }},'
        f'\n      "size": {int(f["size"])},'
        f'\n      "upload-time": {_q(f["upload-time"])}\n    }}'
        for f in files
    )
    return f'{{\n  "files": [{body}\n  ]\n}}'
