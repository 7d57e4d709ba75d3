"""Run notes under ``state/`` do not grow for ever: ``prune`` and ``reconcile`` delete
those older than ``--notes-max-age`` / ``ETL_RUN_NOTES_MAX_AGE`` (default 7 days), on a
local and on an ``s3://`` spool, and leave the incremental memory alone (issue 24, item 5)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from etl.spool import Spool
from etl.workers import notes
from tests.support.cli import cli_env, run_cli
from tests.support.redisserver import RedisServer
from tests.support.s3server import S3Server


@pytest.fixture(params=["local", "s3"])
def spool_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "spool")
    server: S3Server = request.getfixturevalue("s3_server")
    request.getfixturevalue("s3_spool")  # this process's AWS_* point at the server
    return f"{server.new_spool_url()}/spool"


def _runs(spool: Spool, count: int) -> None:
    for i in range(count):
        run = f"run-{i}"
        notes.put_listing(spool, run, notes.Listing([{"product": "p"}], ["p/1"], []))
        note = notes.ReleaseNote("p/2", "spooled", "p~2~x.parquet", "")
        notes.put_release(spool, run, note)


def _state(spool: Spool) -> list[str]:
    return spool.records("")


def test_prune_deletes_old_run_notes_only(spool_url: str, db_url: str) -> None:
    spool = Spool(spool_url)
    spool.write_record("release~p~1.json", {"updated_at": "x"})  # incremental memory
    _runs(spool, 5)
    assert len(_state(spool)) == 11
    env = cli_env(spool=spool_url, database_url=db_url)
    young = run_cli("prune", "--older-than", "1d", env=env)  # default age: 7 days
    assert young.returncode == 0 and "0 run note(s) older than 7 day(s)" in young.stdout, young
    assert len(_state(spool)) == 11
    time.sleep(2.1)  # object-store times have a one-second resolution
    old = run_cli("prune", "--older-than", "1d", "--notes-max-age", "1s", env=env)
    assert old.returncode == 0 and "10 run note(s)" in old.stdout, old
    assert _state(spool) == ["release~p~1.json"]


def test_reconcile_deletes_old_run_notes(
    spool_url: str, db_url: str, redis_server: RedisServer
) -> None:
    spool = Spool(spool_url)
    _runs(spool, 3)
    env = cli_env(spool=spool_url, database_url=db_url, ETL_BROKER_URL=redis_server.url())
    kept = run_cli("reconcile", env=env)
    assert kept.returncode == 0 and "0 old run note(s) deleted" in kept.stdout, kept
    time.sleep(2.1)
    env["ETL_RUN_NOTES_MAX_AGE"] = "1s"
    done = run_cli("reconcile", env=env)
    assert done.returncode == 0 and "6 old run note(s) deleted" in done.stdout, done
    assert _state(spool) == []
