"""The oracle of search, diff and why: recomputed from a source tree's files.

Nothing here imports ``etl``: the snapshot comes from :func:`expected_snapshot` (plain
``json``, ``packaging``'s requirement parser, the oracle's own wheel-name split), versions
compare with ``packaging.version``, and why is checked rather than recomputed (each path
is a real chain of edges from a top-level requirement, as short as a breadth-first search
of the oracle's own says, distinct, and as many as exist up to the limit: the count comes
from a dynamic program over the levels, not from a path walk).
"""

from __future__ import annotations

import itertools
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from tests.support.oracle.snapshot import Snapshot, expected_snapshot
from tests.support.oracle.wheelname import pep503

Edge = tuple[str, str, str, str, str, str]  # parent name, version, child name, version, rt, req


def snapshot(root: Path) -> Snapshot:
    return expected_snapshot(root)


def origin(filename: str, summary: Any) -> str | None:
    """The issue's rule: the first summary entry whose wheel_filename ends with the file
    name (as a path component)."""
    for entry in summary if isinstance(summary, list) else []:
        wheel = str(entry.get("wheel_filename") or "")
        if wheel == filename or wheel.endswith("/" + filename):
            if entry.get("prebuilt") is True:
                return "prebuilt"
            return "reused" if entry.get("skipped") is True else "built"
    return None


def edges(graph: Any) -> list[Edge]:
    """Both graph formats: ``{"n==v": {"edges": [{key, req_type, req}]}}`` and the legacy
    ``{"n==v": [[req_type, name, version, req]]}``; the root is ``("", "")``."""
    out: list[Edge] = []
    for key, node in graph.items():
        pname, _, pver = key.partition("==")
        parent = (pep503(pname) if pname else "", pver)
        if isinstance(node, dict):
            for e in node.get("edges") or []:
                cname, _, cver = e["key"].partition("==")
                out.append((*parent, pep503(cname), cver, e["req_type"], e["req"]))
        elif isinstance(node, list):
            for rt, cname, cver, req in node:
                out.append((*parent, pep503(cname), cver, rt, req))
    return out


def _vkey(v: str) -> Any:
    try:
        return (1, Version(v))
    except InvalidVersion:
        return (0, v)


def search(
    snap: Snapshot, name: str, spec: str | None = None, product: str | None = None
) -> list[dict[str, Any]]:
    want = pep503(name)
    specifier = None
    if spec is not None:
        try:
            specifier = SpecifierSet("==" + str(Version(spec)))
        except InvalidVersion:
            specifier = SpecifierSet(spec)
    rows = []
    for (p, r, a, v, filename), d in snap["drops"].items():
        if d["name"] != want or (product is not None and p != product):
            continue
        if specifier is not None and not specifier.contains(
            Version(d["version"]), prereleases=True
        ):
            continue
        summary = snap["artifacts"][(p, r, a, v)]["build_sequence_summary"]
        rows.append(
            {
                "product": p,
                "release": r,
                "architecture": a,
                "variant": v,
                "version": d["version"],
                "filename": filename,
                "origin": origin(filename, summary),
                "sha256": d["sha256"],
                "size": d["size"],
                "_updated": snap["releases"][(p, r)]["updated_at"],
            }
        )
    rows.sort(
        key=lambda m: (m["product"], m["release"], m["architecture"], m["variant"], m["filename"])
    )
    rows.sort(key=lambda m: m["_updated"], reverse=True)  # stable: newest release first
    for m in rows:
        del m["_updated"]
    return rows


def _build(snap: Snapshot, p: str, r: str, a: str, v: str) -> dict[str, Any]:
    versions: dict[str, set[str]] = defaultdict(set)
    shas: dict[tuple[str, str], set[Any]] = defaultdict(set)
    origins: dict[tuple[str, str], set[Any]] = defaultdict(set)
    summary = snap["artifacts"][(p, r, a, v)]["build_sequence_summary"]
    for (p2, r2, a2, v2, filename), d in snap["drops"].items():
        if (p2, r2, a2, v2) == (p, r, a, v):
            versions[d["name"]].add(d["version"])
            shas[(d["name"], d["version"])].add((d["sha256"], d["build_tag"]))
            origins[(d["name"], d["version"])].add(origin(filename, summary))
    cons: dict[str, set[tuple[str, Any]]] = defaultdict(set)
    for c in snap["artifacts"][(p, r, a, v)]["constraints_file"]:
        cons[c["name"]].add((c["specifier"], c["marker"]))
    return {"versions": versions, "shas": shas, "origins": origins, "constraints": cons}


def diff_summary(snap: Snapshot, product: str, old: str, new: str) -> dict[tuple[Any, ...], Any]:
    """Per build pair ``(arch, variant_from, variant_to)``: status and the sets of names
    (and versions) in each list, the shape tests compare against the document."""
    olds = {(a, v) for (p, r, a, v) in snap["artifacts"] if (p, r) == (product, old)}
    news = {(a, v) for (p, r, a, v) in snap["artifacts"] if (p, r) == (product, new)}
    pairs = [(a, v, v) for a, v in olds & news]
    for arch in {a for a, _ in olds ^ news}:
        o = sorted(v for a, v in olds - news if a == arch)
        n = sorted(v for a, v in news - olds if a == arch)
        if len(o) == 1 and len(n) == 1:
            pairs.append((arch, o[0], n[0]))
        else:
            pairs += [(arch, v, None) for v in o] + [(arch, None, v) for v in n]
    out: dict[tuple[Any, ...], Any] = {}
    for arch, vf, vt in pairs:
        if vf is None or vt is None:
            out[(arch, vf, vt)] = {"status": "added" if vf is None else "removed"}
            continue
        x, y = _build(snap, product, old, arch, vf), _build(snap, product, new, arch, vt)
        xv, yv = x["versions"], y["versions"]
        both = set(xv) & set(yv)
        changed = {}
        for n in both:
            if xv[n] != yv[n]:
                lo = _sign(min(yv[n], key=_vkey), min(xv[n], key=_vkey))
                hi = _sign(max(yv[n], key=_vkey), max(xv[n], key=_vkey))
                d = "up" if lo >= 0 and hi >= 0 else "down" if lo <= 0 and hi <= 0 else "mixed"
                changed[n] = d
        common = [(n, ver) for n in both for ver in xv[n] & yv[n]]
        rebuilt = {
            k
            for k in common
            if {s for s, _ in x["shas"][k]} != {s for s, _ in y["shas"][k]}
            or {t for _, t in x["shas"][k]} != {t for _, t in y["shas"][k]}
        }
        origin_changed = {
            k: (x["origins"][k], y["origins"][k])
            for k in common
            if x["origins"][k] != y["origins"][k]
        }
        xc, yc = x["constraints"], y["constraints"]
        lists = {
            "added": {n: sorted(yv[n], key=_vkey) for n in set(yv) - set(xv)},
            "removed": {n: sorted(xv[n], key=_vkey) for n in set(xv) - set(yv)},
            "changed": changed,
            "rebuilt": rebuilt,
            "origin_changed": origin_changed,
            "constraints_added": set(yc) - set(xc),
            "constraints_removed": set(xc) - set(yc),
            "constraints_changed": {n for n in set(xc) & set(yc) if xc[n] != yc[n]},
        }
        lists["status"] = "changed" if any(lists.values()) else "same"
        out[(arch, vf, vt)] = lists
    return out


def _sign(a: str, b: str) -> int:
    ka, kb = _vkey(a), _vkey(b)
    return int(ka > kb) - int(ka < kb)


def why_check(graph: Any, name: str, build: dict[str, Any], limit: int) -> None:
    """Assert that a why document's build entry is right for ``graph``."""
    es = edges(graph)
    kids: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    tops: dict[str, set[tuple[str, str]]] = defaultdict(set)
    nodes: set[str] = set()
    for pn, pv, cn, cv, rt, req in es:
        child = f"{cn}=={cv}"
        nodes.add(child)
        if pn == "":
            tops[child].add((rt, req))
        else:
            nodes.add(f"{pn}=={pv}")
            kids[f"{pn}=={pv}"].add((child, rt, req))
    want = pep503(name)
    targets = sorted(
        (n for n in nodes if n.partition("==")[0] == want),
        key=lambda k: _vkey(k.partition("==")[2]),
    )
    assert build["versions"] == [t.partition("==")[2] for t in targets], build["versions"]
    # levels and the number of shortest paths (with the top-level edges' multiplicity)
    level = {t: 0 for t in tops}
    count = {t: len(tops[t]) for t in tops}
    queue = deque(sorted(tops))
    while queue:
        u = queue.popleft()
        for c, _, _ in kids[u]:
            if c not in level:
                level[c] = level[u] + 1
                count[c] = 0
                queue.append(c)
            if level[c] == level[u] + 1:
                count[c] += count[u]
    paths = build["paths"]
    assert len({repr(p) for p in paths}) == len(paths), "duplicate paths"
    for t in targets:
        mine = [p for p in paths if p[-1]["node"] == t]
        assert len(mine) == min(limit, count.get(t, 0)), (t, len(mine), count.get(t))
        for p in mine:
            assert len(p) == level[t] + 1, (t, p)
            assert (p[0]["req_type"], p[0]["req"]) in tops[p[0]["node"]], p[0]
            for prev, step in itertools.pairwise(p):
                assert (step["node"], step["req_type"], step["req"]) in kids[prev["node"]], step
    assert sum(1 for p in paths if p[-1]["node"] not in targets) == 0
    dependents = sorted({u for u, ks in kids.items() for c, _, _ in ks if c in targets})
    assert build["dependents"] == dependents, (build["dependents"], dependents)
