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

_DROPS = """SELECT d.release, d.architecture, d.variant, d.name, d.version, d.sha256,
       d.build_tag, o.origin
FROM drops d
LEFT JOIN LATERAL (
    SELECT s.origin FROM build_steps s
    WHERE s.product = d.product AND s.release = d.release
      AND s.architecture = d.architecture AND s.variant = d.variant
      AND s.wheel_file = d.filename
    ORDER BY s.position LIMIT 1
) AS o ON true
WHERE d.product = %(product)s AND d.release IN (%(a)s, %(b)s)"""

_CONSTRAINTS = """SELECT release, architecture, variant, name, specifier, marker
FROM constraint_lines
WHERE product = %(product)s AND release IN (%(a)s, %(b)s)
ORDER BY release, architecture, variant, position"""


@dataclass
class Side:
    """One build's content."""

    versions: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    wheels: dict[tuple[str, str], set[tuple[str, str | None]]] = field(
        default_factory=lambda: defaultdict(set)
    )
    origins: dict[tuple[str, str], set[str | None]] = field(
        default_factory=lambda: defaultdict(set)
    )
    constraints: dict[str, list[tuple[str, str | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )


def _read(conn: Conn, product: str, a: str, b: str) -> dict[tuple[str, str, str], Side]:
    sides: dict[tuple[str, str, str], Side] = defaultdict(Side)
    for rel in (a, b):
        for arch, variant in store.builds(conn, product, rel):
            sides[(rel, arch, variant)] = Side()
    params = {"product": product, "a": a, "b": b}
    for rel, arch, variant, name, version, sha, tag, origin in conn.execute(_DROPS, params):
        side = sides[(rel, arch, variant)]
        side.versions[name].add(version)
        side.wheels[(name, version)].add((sha, tag))
        side.origins[(name, version)].add(origin)
    for rel, arch, variant, name, spec, marker in conn.execute(_CONSTRAINTS, params):
        sides[(rel, arch, variant)].constraints[name].append((spec, marker))
    return sides


def pair_builds(
    old: list[tuple[str, str]], new: list[tuple[str, str]]
) -> list[tuple[str, str | None, str | None]]:
    """``(architecture, variant_from, variant_to)``: exact pairs, then one-to-one per
    architecture among the unpaired, then the rest alone; sorted."""
    out: list[tuple[str, str | None, str | None]] = [(a, v, v) for a, v in old if (a, v) in new]
    left_old = [b for b in old if b not in set(new)]
    left_new = [b for b in new if b not in set(old)]
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


def compare(old: Side, new: Side) -> dict[str, Any]:
    """The per-build lists of the document (without the build's keys)."""
    added = [
        {"name": n, "versions": store.sort_versions(new.versions[n])}
        for n in sorted(set(new.versions) - set(old.versions))
    ]
    removed = [
        {"name": n, "versions": store.sort_versions(old.versions[n])}
        for n in sorted(set(old.versions) - set(new.versions))
    ]
    changed, rebuilt, origin_changed = [], [], []
    for name in sorted(set(old.versions) & set(new.versions)):
        a, b = old.versions[name], new.versions[name]
        if a != b:
            old_v, new_v = store.sort_versions(a), store.sort_versions(b)
            changed.append({"name": name, "from": old_v, "to": new_v, "direction": direction(a, b)})
        for version in store.sort_versions(a & b):
            key = (name, version)
            was, now = old.wheels[key], new.wheels[key]
            if {s for s, _ in was} != {s for s, _ in now} or {t for _, t in was} != {
                t for _, t in now
            }:
                rebuilt.append({"name": name, "version": version,
                                "build_tags_from": sorted({t or "" for _, t in was}),
                                "build_tags_to": sorted({t or "" for _, t in now})})  # fmt: skip
            o_from, o_to = _origin(old.origins[key]), _origin(new.origins[key])
            if o_from != o_to:
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
_EMPTY: dict[str, list[Any]] = {k: [] for k in _LISTS}


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
            entry |= {"status": status, **_EMPTY}
            entry["constraints"] = {"added": [], "removed": [], "changed": []}
        else:
            lists = compare(sides[(old, arch, v_from)], sides[(new, arch, v_to)])
            same = not any(lists[k] for k in _LISTS) and not any(lists["constraints"].values())
            entry |= {"status": "same" if same else "changed", **lists}
        out.append(entry)
    return {"schema": SCHEMA, "schema_version": 1, "product": product, "from": old, "to": new,
            "builds": out}  # fmt: skip
