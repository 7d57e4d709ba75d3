"""A product's package template: which packages, which edges (stable across releases)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.gen.constants import _ACCELERATORS, _DEFAULT_RECIPE, _PURE_RECIPES
from tests.support.gen.model import GenSpec, _h, bump_version, older_version
from tests.support.gen.universe import (
    _RECIPES,
    _REQ_SPELLINGS,
    _TOOL_INSTALL,
    BACKEND_TABLE,
    PACKAGE_TABLE,
)


# --------------------------------------------------------------------------------------
# A product's package template: which packages, which edges (stable across releases)
# --------------------------------------------------------------------------------------
@dataclass
class _Pkg:
    name: str
    base_version: str
    kind: str
    recipe: str
    period: int  # releases between two version bumps
    fixed: bool = False  # dup (older line) or vendor wheel: version never moves
    pre_built: bool = False
    constraint: str | None = None
    # (target index, req_type, requirement text)
    edges: list[tuple[int, str, str]] = field(default_factory=list)

    def version_at(self, release_index: int) -> str:
        if self.fixed:
            return self.base_version
        return bump_version(self.base_version, release_index // self.period)


@dataclass
class _Template:
    pkgs: list[_Pkg]
    toplevel: list[tuple[int, str]]  # (target index, requirement template with {version})
    order: list[int]  # discovery (DFS) order of the nodes, as fromager writes them
    build_order: list[int] = field(default_factory=list)  # dependencies first


def _install_req(rng: random.Random, name: str, version: str) -> str:
    """A requirement on ``name`` that ``version`` (and every later one) satisfies."""
    shown = name.replace("-", "_") if "-" in name and rng.random() < 0.15 else name
    rel = Version(version).release
    major = rel[0]
    minor = max(0, (rel[1] if len(rel) > 1 else 0) - rng.randrange(4))
    patch = rng.randrange(max(1, rel[2] + 1 if len(rel) > 2 else 1))
    low3 = f"{major}.{minor}.{patch}"
    form = rng.random()
    if form < 0.22:
        return shown
    if form < 0.45:
        return f"{shown}>={major}.{minor}"
    if form < 0.60:
        return f"{shown}>={low3}"
    if form < 0.75:
        return f"{shown}<{major + 1}.0.0,>={low3}"
    if form < 0.85:
        return f"{shown}<{major + 1},>={major}.{minor}"
    if form < 0.92:
        return f"{shown}~={major}.{minor}"
    if form < 0.96:
        return f"{shown}!={major}.{minor}.{patch + 100},>={major}.0"
    return f'{shown}>={major}.{minor}; python_version >= "3.9"'


def _build_template(spec: GenSpec, product: str, vclass: str) -> _Template:
    rng = random.Random(f"gensource:{spec.seed}:{product}")
    n = spec.packages
    n_accel = 0 if n < 40 else min(4, n // 50)
    n_backends = min(len(BACKEND_TABLE), max(1, -(-n * 8 // 100)))
    n_dups = 0 if n < 10 else 1 if n < 150 else 2 if n < 300 else 3
    n_regular = n - n_accel - n_backends - n_dups
    if n_regular < 0:  # tiny graphs: a few backends, the rest regular packages
        n_backends = max(1, n // 3)
        n_dups = n_accel = 0
        n_regular = n - n_backends

    pkgs: list[_Pkg] = []

    def add(name: str, version: str, kind: str, recipe: str) -> None:
        if recipe == "-":
            recipe = (
                _PURE_RECIPES[_h(name) % len(_PURE_RECIPES)]
                if kind == "p"
                else _DEFAULT_RECIPE[kind]
            )
        period = 3 + _h(spec.seed, product, name) % 29
        pkgs.append(_Pkg(name, version, kind, recipe, period))

    for name, version, kind, recipe in BACKEND_TABLE[:n_backends]:
        add(name, version, kind, recipe)
    # Regular packages: the popular core always, the rest shuffled per product; then
    # derived plugin packages once the real names run out.
    core, rest = PACKAGE_TABLE[:24], PACKAGE_TABLE[24:]
    rest = rest[:]
    rng.shuffle(rest)
    pool = core + rest
    for i in range(n_regular):
        if i < len(pool):
            name, version, kind, recipe = pool[i]
            add(name, version, kind, recipe)
        else:  # derived names: <real name>-plugin-N, same kind and build recipe
            k = i - len(pool)
            base_name, _v, kind, recipe = pool[k % len(pool)]
            number = k // len(pool) + 1
            version = f"{_h(base_name, k) % 4}.{_h(k, base_name) % 21}.{k % 10}"
            add(f"{base_name}-plugin-{number}", version, kind, recipe)
    regular_lo, regular_hi = n_backends, len(pkgs)
    by_name = {p.name: i for i, p in enumerate(pkgs)}

    # Build-system edges from recipes (only to backends / packages present in the graph).
    for i, pkg in enumerate(pkgs):
        for req_type, target, text in _RECIPES[pkg.recipe]:
            j = by_name.get(target)
            if j is not None and j != i:
                spellings = _REQ_SPELLINGS.get(target)
                if spellings and _h(pkg.name, target) % 3:
                    text = spellings[_h(target, pkg.name) % len(spellings)]
                pkg.edges.append((j, req_type, text))
        for text in _TOOL_INSTALL.get(pkg.name, ()):
            j = by_name.get(str(canonicalize_name(Requirement(text).name)))
            if j is not None and j != i:
                pkg.edges.append((j, "install", text))

    # Install edges between regular packages, skewed toward the popular ones.
    counts = (0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 6, 8)
    span = regular_hi - regular_lo
    for i in range(regular_lo, regular_hi):
        pkg = pkgs[i]
        wanted = counts[rng.randrange(len(counts))] if span > 1 else 0
        seen: set[int] = set()
        for _ in range(wanted * 2):
            if len(seen) >= min(wanted, span - 1):
                break
            j = regular_lo + int(span * rng.random() ** 2)
            if j == i or j in seen:
                continue
            seen.add(j)
            pkg.edges.append((j, "install", _install_req(rng, pkgs[j].name, pkgs[j].base_version)))
        if _h(product, pkg.name, "constraint") % 40 == 0:
            major = Version(pkg.base_version).release[0]
            pkg.constraint = f"{pkg.name}<{major + 1}"

    # Older lines of popular packages (fromager graphs often hold two versions of a name).
    made = 0
    for i in range(regular_lo, regular_hi):
        if made >= n_dups:
            break
        pkg = pkgs[i]
        older = older_version(pkg.base_version)
        if older is None or pkg.kind == "b":
            continue
        version, spec_text = older
        dup = _Pkg(pkg.name, version, pkg.kind, pkg.recipe, pkg.period, fixed=True)
        dup.edges = [e for e in pkg.edges if e[1] != "install"]
        pkgs.append(dup)
        # a package further down pins the older line
        user = pkgs[regular_lo + (i - regular_lo + 7) % span]
        user.edges.append((len(pkgs) - 1, "install", f"{pkg.name}{spec_text}"))
        made += 1
    while made < n_dups:  # could not find enough candidates: plain extra plugin packages
        add(f"{pool[made % len(pool)][0]}-extras-{made}", f"1.{made}.0", "p", "-")
        made += 1

    # Vendor (pre-built) wheels of the variant, pulled in by the first native package.
    anchor = next((i for i in range(regular_lo, regular_hi) if pkgs[i].kind == "k"), regular_lo)
    for name, version in _ACCELERATORS.get(vclass, _ACCELERATORS["cpu"])[:n_accel]:
        acc = _Pkg(name, version, "k", "none", 1, fixed=True, pre_built=True)
        pkgs.append(acc)
        pkgs[anchor].edges.append((len(pkgs) - 1, "install", f"{name}=={version}"))

    # Top-level requirements: a handful of leaf-ish regular packages (later in the pool).
    n_top = max(1, min(7, span // 40 + 1)) if span else 0
    toplevel: list[tuple[int, str]] = []
    if span:
        candidates = list(range(regular_lo, regular_hi))
        tail = candidates[len(candidates) // 3 :] or candidates
        picks = rng.sample(tail, min(n_top, len(tail)))
        native = next((i for i in candidates if pkgs[i].kind == "k"), None)
        if native is not None and native not in picks:
            picks[0] = native  # the stack's headline package, e.g. vllm[cuda]
        elif native is not None:
            picks.remove(native)
            picks.insert(0, native)
        for rank, j in enumerate(picks):
            name = pkgs[j].name
            if rank == 0 and vclass in ("cuda", "rocm"):
                toplevel.append((j, f"{name}[{vclass}]=={{version}}"))
            elif rank % 2 == 0:
                toplevel.append((j, f"{name}=={{version}}"))
            else:
                toplevel.append((j, name))
    else:
        toplevel.append((0, pkgs[0].name))

    # Discovery order: DFS from the top-level requirements, like fromager's bootstrap.
    order: list[int] = []
    seen_nodes: set[int] = set()
    stack = [j for j, _ in reversed(toplevel)]
    while stack:
        j = stack.pop()
        if j in seen_nodes:
            continue
        seen_nodes.add(j)
        order.append(j)
        stack.extend(t for t, _, _ in reversed(pkgs[j].edges) if t not in seen_nodes)
    order.extend(i for i in range(len(pkgs)) if i not in seen_nodes)
    assert len(pkgs) == n, (len(pkgs), n)
    return _Template(pkgs, toplevel, order)
