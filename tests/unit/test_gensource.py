"""The source generator (tests/support/gen/) and the shipped sample tree follow the
source protocol (docs/source-protocol.md) and look like real fromager output."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import resource
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from tests.support.gen import (
    FILE_KEYS,
    GenSpec,
    dump_graph,
    dump_wheels,
    generate,
    mutate_release,
    parse_ts,
    resolve,
)
from tests.support.oracle import iter_expected

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "etl" / "sample_collection"
IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
REQ_TYPES = {"toplevel", "install", "build-system", "build-backend", "build-sdist"}
SUMMARY_KEYS = {"name", "version", "prebuilt", "download_url", "wheel_filename", "skipped"}
TINY = GenSpec(products=2, releases=5, artifacts=4, packages=40, drops=60, seed=3, page_size=2)


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def check_graph(graph: Any, where: Path) -> None:
    """fromager graph.json shape: root "" node + "name==version" nodes with typed edges."""
    assert isinstance(graph, dict), where
    assert "" in graph, f"{where}: no root node"
    root = graph[""]
    assert root["version"] == "0" and root["canonicalized_name"] == "", where
    assert root["edges"], f"{where}: root has no edges"
    for key, node in graph.items():
        assert isinstance(node["download_url"], str), (where, key)
        assert isinstance(node["pre_built"], bool), (where, key)
        assert isinstance(node["version"], str), (where, key)
        assert isinstance(node["edges"], list), (where, key)
        if "constraint" in node:
            assert node["constraint"] is None or isinstance(node["constraint"], str)
        if key:
            name = node["canonicalized_name"]
            assert name == canonicalize_name(name), (where, key)
            assert key == f"{name}=={node['version']}", (where, key)
        for edge in node["edges"]:
            assert set(edge) == {"key", "req_type", "req"}, (where, key, edge)
            assert edge["req_type"] in REQ_TYPES, (where, key, edge)
            assert edge["key"] in graph, f"{where}: edge to missing node {edge['key']}"
            Requirement(edge["req"])


def check_tree(root: Path, *, consistent: bool) -> dict[str, Any]:
    """Walk a source tree like the extractor would and check every protocol rule.

    ``consistent``: also require constraints/summary/wheels to match the graph (true for
    generated trees; the samples deliberately reuse the closest real file where fromager
    produced none, see samples/README.md).
    """
    index_path = root / "index.json"
    index = load(index_path)
    assert index["format"] == "wheel-collections/1"
    stats: dict[str, Any] = Counter()
    stats["graph_nodes"] = []
    products = [p["name"] for p in index["products"]]
    assert len(products) == len(set(products))
    for product in index["products"]:
        name = product["name"]
        assert IDENT.fullmatch(name), name
        page_path: Path | None = resolve(index_path, product["releases"], root)
        seen_pages: set[Path] = set()
        stamps: list[str] = []
        versions: set[str] = set()
        while page_path is not None:
            assert page_path.is_file(), page_path
            assert page_path not in seen_pages, f"pagination loop at {page_path}"
            seen_pages.add(page_path)
            assert len(seen_pages) < 10_000
            page = load(page_path)
            assert page["product"] == name
            for entry in page["releases"]:
                version = entry["version"]
                assert IDENT.fullmatch(version), version
                assert version not in versions, f"{name} {version} listed twice"
                versions.add(version)
                assert RFC3339_UTC.fullmatch(entry["updated_at"]), entry
                stamps.append(entry["updated_at"])
                rel_path = resolve(page_path, entry["url"], root)
                assert rel_path.is_file(), rel_path
                check_release(root, rel_path, name, entry, stats, consistent=consistent)
            nxt = page.get("next")
            page_path = resolve(page_path, nxt, root) if nxt is not None else None
            if nxt is not None:
                stats["next_links"] += 1
        assert len(set(stamps)) == len(stamps), f"{name}: updated_at not distinct"
        stats["pages"] += len(seen_pages)
        stats["products"] += 1
    return dict(stats)


def check_release(
    root: Path,
    rel_path: Path,
    product: str,
    entry: dict[str, Any],
    stats: dict[str, Any],
    *,
    consistent: bool,
) -> None:
    rel = load(rel_path)
    assert rel["product"] == product and rel["version"] == entry["version"], rel_path
    assert rel["updated_at"] == entry["updated_at"], rel_path
    pairs = [(a["architecture"], a["variant"]) for a in rel["artifacts"]]
    assert pairs and len(pairs) == len(set(pairs)), rel_path
    stats["releases"] += 1
    stats["min_artifacts"] = min(stats.get("min_artifacts", 10**9), len(pairs))
    for art in rel["artifacts"]:
        assert IDENT.fullmatch(art["architecture"]) and IDENT.fullmatch(art["variant"]), art
        assert RFC3339_UTC.fullmatch(art["built_at"]), art
        assert isinstance(art["build_id"], str) and art["build_id"]
        assert set(art["files"]) == set(FILE_KEYS), art
        paths = {k: resolve(rel_path, url, root) for k, url in art["files"].items()}
        for path in paths.values():
            assert path.is_file(), path
        stats["artifacts"] += 1

        graph = load(paths["dependency_graph"])
        check_graph(graph, paths["dependency_graph"])
        stats["graph_nodes"].append(len(graph) - 1)
        nodes = {(n["canonicalized_name"], n["version"]) for k, n in graph.items() if k}

        constraints = []
        for line in paths["constraints_file"].read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                stats["comment_lines"] += bool(line.strip())
                continue
            req = Requirement(line)
            specs = list(req.specifier)
            assert len(specs) == 1 and specs[0].operator == "==", line
            constraints.append((canonicalize_name(req.name), specs[0].version))
            stats["marker_lines"] += req.marker is not None
        assert constraints, paths["constraints_file"]
        assert len({n for n, _ in constraints}) == len(constraints), "one pin per name"

        summary = load(paths["build_sequence_summary"])
        assert isinstance(summary, list) and summary
        assert "\n" not in paths["build_sequence_summary"].read_text().strip(), "one line"
        for item in summary:
            assert set(item) == SUMMARY_KEYS, item
            parse_wheel_filename(item["wheel_filename"].rsplit("/", 1)[-1])

        wheels = load(paths["wheels"])["files"]
        filenames = [f["filename"] for f in wheels]
        assert len(filenames) == len(set(filenames)), "duplicate drop"
        for f in wheels:
            name, version, _build, _tags = parse_wheel_filename(f["filename"])
            assert re.fullmatch(r"[0-9a-f]{64}", f["hashes"]["sha256"]), f
            assert isinstance(f["size"], int) and f["size"] > 0, f
            assert RFC3339_UTC.fullmatch(f["upload-time"]), f
            if consistent:
                assert (str(name), str(version)) in nodes, f["filename"]
        stats["drops"] += len(wheels)

        if consistent:
            for pin in constraints:
                assert pin in nodes, pin
            assert {(s["name"], s["version"]) for s in summary} == nodes
            assert len(summary) == len(nodes)


# --------------------------------------------------------------------------------------
# generated trees
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gensource") / "src"
    generate(root, TINY)
    return root


def test_generated_tree_follows_protocol(tiny: Path) -> None:
    stats = check_tree(tiny, consistent=True)
    assert stats["products"] == 2
    assert stats["releases"] == 10
    assert stats["artifacts"] == 40
    assert stats["min_artifacts"] == 4
    assert stats["drops"] == 40 * 60
    assert set(stats["graph_nodes"]) == {40}
    assert stats["pages"] == 6 and stats["next_links"] == 4  # 5 releases, 2 per page
    assert stats["comment_lines"] > 0 and stats["marker_lines"] > 0


def test_pagination_files_and_null_end(tiny: Path) -> None:
    names = sorted(p.name for p in (tiny / "rhai").glob("releases*.json"))
    assert names == ["releases-2.json", "releases-3.json", "releases.json"]
    assert load(tiny / "rhai" / "releases.json")["next"] == "releases-2.json"
    assert load(tiny / "rhai" / "releases-3.json")["next"] is None
    stamps = [
        e["updated_at"]
        for page in ("releases.json", "releases-2.json", "releases-3.json")
        for e in load(tiny / "rhai" / page)["releases"]
    ]
    assert stamps == sorted(stamps)


def test_summary_counts_match_files(tmp_path: Path) -> None:
    spec = GenSpec(products=1, releases=3, artifacts=2, packages=12, drops=30, page_size=50)
    summary = generate(tmp_path, spec)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert summary.files == len(files)
    assert summary.bytes == sum(p.stat().st_size for p in files)
    assert (summary.releases, summary.artifacts, summary.drops) == (3, 6, 180)
    assert "next" not in load(tmp_path / "rhai" / "releases.json")  # single page: no next


def test_iter_expected_matches_summary(tiny: Path) -> None:
    expected = list(iter_expected(tiny))
    assert len(expected) == 10
    assert {e.product for e in expected} == {"rhai", "webstack"}
    for rel in expected:
        assert len(rel.artifacts) == 4
        assert rel.drop_count == 4 * 60
        for art in rel.artifacts:
            assert art.graph_nodes == 40 and art.summary_entries == 40
            assert all(c.specifier.startswith("==") for c in art.constraints)
            assert any(c.marker for c in art.constraints)
            assert all(d.build_tag in (None, "0", "1", "2", "3") for d in art.drops)


def test_generated_graph_looks_like_fromager(tmp_path: Path) -> None:
    real = load(SAMPLES / "rhai" / "3.0.0" / "x86_64" / "cuda12.8-ubi9" / "graph.json")
    legacy_keys = set(next(v for k, v in real.items() if k))  # fromager <= 0.68 format
    generate(tmp_path, GenSpec(products=2, releases=1, artifacts=1, packages=300, drops=10))
    for product, keys in (("rhai", legacy_keys), ("webstack", legacy_keys | {"constraint"})):
        path = next((tmp_path / product).rglob("graph.json"))
        raw = path.read_bytes()
        graph = json.loads(raw)
        assert raw.decode() == json.dumps(graph, indent=2)  # fromager's formatting
        assert len(graph) == 301
        assert all(set(n) == keys for n in graph.values())
        per_node = len(raw) / 300
        assert 700 < per_node < 1200, per_node  # real: ~900 B per package
        ratio = len(raw) / len(gzip.compress(raw))
        assert 4 <= ratio <= 8.5, ratio  # real e2e AI stack graph: 5.8x
        types = Counter(e["req_type"] for n in graph.values() for e in n["edges"])
        assert set(types) == REQ_TYPES
        names = {n["canonicalized_name"] for n in graph.values()}
        assert {"setuptools", "numpy", "torch", "requests"} <= names


def test_deterministic_and_seeded(tmp_path: Path) -> None:
    spec = GenSpec(products=1, releases=3, artifacts=2, packages=30, drops=40, seed=5)

    def digest(root: Path) -> str:
        h = hashlib.sha256()
        for p in sorted(root.rglob("*")):
            if p.is_file():
                h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
        return h.hexdigest()

    generate(tmp_path / "a", spec)
    generate(tmp_path / "b", spec)
    generate(tmp_path / "c", GenSpec(**{**spec.__dict__, "seed": 6}))
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_fast_dumpers_equal_json_dumps(tiny: Path) -> None:
    for path in list(tiny.rglob("graph.json"))[:3] + list(SAMPLES.rglob("graph.json"))[:6]:
        graph = load(path)
        assert dump_graph(graph) == json.dumps(graph, indent=2), path
    for path in list(tiny.rglob("wheels.json"))[:3]:
        doc = load(path)
        assert dump_wheels(doc["files"]) == json.dumps(doc, indent=2)
    assert dump_wheels([]) == json.dumps({"files": []}, indent=2)


@pytest.mark.parametrize("change", ["drop_artifact", "withdraw_wheel", "rebuild_graph"])
def test_mutate_release(tmp_path: Path, change: str) -> None:
    root = tmp_path / "src"
    generate(root, TINY)
    before = {(e.product, e.version): e for e in iter_expected(root)}
    newest = max(e.updated_at for e in before.values() if e.product == "rhai")
    target = ("rhai", sorted(v for p, v in before if p == "rhai")[2])

    new_ts = mutate_release(
        root,
        *target,
        drop_artifact=change == "drop_artifact",
        withdraw_wheel=change == "withdraw_wheel",
        rebuild_graph=change == "rebuild_graph",
    )

    after = {(e.product, e.version): e for e in iter_expected(root)}
    check_tree(root, consistent=True)
    assert new_ts > newest and after[target].updated_at == new_ts
    assert load(root / after[target].url)["updated_at"] == new_ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    for key in before:  # nothing else changed
        if key != target:
            assert after[key] == before[key]
    old, new = before[target], after[target]
    if change == "drop_artifact":
        assert len(new.artifacts) == len(old.artifacts) - 1
        assert new.artifacts == old.artifacts[:-1]
    elif change == "withdraw_wheel":
        assert new.drop_count == old.drop_count - len(old.artifacts)
    else:
        assert all(
            a.graph_sha256 != b.graph_sha256
            for a, b in zip(old.artifacts, new.artifacts, strict=True)
        )
        assert all(
            a.build_id != b.build_id for a, b in zip(old.artifacts, new.artifacts, strict=True)
        )
        assert new.drop_count == old.drop_count


def test_mutate_samples_copy(tmp_path: Path) -> None:
    root = tmp_path / "collection"
    shutil.copytree(SAMPLES, root)
    mutate_release(root, "webstack", "2026.11.3", rebuild_graph=True, withdraw_wheel=True)
    check_tree(root, consistent=False)
    (rel,) = [e for e in iter_expected(root) if e.version == "2026.11.3"]
    assert rel.updated_at > parse_ts("2026-11-26T10:00:00Z")


def test_memory_stays_flat_for_2000_releases(tmp_path: Path) -> None:
    spec = GenSpec(products=2, releases=1000, artifacts=1, packages=6, drops=6, page_size=100)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    summary = generate(tmp_path / "big", spec)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert summary.releases == 2000
    assert grown_mib < 20, f"ru_maxrss grew {grown_mib:.1f} MiB for 2,000 releases"
    pages = load(tmp_path / "big" / "webstack" / "releases-10.json")
    assert len(pages["releases"]) == 100 and pages["next"] is None


# --------------------------------------------------------------------------------------
# the committed sample source
# --------------------------------------------------------------------------------------
def test_samples_collection_follows_protocol() -> None:
    stats = check_tree(SAMPLES, consistent=False)
    assert stats["products"] >= 2
    assert stats["releases"] >= 6
    assert stats["min_artifacts"] >= 4
    assert 301 in stats["graph_nodes"]  # the real e2e AI stack
    assert stats["next_links"] >= 1  # a multi-page listing
    size = sum(p.stat().st_size for p in SAMPLES.rglob("*") if p.is_file())
    assert size < 3 * 1024 * 1024, size


def test_samples_hold_the_real_fromager_files() -> None:
    ai = SAMPLES / "rhai" / "3.0.0" / "x86_64" / "cuda12.8-ubi9" / "graph.json"
    graph = load(ai)
    assert len(graph) - 1 == 301
    assert graph[""]["edges"][0]["req"] == "vllm[cuda]==0.6.4.post1"
    digest = hashlib.sha256(ai.read_bytes()).hexdigest()
    shared = REPO.parent / "shared" / "samples" / "fromager" / "e2e-ai-stack" / "graph.json"
    if shared.is_file():  # byte-for-byte copy when the originals are around
        assert hashlib.sha256(shared.read_bytes()).hexdigest() == digest
    expected = list(iter_expected(SAMPLES))
    assert {e.product for e in expected} >= {"rhai", "webstack"}
    assert sum(e.drop_count for e in expected) > 1000
