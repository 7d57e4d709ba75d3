"""``wheels-etl diff``: what changed between two releases of a product, build by build
(schema ``wheels-etl/diff/1``, see ``docs/diff-json.md``).

Builds pair by (architecture, variant); builds left unpaired on both sides pair by
architecture when exactly one remains on each side (a renamed variant); the rest are
``added`` / ``removed``.  Per pair and package name: added, removed, changed (version sets
differ; ``up``/``down``/``mixed`` by PEP 440), rebuilt (a version on both sides whose
sha256 set or build tags differ), origin changed; and constraint lines added, removed,
changed.  Two queries, each reading both releases by the tables' keys.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from etl.answers import store
from etl.db.connect import Conn

SCHEMA = "wheels-etl/diff/1"
Direction = Literal["up", "down", "mixed"]

DROPS_QUERY = """SELECT d.release, d.architecture, d.variant, d.name, d.version, d.sha256,
       d.build_tag, d.filename
FROM drops d
WHERE d.product = %(product)s AND d.release IN (%(a)s, %(b)s)"""

#: Read whole (a few hundred kB per build) and looked up here: joining in SQL would leave
#: the plan to statistics that a load has just made stale.
ORIGINS_QUERY = """SELECT release, architecture, variant, wheel_files, origins FROM build_origins
WHERE product = %(product)s AND release IN (%(a)s, %(b)s)"""

CONSTRAINTS_QUERY = """SELECT release, architecture, variant, name, specifier, marker
FROM constraint_lines
WHERE product = %(product)s AND release IN (%(a)s, %(b)s)"""


#: One wheel: (sha256, build tag, origin); a version's wheels are a set (rows come in no
#: particular order: no sort on the server).
Wheel = tuple[str, str | None, str | None]


@dataclass
class Side:
    """One build's content: name -> version -> its wheels; name -> constraint lines."""

    packages: dict[str, dict[str, set[Wheel]]] = field(default_factory=dict)
    constraints: dict[str, list[tuple[str, str | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )


def _read(conn: Conn, product: str, a: str, b: str) -> dict[tuple[str, str, str], Side]:
    sides: dict[tuple[str, str, str], Side] = defaultdict(Side)
    for rel in (a, b):
        for arch, variant in store.builds(conn, product, rel):
            sides[(rel, arch, variant)] = Side()
    params = {"product": product, "a": a, "b": b}
    origins = {  # the first entry naming a file wins: reversed, so that it is set last
        (r, ar, v): dict(zip(reversed(files), reversed(kinds), strict=True))
        for r, ar, v, files, kinds in conn.execute(ORIGINS_QUERY, params).fetchall()
    }
    for rel, arch, variant, name, version, sha, tag, file in conn.execute(
        DROPS_QUERY, params
    ).fetchall():
        known = origins.get((rel, arch, variant)) or {}
        versions = sides[(rel, arch, variant)].packages.setdefault(name, {})
        versions.setdefault(version, set()).add((sha, tag, known.get(file)))
    for rel, arch, variant, name, spec, marker in conn.execute(
        CONSTRAINTS_QUERY, params
    ).fetchall():
        sides[(rel, arch, variant)].constraints[name].append((spec, marker))
    return sides


def pair_builds(
    old: list[tuple[str, str]], new: list[tuple[str, str]]
) -> list[tuple[str, str | None, str | None]]:
    """``(architecture, variant_from, variant_to)``: exact pairs, then one-to-one per
    architecture among the unpaired, then the rest alone; sorted."""
    both = set(old) & set(new)
    out: list[tuple[str, str | None, str | None]] = [(a, v, v) for a, v in old if (a, v) in both]
    left_old = [b for b in old if b not in both]
    left_new = [b for b in new if b not in both]
    for arch in sorted({a for a, _ in left_old} | {a for a, _ in left_new}):
        o = [v for a, v in left_old if a == arch]
        n = [v for a, v in left_new if a == arch]
        if len(o) == 1 and len(n) == 1:
            out.append((arch, o[0], n[0]))
        else:
            out += [(arch, v, None) for v in o] + [(arch, None, v) for v in n]
    return sorted(out, key=lambda t: (t[0], t[1] or t[2] or "", t[2] or ""))


def direction(old: set[str], new: set[str]) -> Direction:
    """``up`` when neither the lowest nor the highest version went down (and one went
    up), ``down`` the other way round, ``mixed`` otherwise (PEP 440 order)."""
    o, n = store.sort_versions(old), store.sort_versions(new)
    lo = _cmp(store.version_key(n[0]), store.version_key(o[0]))
    hi = _cmp(store.version_key(n[-1]), store.version_key(o[-1]))
    if lo >= 0 and hi >= 0 and (lo, hi) != (0, 0):
        return "up"
    if lo <= 0 and hi <= 0 and (lo, hi) != (0, 0):
        return "down"
    return "mixed"


def _cmp(x: tuple[int, Any], y: tuple[int, Any]) -> int:
    return (x > y) - (x < y)


def _origin(values: set[str | None]) -> str | None:
    known = sorted(v for v in values if v is not None)
    if not known:
        return None
    return "+".join(known) if len(values) == len(known) else "+".join([*known, "none"])


def _line(spec: str, marker: str | None) -> str:
    return spec + (f"; {marker}" if marker else "")


def _sorted(versions: Any) -> list[str]:
    return list(versions) if len(versions) == 1 else store.sort_versions(versions)


def compare(old: Side, new: Side) -> dict[str, Any]:
    """The per-build lists of the document (without the build's keys)."""
    was, now = old.packages, new.packages
    added = [{"name": n, "versions": _sorted(now[n])} for n in sorted(now.keys() - was.keys())]
    removed = [{"name": n, "versions": _sorted(was[n])} for n in sorted(was.keys() - now.keys())]
    changed, rebuilt, origin_changed = [], [], []
    for name in sorted(was.keys() & now.keys()):
        a, b = was[name], now[name]
        if a == b:  # the same versions with the same wheels
            continue
        if a.keys() != b.keys():
            changed.append({"name": name, "from": _sorted(a), "to": _sorted(b),
                            "direction": direction(set(a), set(b))})  # fmt: skip
        for version in _sorted(a.keys() & b.keys()):
            x, y = a[version], b[version]
            if x == y:
                continue
            tags_x, tags_y = {w[1] for w in x}, {w[1] for w in y}
            if {w[0] for w in x} != {w[0] for w in y} or tags_x != tags_y:
                rebuilt.append({"name": name, "version": version,
                                "build_tags_from": sorted(t or "" for t in tags_x),
                                "build_tags_to": sorted(t or "" for t in tags_y)})  # fmt: skip
            origins_x, origins_y = {w[2] for w in x}, {w[2] for w in y}
            if origins_x != origins_y:
                o_from, o_to = _origin(origins_x), _origin(origins_y)
                origin_changed.append({"name": name, "version": version, "from": o_from,
                                       "to": o_to})  # fmt: skip
    return {
        "added": added,
        "removed": removed,
        "changed": changed,
        "rebuilt": rebuilt,
        "origin_changed": origin_changed,
        "constraints": _constraints(old.constraints, new.constraints),
    }


def _constraints(
    old: dict[str, list[tuple[str, str | None]]], new: dict[str, list[tuple[str, str | None]]]
) -> dict[str, list[dict[str, Any]]]:
    def lines(side: dict[str, list[tuple[str, str | None]]], name: str) -> list[dict[str, Any]]:
        return [{"name": name, "specifier": s, "marker": m} for s, m in side[name]]

    added = [x for n in sorted(set(new) - set(old)) for x in lines(new, n)]
    removed = [x for n in sorted(set(old) - set(new)) for x in lines(old, n)]
    changed = [
        {"name": n, "from": [_line(*x) for x in old[n]], "to": [_line(*x) for x in new[n]]}
        for n in sorted(set(old) & set(new))
        if sorted(old[n], key=str) != sorted(new[n], key=str)
    ]
    return {"added": added, "removed": removed, "changed": changed}


_LISTS = ("added", "removed", "changed", "rebuilt", "origin_changed")


def diff(conninfo: str, product: str, old: str, new: str) -> dict[str, Any]:
    """The ``wheels-etl/diff/1`` document."""
    with store.reader(conninfo) as conn:
        store.check_release(conn, product, old)
        store.check_release(conn, product, new)
        sides = _read(conn, product, old, new)
    pairs = pair_builds(
        [(a, v) for r, a, v in sides if r == old], [(a, v) for r, a, v in sides if r == new]
    )
    out = []
    for arch, v_from, v_to in pairs:
        entry: dict[str, Any] = {"architecture": arch, "variant_from": v_from, "variant_to": v_to}
        if v_from is None or v_to is None:
            status = "added" if v_from is None else "removed"
            entry |= {"status": status, **{k: [] for k in _LISTS}}
            entry["constraints"] = {"added": [], "removed": [], "changed": []}
        else:
            lists = compare(sides[(old, arch, v_from)], sides[(new, arch, v_to)])
            same = not any(lists[k] for k in _LISTS) and not any(lists["constraints"].values())
            entry |= {"status": "same" if same else "changed", **lists}
        out.append(entry)
    return {"schema": SCHEMA, "schema_version": 1, "product": product, "from": old, "to": new,
            "builds": out}  # fmt: skip
