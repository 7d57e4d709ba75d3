"""The object store dies in the middle of an extract and of a load, and comes back:
nothing half-written becomes visible, claimed files go back to ready, nothing is lost,
and the next run finishes with the database equal to the source.

Each test runs its own SeaweedFS (it is SIGKILLed and started again on the same data).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from etl.db import releases
from etl.spool import Spool
from tests.support.cli import cli_env, run_cli, start_cli, wait_cli
from tests.support.gen import GenSpec, generate
from tests.support.httpserver import Fault, SourceServer
from tests.support.oracle import counts, db_snapshot, diff, expected_snapshot, iter_expected
from tests.support.s3server import S3Server

SPEC = GenSpec(products=2, releases=3, artifacts=3, packages=30, drops=40, seed=21)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    server = S3Server(tmp_path / "seaweedfs")
    server.start()
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    generate(tmp_path / "source", SPEC)
    return tmp_path / "source"


def _until(what: str, check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _assert_complete(url: str, source: Path, state: str) -> None:
    spool = Spool(url)
    expected = {f"{r.product}/{r.version}" for r in iter_expected(source)}
    files = list(spool.all_files())
    assert {f.parsed.release_key for f in files} == expected
    assert {f.state for f in files} == {state}, [(f.state, f.name) for f in files]
    for f in files:  # every visible object is a complete spool file
        assert spool.read_meta(f).artifacts == SPEC.artifacts


def test_store_killed_mid_extract_then_restarted(
    store: S3Server, source: Path, tmp_path: Path
) -> None:
    url = f"s3://{store.new_bucket()}/spool"
    rel = next(iter(iter_expected(source)))
    doc = json.loads((source / rel.url).read_bytes())
    first_file = doc["artifacts"][-1]["files"]["dependency_graph"]
    held = "/" + str(Path(rel.url).parent / first_file)
    with SourceServer(source) as server:
        # one artifact answers only after a while (then closes: the client retries it)
        server.always(held, Fault.stall(4.0, after=None))
        env = cli_env(spool=url, source=server.url)
        proc = start_cli("extract", "--workers", "2", "--retries", "8", env=env)
        _until("the held request", lambda: server.count(held) >= 1)
        store.kill()  # the release being written (and the others) now cannot be stored
        server.always(held, Fault.serve())
        killed = wait_cli(proc, timeout=300)
        assert killed.returncode != 0, killed
        store.start()
        visible = list(Spool(url).all_files())
        for f in visible:  # whatever became visible is whole
            assert Spool(url).read_meta(f).artifacts == SPEC.artifacts
        assert len(visible) < len(list(iter_expected(source))), "the outage cost nothing?"
        again = run_cli("extract", env=env)
        assert again.returncode == 0, again
    _assert_complete(url, source, "ready")


def test_store_killed_mid_load_then_restarted(store: S3Server, source: Path, db_url: str) -> None:
    url = f"s3://{store.new_bucket()}/spool"
    env = cli_env(spool=url, source=str(source), database_url=db_url)
    assert run_cli("extract", env=env).returncode == 0
    assert run_cli("migrate", env=env).returncode == 0
    first = Spool(url).files("ready")[0].parsed.release_key
    with psycopg.connect(db_url, autocommit=True) as holder:
        # hold the release's lock: the loader claims its file, then waits inside the txn
        holder.execute(
            "SELECT pg_advisory_lock(%s, hashtext(%s))", [releases.RELEASE_LOCK_KEY, first]
        )
        proc = start_cli("load", env=env)
        _until(
            "the loader to wait for the release lock",
            lambda: (
                holder.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                ).fetchone()
                == (1,)
            ),
        )
        store.kill()
        holder.execute(
            "SELECT pg_advisory_unlock(%s, hashtext(%s))", [releases.RELEASE_LOCK_KEY, first]
        )
        stopped = wait_cli(proc, timeout=300)
    assert stopped.returncode != 0, stopped
    assert "unavailable" in stopped.stderr.lower() or "object store" in stopped.stderr, stopped
    store.start()
    spool = Spool(url)
    # claimed, not lost: the file being loaded, and the next one if the read-ahead had
    # claimed it already
    claimed = [f.state for f in spool.all_files()].count("loading")
    assert 1 <= claimed <= 2, spool.all_files()
    report = spool.reconcile(lease_seconds=0)  # the dead claim's lease has lapsed
    assert len(report.requeued) == claimed, report
    assert not spool.files("loading") and not spool.files("failed")
    again = run_cli("load", env=env)
    assert again.returncode == 0, again
    _assert_complete(url, source, "loaded")
    expected, actual = expected_snapshot(source), db_snapshot(db_url)
    assert not diff(expected, actual) and counts(actual) == counts(expected)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT outcome FROM spool_files").fetchall()
        applied = conn.execute(
            "SELECT file_name, count(*) FILTER (WHERE outcome = 'applied') FROM load_attempts"
            " GROUP BY file_name"
        ).fetchall()
    assert rows and all(r == ("applied",) for r in rows), rows
    # each file applied exactly once; a file whose data was read ahead and committed before
    # the store went away is found unchanged when reconcile has put it back in ready/
    assert len(applied) == len(rows) and all(n == 1 for _, n in applied), applied


@pytest.mark.parametrize(
    "points",
    [
        ("extract-mid-release:2", "load-before-copy:2"),
        ("extract-before-rename:3", "load-mid-copy:2"),
        ("extract-before-rename:1", "load-after-commit:3"),
    ],
)
def test_processes_killed_at_crash_points_on_an_s3_spool(
    s3_spool: str, source: Path, db_url: str, points: tuple[str, str]
) -> None:
    """SIGKILL at the named points, then the same command again: on S3 the dead process's
    temp objects and leases are recognised as dead (same host, pid gone) without waiting
    for the lease to lapse, and the database ends equal to the source."""
    env = cli_env(spool=s3_spool, source=str(source), database_url=db_url)
    killed = run_cli("extract", "--workers", "2", env={**env, "ETL_CRASH_AT": points[0]})
    assert killed.returncode == -9, killed
    again = run_cli("extract", env=env)
    assert again.returncode == 0, again
    _assert_complete(s3_spool, source, "ready")
    killed = run_cli("load", env={**env, "ETL_CRASH_AT": points[1]})
    assert killed.returncode == -9, killed
    again = run_cli("load", env=env)
    assert again.returncode == 0, again
    _assert_complete(s3_spool, source, "loaded")
    expected, actual = expected_snapshot(source), db_snapshot(db_url)
    assert not diff(expected, actual) and counts(actual) == counts(expected)
    spool = Spool(s3_spool)
    assert not spool.store.list_folder("tmp")  # the dead writer's temp object is gone
    assert not spool.store.list_folder("leases") and not spool.store.list_folder("moves")
