"""search, diff and why against the independent oracle (tests/support/oracle/answers.py):
the shipped sample collection (real fromager output), the synthetic releases of
tests/support/answerstree.py (answers known by construction, the legacy graph format, a
cycle, billions of paths), and the migration of a database loaded before the domain
tables existed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from etl.answers import diff, difftext, search, why
from etl.answers.store import QueryInputError
from tests.support import answerstree
from tests.support.cli import cli_env, run_cli
from tests.support.oracle import answers as oracle

SAMPLE = Path(__file__).resolve().parents[2] / "etl" / "sample_collection"


def _load(tmp: Path, source: Path, db_url: str) -> None:
    env = cli_env(spool=tmp / "spool", source=source, database_url=db_url)
    for command in ("extract", "load"):
        done = run_cli(command, "-q", env=env, in_process=True)
        assert done.returncode == 0, str(done)


@pytest.fixture
def sample_db(tmp_path: Path, db_url: str) -> str:
    _load(tmp_path, SAMPLE, db_url)
    return db_url


@pytest.fixture
def synth(tmp_path: Path, db_url: str) -> tuple[Path, str]:
    root = answerstree.write_synth(tmp_path / "src")
    _load(tmp_path, root, db_url)
    return root, db_url


#: The fields of a search match that the oracle knows.
SEARCH_KEYS = (
    "product",
    "release",
    "architecture",
    "variant",
    "version",
    "filename",
    "origin",
    "sha256",
    "size",
)


def _search_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: m[k] for k in SEARCH_KEYS} for m in doc["matches"]]


def _diff_shape(doc: dict[str, Any]) -> dict[tuple[Any, ...], Any]:
    out: dict[tuple[Any, ...], Any] = {}
    for b in doc["builds"]:
        key = (b["architecture"], b["variant_from"], b["variant_to"])
        if b["status"] in ("added", "removed"):
            out[key] = {"status": b["status"]}
            continue
        c = b["constraints"]
        out[key] = {
            "added": {a["name"]: a["versions"] for a in b["added"]},
            "removed": {r["name"]: r["versions"] for r in b["removed"]},
            "changed": {x["name"]: x["direction"] for x in b["changed"]},
            "rebuilt": {(x["name"], x["version"]) for x in b["rebuilt"]},
            "origin_changed": {
                (x["name"], x["version"]): ({x["from"]}, {x["to"]}) for x in b["origin_changed"]
            },
            "constraints_added": {x["name"] for x in c["added"]},
            "constraints_removed": {x["name"] for x in c["removed"]},
            "constraints_changed": {x["name"] for x in c["changed"]},
            "status": b["status"],
        }
    return out


# --- the sample collection ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "spec", "product"),
    [
        ("torch", None, None),
        ("Flask", None, None),
        ("MarkupSafe", ">=3", "webstack"),
        ("setuptools", None, None),
        ("torch", "2.3.1", None),
        ("no-such-thing", None, None),
    ],
)
def test_search_on_the_sample_matches_the_oracle(
    sample_db: str, name: str, spec: str | None, product: str | None
) -> None:
    doc = search.search(sample_db, name, version=spec, product=product)
    assert doc["schema"] == "wheels-etl/search/1"
    assert _search_rows(doc) == oracle.search(oracle.snapshot(SAMPLE), name, spec, product)


def test_diff_on_the_sample_matches_the_oracle(sample_db: str) -> None:
    snap = oracle.snapshot(SAMPLE)
    for product, old, new in [
        ("rhai", "2.18.0", "3.0.0"),
        ("webstack", "2026.11.0", "2026.11.3"),
        ("webstack", "2026.11.3", "2026.11.1"),
    ]:
        doc = diff.diff(sample_db, product, old, new)
        assert doc["schema"] == "wheels-etl/diff/1"
        assert _diff_shape(doc) == _origin_sets(oracle.diff_summary(snap, product, old, new))
        assert difftext.text(doc) and difftext.markdown(doc).startswith("## ")


def _origin_sets(expected: dict[tuple[Any, ...], Any]) -> dict[tuple[Any, ...], Any]:
    for entry in expected.values():
        if "origin_changed" in entry:
            entry["origin_changed"] = {
                k: ({_one(a)}, {_one(b)}) for k, (a, b) in entry["origin_changed"].items()
            }
    return expected


def _one(origins: set[str | None]) -> str | None:
    known = sorted(o for o in origins if o)
    if not known:
        return None
    return "+".join(known if len(known) == len(origins) else [*known, "none"])


@pytest.mark.parametrize("name", ["markupsafe", "certifi", "torch", "flit-core", "Jinja2"])
def test_why_on_the_sample_passes_the_oracles_checks(sample_db: str, name: str) -> None:
    snap = oracle.snapshot(SAMPLE)
    releases = sorted({(p, r) for p, r, _, _ in snap["artifacts"]})
    seen = 0
    for product, release in releases:
        doc = why.why(sample_db, name, product=product, release=release, paths=2)
        assert doc["schema"] == "wheels-etl/why/1"
        for b in doc["builds"]:
            graph = snap["artifacts"][(product, release, b["architecture"], b["variant"])]
            oracle.why_check(graph["dependency_graph"], name, b, 2)
            seen += len(b["paths"])
    assert seen > 0


# --- synthetic releases: answers known by construction ------------------------------------


def test_diff_by_construction(synth: tuple[Path, str]) -> None:
    root, db = synth
    doc = diff.diff(db, "synth", "1.0", "2.0")
    by = {(b["architecture"], b["variant_from"], b["variant_to"]): b for b in doc["builds"]}
    assert {k: b["status"] for k, b in by.items()} == {
        ("aarch64", "cpu", "cpu"): "same",
        ("ppc64le", None, "cpu"): "added",
        ("s390x", "cpu", None): "removed",
        ("x86_64", "cpu", "cpu"): "changed",
        ("x86_64", "cuda12.4-ubi9", "cuda12.8-ubi9"): "changed",
    }
    for key in [("x86_64", "cpu", "cpu"), ("x86_64", "cuda12.4-ubi9", "cuda12.8-ubi9")]:
        b = by[key]
        assert b["added"] == [{"name": "newpkg", "versions": ["3.0"]}]
        assert b["removed"] == [{"name": "gone", "versions": ["1.0"]}]
        assert b["changed"] == [
            {"name": "bumped", "from": ["1.0"], "to": ["1.1"], "direction": "up"},
            {"name": "downer", "from": ["2.0"], "to": ["1.9"], "direction": "down"},
            {"name": "multi", "from": ["1.0", "2.0"], "to": ["0.5", "3.0"], "direction": "mixed"},
        ]
        assert [(r["name"], r["version"]) for r in b["rebuilt"]] == [("rebuilt", "1.0")]
        assert b["origin_changed"] == [
            {"name": "flip", "version": "1.0", "from": "built", "to": "prebuilt"}
        ]
        c = b["constraints"]
        assert c["added"] == [{"name": "newpkg", "specifier": "==3.0", "marker": None}]
        assert c["removed"] == [{"name": "gone", "specifier": "==1.0", "marker": None}]
        assert c["changed"] == [{"name": "bumped", "from": ["==1.0"], "to": ["==1.1"]}]
    assert _diff_shape(doc) == _origin_sets(
        oracle.diff_summary(oracle.snapshot(root), "synth", "1.0", "2.0")
    )
    assert "| x86_64/cuda12.4-ubi9 → cuda12.8-ubi9 | changed |" in difftext.markdown(doc)


def test_search_by_construction(synth: tuple[Path, str]) -> None:
    root, db = synth
    doc = search.search(db, "FLIP")
    assert [
        (m["release"], m["architecture"], m["variant"], m["origin"]) for m in doc["matches"]
    ] == [
        ("2.0", "ppc64le", "cpu", "prebuilt"),
        ("2.0", "x86_64", "cpu", "prebuilt"),
        ("2.0", "x86_64", "cuda12.8-ubi9", "prebuilt"),
        ("1.0", "s390x", "cpu", "built"),
        ("1.0", "x86_64", "cpu", "built"),
        ("1.0", "x86_64", "cuda12.4-ubi9", "built"),
    ]
    multi = search.search(db, "multi", version=">=1,<3")
    assert {m["version"] for m in multi["matches"]} == {"1.0", "2.0"}
    assert {m["origin"] for m in multi["matches"]} == {None}
    assert search.search(db, "newpkg", product="synth")["matches"][0]["origin"] == "reused"
    for name, spec in [("rebuilt", "1.0"), ("multi", "~=3.0"), ("keep", None)]:
        assert _search_rows(search.search(db, name, version=spec)) == oracle.search(
            oracle.snapshot(root), name, spec
        )


def test_why_by_construction_cycle_and_billions_of_paths(synth: tuple[Path, str]) -> None:
    root, db = synth
    snap = oracle.snapshot(root)
    deep = why.why(
        db, "deep", product="synth", release="2.0", architecture="x86_64", variant="cpu", paths=3
    )
    (b,) = deep["builds"]
    assert len(b["paths"]) == 3 and len(b["paths"][0]) == answerstree.LAYERS + 2
    assert b["paths"][0][0] == {"node": "app==1.0", "req_type": "toplevel", "req": "app"}
    assert b["dependents"] == [
        f"l{answerstree.LAYERS - 1}-n{j}==1.0" for j in range(answerstree.WIDTH)
    ]
    graph = snap["artifacts"][("synth", "2.0", "x86_64", "cpu")]["dependency_graph"]
    oracle.why_check(graph, "deep", b, 3)
    keep = why.why(db, "keep", product="synth", release="2.0", paths=5)
    assert len(keep["builds"]) == 4
    for b in keep["builds"]:
        graph = snap["artifacts"][("synth", "2.0", b["architecture"], b["variant"])]
        oracle.why_check(graph["dependency_graph"], "keep", b, 5)
        assert "cyc-b==1.0" in b["dependents"]
    cyc = why.why(db, "cyc-b", product="synth", release="1.0", variant="cpu")
    for b in cyc["builds"]:
        assert b["dependents"] == ["cyc-a==1.0"]
        assert [s["node"] for s in b["paths"][0]] == ["app==1.0", "cyc-a==1.0", "cyc-b==1.0"]


@pytest.mark.parametrize(
    ("variant", "names"),
    [
        ("cpu", ("torch", "numpy", "instructlab")),  # the legacy format (old_graph.json)
        ("cuda", ("torch", "numpy", "pydantic", "docling-parse")),  # e2e-ai-stack/graph.json
    ],
)
def test_real_fromager_graphs_both_formats(
    synth: tuple[Path, str], variant: str, names: tuple[str, ...]
) -> None:
    root, db = synth
    graph = oracle.snapshot(root)["artifacts"][("legacy", "1.0", "x86_64", variant)]
    expected = sorted(oracle.edges(graph["dependency_graph"]))
    with psycopg.connect(db) as conn:
        got = conn.execute(
            "SELECT parent_name, parent_version, child_name, child_version, req_type, req"
            " FROM graph_edges WHERE product = 'legacy' AND variant = %s",
            [variant],
        ).fetchall()
    assert sorted(got) == expected and len(expected) > 100
    for name in names:
        doc = why.why(db, name, product="legacy", release="1.0", variant=variant, paths=4)
        oracle.why_check(graph["dependency_graph"], name, doc["builds"][0], 4)
        assert doc["builds"][0]["paths"]


# --- migration of a database loaded before the domain tables -----------------------------


def test_migration_fills_a_database_loaded_before(synth: tuple[Path, str]) -> None:
    from etl.db import schema
    from etl.load import migrate_db

    _, db = synth
    query = "SELECT * FROM build_origins ORDER BY product, release, architecture, variant"
    with psycopg.connect(db, autocommit=True) as conn:
        loaded = conn.execute(query).fetchall()
        before = diff.diff(db, "synth", "1.0", "2.0")
        # the database as the previous version left it: migrations 1-3 are unchanged, so
        # dropping what migration 4 added gives exactly that schema, with the same data
        for view in ("drop_origins", "constraint_lines", "graph_edges"):
            conn.execute(sql.SQL("DROP VIEW {}").format(sql.Identifier(view)))
        conn.execute("DROP TABLE build_origins")
        conn.execute("DELETE FROM wheels_etl_schema WHERE version >= %s", [schema.DOMAIN_VERSION])
    with pytest.raises(QueryInputError, match="migrate"):
        search.search(db, "keep")
    assert migrate_db(db) == schema.SCHEMA_VERSION
    with psycopg.connect(db, autocommit=True) as conn:
        assert conn.execute(query).fetchall() == loaded and loaded
    assert diff.diff(db, "synth", "1.0", "2.0") == before


# --- the commands: exit codes, one-line errors, JSON ---------------------------------------


def test_commands_exit_codes_and_json(sample_db: str) -> None:
    import json

    env = cli_env(database_url=sample_db)

    def run(*args: str) -> Any:
        return run_cli(*args, env=env, in_process=True)

    found = run("search", "MarkupSafe", "--product", "webstack", "--version", ">=3", "--json")
    assert found.returncode == 0, str(found)
    doc = json.loads(found.stdout)
    assert doc["schema"] == "wheels-etl/search/1" and doc["name"] == "markupsafe"
    assert set(doc["matches"][0]) >= set(SEARCH_KEYS)
    assert run("search", "no-such-package").returncode == 1
    for bad in (
        ["search", "not a name"],
        ["search", "torch", "--version", "=>1"],
        ["search", "torch", "--product", "rhia"],
        ["diff", "rhai", "2.18", "3.0.0"],
        ["diff", "rhia", "2.18.0", "3.0.0"],
        ["why", "torch", "--product", "rhai", "--release", "3.0.1"],
        ["why", "torch", "--product", "rhai", "--release", "3.0.0", "--variant", "cuda"],
    ):
        done = run(*bad)
        assert done.returncode == 2, str(done)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "closest: rhai" in run("search", "torch", "--product", "rhia").stderr
    assert "closest: 2.18.0" in run("diff", "rhai", "2.18", "3.0.0").stderr
    assert run("diff", "rhai", "2.18.0", "3.0.0", "--json", "--markdown").returncode == 2
    d = run("diff", "rhai", "2.18.0", "3.0.0", "--json")
    assert d.returncode == 0 and json.loads(d.stdout)["schema"] == "wheels-etl/diff/1"
    md = run("diff", "rhai", "2.18.0", "3.0.0", "--markdown")
    assert md.returncode == 0 and md.stdout.startswith("## rhai 2.18.0 → 3.0.0")
    assert (
        "cuda12.4-ubi9 -> cuda12.8-ubi9: changed" in run("diff", "rhai", "2.18.0", "3.0.0").stdout
    )
    w = run(
        "why",
        "markupsafe",
        "--product",
        "webstack",
        "--release",
        "2026.11.3",
        "--json",
        "--paths",
        "1",
    )
    assert w.returncode == 0
    wdoc = json.loads(w.stdout)
    assert wdoc["schema"] == "wheels-etl/why/1"
    assert all(len(b["paths"]) == 1 and b["dependents"] for b in wdoc["builds"])
    assert run("why", "no-such", "--product", "webstack", "--release", "2026.11.3").returncode == 1
