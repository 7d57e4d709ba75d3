"""generate(): write a whole collection tree, streaming one release at a time."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.support.gen.constants import FILE_KEYS, FILE_NAMES, FORMAT, SUMMARY_WHEEL_DIR
from tests.support.gen.model import (
    GenSpec,
    Summary,
    _sha,
    artifact_pairs,
    fmt_ts,
    product_name,
    release_updated_at,
    release_version,
    variant_class,
)
from tests.support.gen.render import (
    _artifact_wheels,
    _dump,
    _wheel,
    _wheel_size,
    _write,
    constraints_text,
    dump_graph,
    dump_wheels,
    render_graph,
)
from tests.support.gen.template import _build_template, _Template


# --------------------------------------------------------------------------------------
# generate
# --------------------------------------------------------------------------------------
class _ProductWriter:
    def __init__(self, root: Path, spec: GenSpec, index: int, summary: Summary) -> None:
        self.root = root
        self.spec = spec
        self.index = index
        self.name = product_name(index)
        self.summary = summary
        self.dir = root / self.name
        self.templates: dict[str, _Template] = {}

    def template(self, vclass: str) -> _Template:
        if vclass not in self.templates:
            self.templates[vclass] = _build_template(self.spec, self.name, vclass)
        return self.templates[vclass]

    def run(self) -> None:
        spec = self.spec
        self.dir.mkdir(parents=True, exist_ok=True)
        pages = max(1, -(-spec.releases // spec.page_size))
        page: list[dict[str, str]] = []
        page_no = 1
        for r in range(spec.releases):
            page.append(self.write_release(r))
            if len(page) == spec.page_size or r == spec.releases - 1:
                self.write_page(page_no, pages, page)
                page, page_no = [], page_no + 1
        if spec.releases == 0:
            self.write_page(1, 1, [])

    def write_page(self, page_no: int, pages: int, entries: list[dict[str, str]]) -> None:
        doc: dict[str, Any] = {"product": self.name, "releases": entries}
        if page_no < pages:
            doc["next"] = page_file(page_no + 1)
        elif pages > 1:
            doc["next"] = None  # multi-page chains end with an explicit null
        _write(self.dir / page_file(page_no), _dump(doc), self.summary)

    def write_release(self, r: int) -> dict[str, str]:
        spec = self.spec
        version = release_version(r, self.index)
        updated = release_updated_at(r, self.index, spec.seed)
        rel_dir = self.dir / version
        artifacts = []
        graphs: dict[str, tuple[str, str, dict[str, Any]]] = {}
        for a, (arch, variant) in enumerate(artifact_pairs(spec.artifacts)):
            vclass = variant_class(variant)
            tpl = self.template(vclass)
            if vclass not in graphs:
                graph = render_graph(tpl, r, legacy=self.index % 2 == 0)
                graphs[vclass] = (dump_graph(graph), constraints_text(graph), graph)
            graph_text, constraints, graph = graphs[vclass]
            build_no = 100_000 + (self.index * max(spec.releases, 1) + r) * spec.artifacts + a
            build_id = f"pipeline-{build_no + spec.seed * 7919}"
            built_at = updated - timedelta(hours=3) + timedelta(seconds=90 * a)
            art_dir = rel_dir / arch / variant
            art_dir.mkdir(parents=True, exist_ok=True)
            _write(art_dir / "graph.json", graph_text, self.summary)
            self.summary.graph_bytes += len(graph_text)
            _write(art_dir / "constraints.txt", constraints, self.summary)
            _write(
                art_dir / "build-sequence-summary.json",
                self.summary_json(tpl, graph, r, arch),
                self.summary,
            )
            wheels = _artifact_wheels(tpl, r, arch, spec.drops)
            files = []
            for k, (pkg, _v, fn) in enumerate(sorted(wheels, key=lambda w: w[2])):
                uploaded = min(
                    built_at + timedelta(seconds=600 + 3 * k), updated - timedelta(seconds=1)
                )
                files.append(
                    {
                        "filename": fn,
                        "hashes": {"sha256": _sha(build_id, variant, fn)},
                        "size": _wheel_size(fn, pkg.kind),
                        "upload-time": fmt_ts(uploaded),
                    }
                )
            _write(art_dir / "wheels.json", dump_wheels(files), self.summary)
            self.summary.drops += len(files)
            self.summary.artifacts += 1
            prefix = f"{arch}/{variant}/"
            artifacts.append(
                {
                    "architecture": arch,
                    "variant": variant,
                    "build_id": build_id,
                    "built_at": fmt_ts(built_at),
                    "files": {k: prefix + FILE_NAMES[k] for k in FILE_KEYS},
                }
            )
        doc = {
            "product": self.name,
            "version": version,
            "updated_at": fmt_ts(updated),
            "artifacts": artifacts,
        }
        _write(rel_dir / "release.json", _dump(doc), self.summary)
        self.summary.releases += 1
        return {"version": version, "updated_at": fmt_ts(updated), "url": f"{version}/release.json"}

    def summary_json(self, tpl: _Template, graph: dict[str, Any], r: int, arch: str) -> str:
        """fromager build-sequence-summary.json: build order = dependencies first."""
        entries = []
        if not tpl.build_order:
            tpl.build_order = _build_order(tpl)
        for i in tpl.build_order:
            pkg = tpl.pkgs[i]
            version = pkg.version_at(r)
            node = graph[f"{pkg.name}=={version}"]
            wheel = _wheel(pkg, version, arch, 0)
            entries.append(
                {
                    "name": pkg.name,
                    "version": version,
                    "prebuilt": pkg.pre_built,
                    "download_url": node["download_url"],
                    "wheel_filename": SUMMARY_WHEEL_DIR + str(wheel),
                    "skipped": False,
                }
            )
        return json.dumps(entries)


def _build_order(tpl: _Template) -> list[int]:
    """Post-order DFS over all edges from the top level (what fromager builds first)."""
    done: set[int] = set()
    out: list[int] = []
    for start in [j for j, _ in tpl.toplevel] + tpl.order:
        if start in done:
            continue
        stack: list[tuple[int, int]] = [(start, 0)]
        on_stack = {start}
        while stack:
            node, k = stack[-1]
            edges = tpl.pkgs[node].edges
            if k < len(edges):
                stack[-1] = (node, k + 1)
                t = edges[k][0]
                if t not in done and t not in on_stack:
                    stack.append((t, 0))
                    on_stack.add(t)
            else:
                stack.pop()
                on_stack.discard(node)
                if node not in done:
                    done.add(node)
                    out.append(node)
    return out


def page_file(page_no: int) -> str:
    return "releases.json" if page_no == 1 else f"releases-{page_no}.json"


def generate(root: Path, spec: GenSpec) -> Summary:
    """Write a complete source tree under ``root`` (created; must not hold another tree)."""
    started = time.monotonic()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    summary = Summary(root=root)
    products = []
    for p in range(spec.products):
        writer = _ProductWriter(root, spec, p, summary)
        writer.run()
        products.append({"name": writer.name, "releases": f"{writer.name}/releases.json"})
        summary.products.append(writer.name)
    _write(root / "index.json", _dump({"format": FORMAT, "products": products}), summary)
    summary.seconds = time.monotonic() - started
    return summary
