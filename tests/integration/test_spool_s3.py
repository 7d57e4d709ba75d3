"""The spool on real S3 (SeaweedFS): publish, claims and leases, half-done moves, double
claims, reconcile, and every command of the CLI on an ``s3://`` spool."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from etl.db.connect import connect
from etl.load import load_file, load_spool, migrate_db
from etl.spool import FailedAttempt, Spool
from etl.spooling import format as fmt
from tests.support.cli import cli_env, run_cli
from tests.support.gen import GenSpec, generate
from tests.support.httpserver import SourceServer
from tests.support.oracle import counts, db_snapshot, diff, expected_snapshot
from tests.support.s3spool import T0, artifact_row, s3_store, write_release


def test_publish_streams_a_complete_object_and_reads_back(s3_spool: str) -> None:
    spool = Spool(s3_spool)
    name = write_release(spool, "1.0", rows=3)
    [f] = spool.files("ready")
    assert f.name == name and f.size > 0
    assert not s3_store(spool).list_folder("tmp")  # the temp upload is gone
    with spool.open(f) as src:
        meta = fmt.read_meta(src, f.name)
        assert pq.ParquetFile(src).num_row_groups == 3  # one row group per artifact
    assert (meta.product, meta.release, meta.artifacts) == ("prod", "1.0", 3)


def test_failed_write_leaves_nothing_visible(s3_spool: str) -> None:
    spool = Spool(s3_spool)
    with pytest.raises(RuntimeError), spool.writer("prod", "1.0", T0, "u") as w:
        w.add(artifact_row("x"))
        raise RuntimeError("fetch failed mid-release")
    assert list(spool.all_files()) == [] and not s3_store(spool).list_folder("tmp")


def test_claims_leases_orphans_and_failure_history(s3_spool: str) -> None:
    spool, other = Spool(s3_spool), Spool(s3_spool)
    write_release(spool, "1.0")
    f = spool.files("ready")[0]
    claim = spool.claim(f)
    assert claim is not None
    assert other.claim(f) is None  # gone from ready
    assert other.adopt_orphans() == []  # its lease is live
    claim.close()  # the loader "died" after dropping its lease
    [orphan] = other.adopt_orphans()
    orphan.fail(FailedAttempt("DataError", "bad 1"))
    assert spool.requeue(failed=True)
    again = spool.claim(spool.files("ready")[0])
    assert again is not None
    again.fail(FailedAttempt("DataError", "bad 2"))
    record = spool.failure(spool.files("failed")[0])
    assert record is not None  # the adoption noted the death of the orphan's loader first
    assert record.attempts[0].error_class == "LoaderDied"
    assert [a.message for a in record.attempts[1:]] == ["bad 1", "bad 2"]


def test_half_done_move_resolves_to_the_later_state(s3_spool: str) -> None:
    """Cut after the copy, before the delete: listing shows the later state and writes
    nothing; reconcile finishes the move (dst wins)."""
    spool = Spool(s3_spool)
    name = write_release(spool, "1.0")
    store = s3_store(spool)
    store.write_json("moves", name, {"src": "ready", "dst": "loading", "at": time.time()})
    store.fs.copy_file(store.path("ready", name), store.path("loading", name))
    assert [f.name for f in spool.files("ready")] == []  # the stale copy is hidden...
    assert [f.name for f in spool.files("loading")] == [name]  # ...the later state wins
    assert store.info("ready", name) is not None  # listing never writes
    assert store.reconcile(lease_seconds=3600) == [f"{name}: move to loading/ finished"]
    assert store.info("ready", name) is None and store.info("moves", name) is None


def test_move_cut_before_the_copy_leaves_the_file_where_it_was(s3_spool: str) -> None:
    spool = Spool(s3_spool)
    name = write_release(spool, "1.0")
    store = s3_store(spool)
    store.write_json("moves", name, {"src": "ready", "dst": "loading", "at": time.time()})
    assert [f.name for f in spool.files("ready")] == [name]
    report = spool.reconcile(lease_seconds=0)
    assert any("intent" in r for r in report.repaired), report
    assert store.info("moves", name) is None and [f.name for f in spool.files("ready")] == [name]


def test_duplicate_without_intent_keeps_the_newest_copy(s3_spool: str) -> None:
    spool = Spool(s3_spool)
    name = write_release(spool, "1.0")
    store = s3_store(spool)
    time.sleep(1.1)  # S3 modification times have a one-second resolution
    store.fs.copy_file(store.path("ready", name), store.path("loaded", name))
    spool.reconcile(lease_seconds=0)
    assert [f.state for f in spool.all_files()] == ["loaded"]


def test_reconcile_returns_stuck_claims_to_ready(s3_spool: str) -> None:
    spool = Spool(s3_spool)
    write_release(spool, "1.0")
    claim = spool.claim(spool.files("ready")[0])
    assert claim is not None  # the worker dies holding it: the lease is never dropped
    assert Spool(s3_spool).reconcile(lease_seconds=3600).requeued == []  # lease still live
    report = Spool(s3_spool).reconcile(lease_seconds=0)
    assert report.requeued == [claim.name]
    assert [f.state for f in spool.all_files()] == ["ready"]


def test_double_claim_applies_once(s3_spool: str, db_url: str) -> None:
    """Two workers end up holding the same file (a lease lapsed while the first one was
    still at work): the ledger and the advisory lock make the second apply a no-op."""
    first, second = Spool(s3_spool), Spool(s3_spool, lease_seconds=0)
    name = write_release(first, "1.0")
    a = first.claim(first.files("ready")[0])
    [b] = second.adopt_orphans()  # a's lease counts as lapsed for b
    assert a is not None and a.name == b.name == name
    migrate_db(db_url)
    with connect(db_url) as conn:
        assert load_file(conn, a).outcome == "applied"
        assert load_file(conn, b).outcome == "recovered"
        count = conn.execute("SELECT count(*) FROM spool_files").fetchone()
    assert count == (1,)
    assert [f.state for f in first.all_files()] == ["loaded"]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    generate(root, GenSpec(products=2, releases=3, artifacts=3, packages=20, drops=20, seed=3))
    return root


def test_every_command_on_an_s3_spool(source: Path, s3_spool: str, db_url: str) -> None:
    with SourceServer(source) as server:
        env = cli_env(spool=s3_spool, source=server.url, database_url=db_url)
        ext = run_cli("extract", env=env)
        assert ext.returncode == 0, ext
        assert s3_spool in ext.stdout and "SECRET" not in ext.stdout + ext.stderr
        server.clear()
        again = run_cli("extract", env=env)  # the incremental memory lives in the bucket
        assert again.returncode == 0 and "0 spooled, 6 unchanged" in again.stdout, again
        assert not [r for r in server.requests if r.path.endswith("release.json")]
    ld = run_cli("load", env=env)
    assert ld.returncode == 0 and "6 applied" in ld.stdout, ld
    assert not diff(expected_snapshot(source), db_snapshot(db_url))
    status = run_cli("status", "--json", env=env)
    assert status.returncode == 0, status
    info = json.loads(status.stdout)
    assert info["schema_version"] == 1 and info["spool"] == s3_spool
    assert info["states"]["loaded"]["files"] == 6 and not info["warnings"]
    assert {p["product"] for p in info["products"]} == {
        product for product, _ in expected_snapshot(source)["releases"]
    }
    text = run_cli("status", env=env)
    assert text.returncode == 0 and "loaded" in text.stdout
    summary = run_cli("inspect", env=env)
    assert summary.returncode == 0 and "loaded" in summary.stdout, summary
    sql = run_cli("inspect", "--json", "--sql", "SELECT count(*) AS n FROM drops", env=env)
    assert sql.returncode == 0, sql
    assert json.loads(sql.stdout) == [{"n": counts(db_snapshot(db_url))[2]}]
    replay = run_cli("replay", "--loaded", env=env)
    assert replay.returncode == 0 and "6 unchanged" in replay.stdout, replay
    prune = run_cli("prune", "--older-than", "0s", env=env)
    assert prune.returncode == 0 and "deleted 6 loaded file(s)" in prune.stdout, prune
    assert list(Spool(s3_spool).all_files()) == []


def test_load_spool_from_s3_equals_source(source: Path, s3_spool: str, db_url: str) -> None:
    with SourceServer(source) as server:
        env = cli_env(spool=s3_spool, source=server.url)
        assert run_cli("extract", env=env).returncode == 0
    report = load_spool(Spool(s3_spool), db_url, workers=2, retry_seconds=5)
    assert report.ok and len(report.applied) == 6, report
    expected, actual = expected_snapshot(source), db_snapshot(db_url)
    assert not diff(expected, actual) and counts(actual) == counts(expected)


def test_a_renewed_lease_keeps_the_claim(s3_spool: str) -> None:
    spool = Spool(s3_spool)
    write_release(spool, "1.0")
    claim = spool.claim(spool.files("ready")[0])
    assert claim is not None
    time.sleep(3.5)  # the lease would have lapsed (S3 times have a one-second resolution)
    claim.renew()
    assert Spool(s3_spool).adopt_orphans(lease_seconds=3) == []  # renewed just now
    claim.complete()
    assert not s3_store(spool).list_folder("leases")
