"""Incremental extract and the memory bound, against a real HTTP server (and real Postgres
where files are loaded): reruns skip what is unchanged without downloading it, changed
releases are re-extracted, ``--full`` refetches everything, the memory of what was spooled
survives pruning, and parallel fetching keeps the byte budget's bound.

The request counts are printed (``pytest -s``) for the closing note.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from etl import load, status
from etl.config import Settings
from etl.extract import ExtractReport, extract
from etl.spool import STATES, Spool, SpoolName
from etl.spooling.memory import ExtractMemory
from tests.support.cli import run_cli
from tests.support.env import child_env
from tests.support.gen import GenSpec, generate, iter_release_entries, mutate_release
from tests.support.httpserver import SourceServer

REPO = Path(__file__).resolve().parents[2]
KINDS = ("index", "pages", "release.json", "graph", "constraints", "summary", "wheels")
FILE_KINDS = ("graph", "constraints", "summary", "wheels")


def kind(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    if name == "index.json":
        return "index"
    if name.startswith("releases"):
        return "pages"
    return {
        "release.json": "release.json",
        "graph.json": "graph",
        "constraints.txt": "constraints",
        "build-sequence-summary.json": "summary",
        "wheels.json": "wheels",
    }.get(name, name)


def counts(server: SourceServer) -> dict[str, int]:
    """Requests per kind since the last ``clear()`` (every kind listed, zeros included)."""
    got = collections.Counter(kind(r.path) for r in server.requests)
    out = {k: got.get(k, 0) for k in KINDS}
    out.update({k: v for k, v in got.items() if k not in out})
    return out


def release_of(path: str) -> str:
    """``/rhai/1.0.3/x86_64/cpu/graph.json`` → ``rhai/1.0.3``."""
    parts = path.strip("/").split("/")
    return f"{parts[0]}/{parts[1]}"


def run(server: SourceServer, spool_dir: Path, **overrides: Any) -> ExtractReport:
    values: dict[str, Any] = {
        "source_url": server.url,
        "spool_dir": spool_dir,
        "workers": 8,
        "retries": 3,
        "retry_max_seconds": 20.0,
        "read_timeout": 10.0,
    }
    values.update(overrides)
    return extract(Settings(**values), Spool(spool_dir))


def ready_keys(spool: Spool) -> collections.Counter[str]:
    return collections.Counter(SpoolName.parse(f.name).release_key for f in spool.files("ready"))


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 releases (2 products x 100, 4 listing pages each), 2 small artifacts each."""
    root = tmp_path_factory.mktemp("incr") / "src"
    spec = GenSpec(products=2, releases=100, artifacts=2, packages=5, drops=3, page_size=25)
    summary = generate(root, spec)
    assert summary.releases == 200
    return root


def test_rerun_skips_unchanged_releases_and_refetches_changed_ones(
    big_tree: Path, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    spool = Spool(spool_dir)
    with SourceServer(big_tree) as server:
        first = run(server, spool_dir)
        c1 = counts(server)
        print(f"\n200 releases, first run:        {c1}")
        assert first.ok, first.failed[:3]
        assert len(first.spooled) == 200 and not first.unchanged
        assert c1 == {
            "index": 1,
            "pages": 8,
            "release.json": 200,
            "graph": 400,
            "constraints": 400,
            "summary": 400,
            "wheels": 400,
        }
        assert len(spool.files("ready")) == 200

        # rerun: same updated_at in the listing -> not one request for any release
        server.clear()
        second = run(server, spool_dir)
        c2 = counts(server)
        print(f"200 releases, unchanged rerun:  {c2}")
        assert second.ok and not second.spooled and len(second.unchanged) == 200
        assert c2 == {"index": 1, "pages": 8, **{k: 0 for k in KINDS[2:]}}
        assert len(spool.files("ready")) == 200  # nothing new written

        # three releases change: only their release.json and files are fetched
        entries = [(p, e["version"]) for p, _pg, e, _r in iter_release_entries(big_tree)]
        changed = [entries[3], entries[101], entries[198]]
        mutate_release(big_tree, *changed[0], withdraw_wheel=True)
        mutate_release(big_tree, *changed[1], rebuild_graph=True)
        mutate_release(big_tree, *changed[2], drop_artifact=True)
        server.clear()
        third = run(server, spool_dir)
        c3 = counts(server)
        print(f"200 releases, 3 mutated:        {c3}")
        keys = {f"{p}/{v}" for p, v in changed}
        assert third.ok and len(third.unchanged) == 197
        assert {SpoolName.parse(n).release_key for n in third.spooled} == keys
        assert c3["index"] == 1 and c3["pages"] == 8 and c3["release.json"] == 3
        # two artifacts each, except the one that lost an artifact
        assert [c3[k] for k in FILE_KINDS] == [5, 5, 5, 5]
        fetched = {release_of(r.path) for r in server.requests if kind(r.path) in FILE_KINDS}
        assert fetched == keys
        # each changed release now has its old and its new file in ready/ (load supersedes)
        per_key = ready_keys(spool)
        assert {k for k, n in per_key.items() if n == 2} == keys
        assert sum(per_key.values()) == 203

        # --full: everything again, unconditionally
        server.clear()
        full = run(server, spool_dir, full=True)
        c4 = counts(server)
        print(f"200 releases, --full:           {c4}")
        assert full.ok and len(full.spooled) == 200 and not full.unchanged
        assert c4["release.json"] == 200 and c4["graph"] == 399 and c4["wheels"] == 399
        assert not [r for r in server.requests if r.header("if-none-match")]
        # same content, same name: --full rewrote the files in place, nothing doubled
        assert sum(ready_keys(spool).values()) == 203
        assert not list((spool_dir / "tmp").iterdir())


def test_listing_bump_without_a_change_is_a_304(big_tree: Path, tmp_path: Path) -> None:
    """A listing whose updated_at moved while release.json did not: one conditional GET of
    release.json answered 304, and no artifact file."""
    tree = tmp_path / "src"
    generate(tree, GenSpec(products=1, releases=6, artifacts=2, packages=5, drops=3))
    spool_dir = tmp_path / "spool"
    with SourceServer(tree) as server:
        assert run(server, spool_dir).ok
        page = tree / "rhai" / "releases.json"
        doc = json.loads(page.read_text())
        doc["releases"][2]["updated_at"] = "2026-01-01T00:00:00Z"  # past: never refused
        page.write_text(json.dumps(doc))
        server.clear()
        report = run(server, spool_dir)
        c = counts(server)
    assert report.ok and len(report.unchanged) == 6 and not report.spooled
    assert c["release.json"] == 1 and all(c[k] == 0 for k in FILE_KINDS)
    [req] = [r for r in server.requests if kind(r.path) == "release.json"]
    assert req.header("if-none-match") or req.header("if-modified-since")
    assert report.stats["not_modified"] == 1


def test_pruned_files_are_still_skipped_and_status_shows_each_product(
    tmp_path: Path, db_url: str
) -> None:
    tree = tmp_path / "src"
    generate(tree, GenSpec(products=2, releases=5, artifacts=2, packages=5, drops=3))
    spool_dir = tmp_path / "spool"
    spool = Spool(spool_dir)
    with SourceServer(tree) as server:
        assert run(server, spool_dir).ok
        loaded = load.load_spool(spool, db_url)
        assert loaded.ok and len(loaded.applied) == 10
        assert spool.prune(0.0)[0] == 10  # the loaded files are gone
        assert not any(spool.files(s) for s in STATES)
        server.clear()
        report = run(server, spool_dir)
        c = counts(server)
    print(f"\n10 releases after prune, rerun: {c}")
    assert report.ok and len(report.unchanged) == 10 and not report.spooled
    assert sum(c[k] for k in KINDS[2:]) == 0  # the state records remembered them
    assert not any(spool.files(s) for s in STATES)

    doc = status.collect(spool, None)
    info = doc.to_json()
    products = {p["product"]: p for p in info["products"]}
    assert set(products) == {"rhai", "webstack"}
    for p in products.values():
        assert p["last_extracted_at"] and p["releases_seen"] == 5 and p["releases_failed"] == 0
    text = status.render(doc)
    assert "product rhai: last extracted" in text and "product webstack: last extracted" in text

    # through the CLI as well
    out = run_cli("status", "--spool", spool_dir, "--database-url", db_url)
    assert out.returncode == 0, out.stderr
    assert "product rhai: last extracted" in out.stdout
    assert "product webstack: last extracted" in out.stdout

    assert ExtractMemory(Spool(spool_dir)).release("rhai", "1.0.0") is not None


# --- parallel fetching with a memory bound -------------------------------------------


def _artifact_group_sizes(tree: Path) -> list[int]:
    """Bytes of each artifact's four files (what one budget group can hold)."""
    sizes = []
    for _product, _page, _entry, rel_path in iter_release_entries(tree):
        rel = json.loads(rel_path.read_text())
        for art in rel["artifacts"]:
            sizes.append(sum((rel_path.parent / u).stat().st_size for u in art["files"].values()))
    return sizes


@pytest.fixture(scope="module")
def heavy_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 releases x 4 artifacts whose graph.json / wheels.json are ~300 KB each."""
    root = tmp_path_factory.mktemp("heavy") / "src"
    generate(root, GenSpec(products=1, releases=16, artifacts=4, packages=330, drops=1200))
    return root


def test_parallel_fetch_keeps_the_byte_budget_bound(heavy_tree: Path, tmp_path: Path) -> None:
    """8 workers, a 2 MiB cap, files of ~130-320 KB: the bound verified is
    ``peak <= max_inflight_bytes + the largest artifact's four files`` (ByteBudget lets one
    artifact group at a time go over the cap, see etl/source/budget.py), and the run completes."""
    cap = 2 * 1024 * 1024
    groups = _artifact_group_sizes(heavy_tree)
    biggest_doc = max(p.stat().st_size for p in heavy_tree.rglob("*") if p.is_file())
    spool_dir = tmp_path / "spool"
    with SourceServer(heavy_tree) as server:
        report = run(server, spool_dir, workers=8, max_inflight_bytes=cap)
    peak = report.stats["budget_peak_bytes"]
    bound = cap + max(groups)
    print(
        f"\nbudget: cap {cap}, peak {peak}, overdrafts {report.stats['budget_overdrafts']}, "
        f"bound cap + largest artifact (4 files) = {bound}; largest single file {biggest_doc}"
    )
    assert report.ok, report.failed[:3]
    assert len(report.spooled) == 16
    assert 250_000 < biggest_doc < 400_000
    assert 0 < peak <= bound
    # each release in a file of its own, complete
    spool = Spool(spool_dir)
    assert sorted(ready_keys(spool).values()) == [1] * 16
    assert not list((spool_dir / "tmp").iterdir())


def test_a_cap_smaller_than_one_file_neither_deadlocks_nor_breaks_the_bound(
    heavy_tree: Path, tmp_path: Path
) -> None:
    """Every artifact must go over a 1-byte cap; one artifact group at a time does."""
    groups = _artifact_group_sizes(heavy_tree)
    spool_dir = tmp_path / "spool"
    with SourceServer(heavy_tree) as server:
        report = run(server, spool_dir, workers=8, max_inflight_bytes=1)
    assert report.ok and len(report.spooled) == 16
    assert report.stats["budget_overdrafts"] > 0
    assert report.stats["budget_peak_bytes"] <= 1 + max(groups)


_RSS_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    from etl.config import Settings
    from etl.extract import extract
    from etl.spool import Spool
    url, spool, cap = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    s = Settings(source_url=url, spool_dir=spool, workers=8, max_inflight_bytes=cap)
    r = extract(s, Spool(spool))
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"ok": r.ok, "spooled": len(r.spooled), "rss_kib": rss_kib,
                      "peak": r.stats["budget_peak_bytes"]}))
    """
)


def test_peak_rss_of_an_extract_with_a_tiny_and_a_large_cap(
    heavy_tree: Path, tmp_path: Path
) -> None:
    groups = _artifact_group_sizes(heavy_tree)
    results = {}
    with SourceServer(heavy_tree) as server:
        for label, cap in (("tiny", 1024 * 1024), ("large", 512 * 1024 * 1024)):
            out = subprocess.run(
                [sys.executable, "-c", _RSS_SCRIPT, server.url, str(tmp_path / label), str(cap)],
                capture_output=True,
                text=True,
                env=child_env(),
                timeout=600,
                check=True,
            )
            results[label] = (cap, json.loads(out.stdout.strip().splitlines()[-1]))
    for label, (cap, r) in results.items():
        print(
            f"\nextract subprocess, {label} cap {cap}: peak RSS {r['rss_kib'] / 1024:.1f} MiB, "
            f"budget peak {r['peak']}"
        )
        assert r["ok"] and r["spooled"] == 16
        assert r["peak"] <= cap + max(groups)  # the budget bound; RSS is only reported
