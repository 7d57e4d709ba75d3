"""``wheels-etl why``: why a package is in a build (schema ``wheels-etl/why/1``, see
``docs/why-json.md``).

The build's edges come from the ``graph_edges`` view (one build's graph expanded, found by
the ``artifacts`` key).  One breadth-first search from every top-level requirement (a child
of the graph's root ``""``) gives each node's distance and its predecessors on shortest
paths; the paths to NAME are then walked back through those predecessors only, stopping at
``--paths``: linear in the graph's size whatever the number of paths, cycles included.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from etl.answers import store

SCHEMA = "wheels-etl/why/1"

EDGES_QUERY = """SELECT architecture, variant, parent_name, parent_version, child_name,
       child_version, req_type, req
FROM graph_edges
WHERE product = %(product)s AND release = %(release)s
  AND (%(arch)s::text IS NULL OR architecture = %(arch)s)
  AND (%(variant)s::text IS NULL OR variant = %(variant)s)"""

Step = dict[str, Any]


@dataclass
class Graph:
    """One build's graph: node keys ``name==version``; the root's edges apart."""

    roots: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    children: dict[str, list[tuple[str, str, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    names: dict[str, str] = field(default_factory=dict)  # node key -> its name

    def add(self, parent: tuple[str, str], child: tuple[str, str], rt: str, req: str) -> None:
        ckey = f"{child[0]}=={child[1]}"
        self.names[ckey] = child[0]
        if parent[0] == "":
            self.roots[ckey].append((rt, req))
            return
        pkey = f"{parent[0]}=={parent[1]}"
        self.names[pkey] = parent[0]
        self.children[pkey].append((ckey, rt, req))


def shortest(graph: Graph) -> dict[str, list[tuple[str, str, str]]]:
    """Breadth-first from the top-level nodes: each reached node's predecessors on its
    shortest paths, ``(parent, req_type, req)``, sorted; top-level nodes have none."""
    dist = {key: 0 for key in graph.roots}
    preds: dict[str, list[tuple[str, str, str]]] = {key: [] for key in graph.roots}
    queue = deque(sorted(graph.roots))
    while queue:
        node = queue.popleft()
        for child, rt, req in graph.children.get(node, ()):
            if child not in dist:
                dist[child] = dist[node] + 1
                preds[child] = []
                queue.append(child)
            if dist[child] == dist[node] + 1:
                preds[child].append((node, rt, req))
    return {node: sorted(set(p)) for node, p in preds.items()}  # an edge written twice: once


def paths_to(
    target: str, graph: Graph, preds: dict[str, list[tuple[str, str, str]]], limit: int
) -> list[list[Step]]:
    """At most ``limit`` shortest paths from a top-level requirement to ``target``, walked
    back through the predecessors (every one of them leads to the root: no dead ends)."""
    if target not in preds:
        return []
    out: list[list[Step]] = []
    stack: list[tuple[str, list[Step]]] = [(target, [])]
    while stack and len(out) < limit:
        node, suffix = stack.pop()
        if node in graph.roots:
            for rt, req in sorted(set(graph.roots[node])):
                out.append([{"node": node, "req_type": rt, "req": req}, *suffix])
                if len(out) >= limit:
                    break
            continue
        for parent, rt, req in reversed(preds[node]):
            stack.append((parent, [{"node": node, "req_type": rt, "req": req}, *suffix]))
    return out


def answer(graph: Graph, name: str, limit: int) -> dict[str, Any]:
    """The build entry of the document (without the build's keys)."""
    keys = [k for k, n in graph.names.items() if n == name]
    versions = store.sort_versions(k.partition("==")[2] for k in keys)
    preds = shortest(graph)
    paths: list[list[Step]] = []
    for version in versions:
        paths += paths_to(f"{name}=={version}", graph, preds, limit)
    targets = set(keys)
    dependents = sorted(
        {p for p, kids in graph.children.items() for c, _, _ in kids if c in targets}
    )
    return {
        "versions": versions,
        "toplevel": any(k in graph.roots for k in keys),
        "paths": paths,
        "dependents": dependents,
    }


def why(
    conninfo: str,
    name: str,
    *,
    product: str,
    release: str,
    architecture: str | None = None,
    variant: str | None = None,
    paths: int = 3,
) -> dict[str, Any]:
    """The ``wheels-etl/why/1`` document, one entry per build matching the filters."""
    canonical = store.package_name(name)
    if paths < 1:
        raise store.QueryInputError(f"--paths must be at least 1, got {paths}")
    with store.reader(conninfo) as conn:
        store.check_release(conn, product, release)
        builds = store.builds(conn, product, release)
        for what, value, index in (("architecture", architecture, 0), ("variant", variant, 1)):
            known = sorted({b[index] for b in builds})
            if value is not None and value not in known:
                raise store.QueryInputError(
                    f"no {what} {value!r} in {product}/{release}; closest: "
                    f"{store.closest(value, known)}"
                )
        params = {"product": product, "release": release, "arch": architecture,
                  "variant": variant}  # fmt: skip
        graphs: dict[tuple[str, str], Graph] = {
            b: Graph() for b in builds if architecture in (None, b[0]) and variant in (None, b[1])
        }
        for arch, var, pn, pv, cn, cv, rt, req in conn.execute(EDGES_QUERY, params):
            graphs[(arch, var)].add((pn, pv), (cn, cv), rt, req)
    if not graphs:
        raise store.QueryInputError(
            f"no build {architecture}/{variant} in {product}/{release}; builds: "
            + ", ".join(f"{a}/{v}" for a, v in builds)
        )
    out = [
        {"architecture": a, "variant": v, **answer(g, canonical, paths)}
        for (a, v), g in sorted(graphs.items())
    ]
    return {"schema": SCHEMA, "schema_version": 1, "name": canonical, "product": product,
            "release": release, "builds": out}  # fmt: skip


def text(doc: dict[str, Any]) -> str:
    lines = []
    for b in doc["builds"]:
        where = f"{doc['product']} {doc['release']} {b['architecture']}/{b['variant']}"
        if not b["versions"]:
            lines.append(f"{where}: {doc['name']} is not in this build's graph")
            continue
        top = " (a top-level requirement)" if b["toplevel"] else ""
        lines.append(f"{where}: {doc['name']} {', '.join(b['versions'])}{top}")
        for path in b["paths"]:
            lines.append("  " + " -> ".join(f"{s['node']} [{s['req_type']}: {s['req']}]"
                                            for s in path))  # fmt: skip
        if not b["paths"]:
            lines.append("  no path from a top-level requirement")
        if b["dependents"]:
            lines.append(f"  needed directly by: {', '.join(b['dependents'])}")
    return "\n".join(lines)
