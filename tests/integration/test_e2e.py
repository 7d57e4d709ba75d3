"""The whole path: a real HTTP source -> extract -> spool -> load -> Postgres, compared
field by field with an independent reading of the source."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from etl.config import SAMPLE_SOURCE, Settings
from etl.db import dropshold
from etl.extract import ExtractReport, extract
from etl.load import LoadReport, load_spool
from etl.spool import Spool
from tests.support.cli import cli_env, run_cli
from tests.support.gen import GenSpec, generate, mutate_release
from tests.support.httpserver import Fault, SourceServer
from tests.support.oracle import (
    assert_db_equals_source,
    db_snapshot,
)

Where = Callable[..., "str | Path"]


@pytest.fixture(params=["local", "s3"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Where:
    """Where a spool goes: a folder, or the same name under a fresh S3 bucket (every test
    here runs on both backends)."""
    if request.param == "local":
        return lambda name="spool": tmp_path / name
    bucket = request.getfixturevalue("s3_spool").rsplit("/", 1)[0]
    return lambda name="spool": f"{bucket}/{name}"


def settings(url: str, spool: str | Path, **kw: object) -> Settings:
    return Settings.from_env(
        {}, source_url=url, spool_dir=spool, workers=4, retry_max_seconds=5.0, **kw
    )


def run(
    url: str, spool_dir: str | Path, db_url: str, **kw: object
) -> tuple[ExtractReport, LoadReport]:
    spool = Spool(spool_dir)
    ext = extract(settings(url, spool_dir, **kw), spool)
    ld = load_spool(spool, db_url, retry_seconds=5.0)
    return ext, ld


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    generate(
        root,
        GenSpec(products=2, releases=5, artifacts=4, packages=40, drops=60, seed=7, page_size=2),
    )
    return root


def test_shipped_sample_lands_exactly(tmp_path: Path, db_url: str, where: Where) -> None:
    with SourceServer(SAMPLE_SOURCE) as server:
        ext, ld = run(server.url, where(), db_url)
    assert ext.ok and ld.ok, (ext, ld)
    assert_db_equals_source(SAMPLE_SOURCE, db_url)
    nodes = db_snapshot(db_url)["artifacts"]
    biggest = max(len(a["dependency_graph"]) for a in nodes.values())
    assert biggest >= 302  # the 301-node AI stack graph (+ the root node) went through whole


def test_generated_source_over_http_with_gzip(
    generated: Path, tmp_path: Path, db_url: str, where: Where
) -> None:
    with SourceServer(generated, gzip=True) as server:
        ext, ld = run(server.url, where(), db_url)
    assert ext.ok and ld.ok
    assert len(ext.spooled) == 10
    assert_db_equals_source(generated, db_url)


def test_loading_twice_changes_nothing(
    generated: Path, tmp_path: Path, db_url: str, where: Where
) -> None:
    spool_dir = where()
    run(str(generated), spool_dir, db_url)
    before = db_snapshot(db_url)
    spool = Spool(spool_dir)
    assert spool.requeue([f.name for f in spool.files("loaded")])  # replay everything
    report = load_spool(spool, db_url)
    assert report.ok and not report.applied and len(report.unchanged) == 10
    assert db_snapshot(db_url) == before


def test_either_spool_codec_lands_the_same_rows(
    generated: Path, tmp_path: Path, db_url: str
) -> None:
    """``--spool-compression zstd`` writes zstd files, lz4 (the default) lz4 ones; both load
    to exactly the source, and a spool holding both kinds loads too."""
    codecs = {}
    for codec in ("zstd", "lz4"):
        spool_dir = tmp_path / codec
        chosen = settings(str(generated), spool_dir, spool_compression=codec)
        ext = extract(chosen, Spool(spool_dir))
        assert ext.ok, ext
        used: set[str] = set()
        for f in Spool(spool_dir).files("ready"):
            md = pq.ParquetFile(spool_dir / "ready" / f.name).metadata
            rg = md.row_group(0)
            used |= {rg.column(i).compression for i in range(rg.num_columns)}
        codecs[codec] = used
    assert codecs == {"zstd": {"ZSTD"}, "lz4": {"LZ4"}}, codecs
    mixed = Spool(tmp_path / "lz4")
    names = sorted(f.name for f in mixed.files("ready"))
    for name in names[: len(names) // 2]:  # half the files from the zstd run
        shutil.copy(tmp_path / "zstd" / "ready" / name, tmp_path / "lz4" / "ready" / name)
    report = load_spool(mixed, db_url)
    assert report.ok and len(report.applied) == 10, report
    assert_db_equals_source(generated, db_url)


def test_drops_held_in_a_temporary_file_land_the_same(
    generated: Path, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release's drops over the in-memory hold go through a temporary file for the
    second COPY: with a hold of 1 kB every file takes that path, and the database still
    equals the source."""
    monkeypatch.setattr(dropshold, "HOLD_IN_MEMORY", 1024)
    spilled: list[int] = []
    real_exit = dropshold.DropsHold.__exit__

    def counting_exit(self: dropshold.DropsHold, *exc: object) -> None:
        spilled.append(int(self.spilled))
        real_exit(self, *exc)

    monkeypatch.setattr(dropshold.DropsHold, "__exit__", counting_exit)
    spool = Spool(tmp_path / "spool")
    assert extract(settings(str(generated), tmp_path / "spool"), spool).ok
    report = load_spool(spool, db_url)
    assert report.ok and len(report.applied) == 10, report
    assert spilled and all(spilled), spilled
    assert_db_equals_source(generated, db_url)


def releases_of(root: Path, product: str) -> list[str]:
    return sorted(p.name for p in (root / product).iterdir() if p.is_dir())


def test_changed_release_replaces_its_snapshot(
    generated: Path, tmp_path: Path, db_url: str, where: Where
) -> None:
    spool_dir = where()
    run(str(generated), spool_dir, db_url)
    one, two = sorted(p.name for p in generated.iterdir() if p.is_dir())
    mutate_release(generated, one, releases_of(generated, one)[0], drop_artifact=True)
    mutate_release(generated, one, releases_of(generated, one)[1], withdraw_wheel=True)
    mutate_release(generated, two, releases_of(generated, two)[0], rebuild_graph=True)
    ext, ld = run(str(generated), spool_dir, db_url)
    assert ext.ok and ld.ok
    assert len(ext.spooled) == 3 and len(ext.unchanged) == 7
    assert len(ld.applied) == 3
    assert_db_equals_source(generated, db_url)


def test_stale_file_does_not_overwrite_newer_data(
    generated: Path, tmp_path: Path, db_url: str, where: Where
) -> None:
    old_tree = tmp_path / "old"
    shutil.copytree(generated, old_tree)
    product = sorted(p.name for p in generated.iterdir() if p.is_dir())[0]
    version = sorted(p.name for p in (generated / product).iterdir() if p.is_dir())[0]
    mutate_release(generated, product, version, withdraw_wheel=True, rebuild_graph=True)
    # the new snapshot is extracted and loaded first...
    run(str(generated), where("spool-new"), db_url)
    # ...then a file extracted earlier from the old tree arrives late
    old_spool = Spool(where("spool-old"))
    extract(settings(str(old_tree), where("spool-old"), products=(product,)), old_spool)
    report = load_spool(old_spool, db_url)
    assert report.ok
    assert len(report.superseded) == 1 and len(report.unchanged) == 4
    assert_db_equals_source(generated, db_url)


def test_failing_release_does_not_stop_the_others(
    generated: Path, tmp_path: Path, db_url: str, where: Where
) -> None:
    product = sorted(p.name for p in generated.iterdir() if p.is_dir())[0]
    version = sorted(p.name for p in (generated / product).iterdir() if p.is_dir())[2]
    release_doc = json.loads((generated / product / version / "release.json").read_text())
    graph = release_doc["artifacts"][1]["files"]["dependency_graph"]
    with SourceServer(generated) as server:
        server.always(f"/{product}/{version}/{graph}", Fault.status(404))
        ext, ld = run(server.url, where(), db_url)
    assert not ext.ok
    ((failed_release, reason),) = ext.failed
    assert failed_release == f"{product}/{version}"
    assert "404" in reason and graph in reason
    assert len(ext.spooled) == 9 and ld.ok
    spool = Spool(where())
    assert not any(
        f.parsed.release == version and f.parsed.product == product for f in spool.all_files()
    )
    assert not spool.store.list_folder("tmp")  # no upload left behind
    snap = db_snapshot(db_url)
    assert (product, version) not in snap["releases"] and len(snap["releases"]) == 9


def test_cli_end_to_end_exit_codes(
    generated: Path, tmp_path: Path, db_url: str, where: Where
) -> None:
    env = cli_env(source=generated, spool=where(), database_url=db_url, PATH="/usr/bin:/bin")
    for command in (["extract"], ["load"], ["status", "--json"]):
        out = run_cli(*command, env=env)
        assert out.returncode == 0, (command, out.stdout, out.stderr)
    info = json.loads(out.stdout)
    assert info["states"]["loaded"]["files"] == 10 and info["states"]["ready"]["files"] == 0
    assert info["database"]["files"] == 10 and not info["warnings"]
    assert_db_equals_source(generated, db_url)
