"""The worker settings and Celery configuration (no broker needed to read them)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from etl.errors import ConfigError
from etl.source import ReleaseRef
from etl.spool import Spool
from etl.workers import notes
from etl.workers.app import celery_config
from etl.workers.settings import WorkerSettings
from etl.workers.tasks import ref_from_json, ref_to_json


def test_broker_url_is_required_with_a_clear_message() -> None:
    with pytest.raises(ConfigError, match="ETL_BROKER_URL is not set"):
        WorkerSettings.from_env({})


@pytest.mark.parametrize(
    ("name", "value"),
    [("ETL_BROKER_VISIBILITY_TIMEOUT", "soon"), ("ETL_BROKER_VISIBILITY_TIMEOUT", "0"),
     ("ETL_TASK_MAX_RETRIES", "-1"), ("ETL_RECONCILE_INTERVAL", "x")],
)  # fmt: skip
def test_bad_numbers_are_config_errors(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        WorkerSettings.from_env({"ETL_BROKER_URL": "redis://h/0", name: value})


def test_celery_configuration_keeps_the_delivery_promises() -> None:
    ws = WorkerSettings.from_env(
        {"ETL_BROKER_URL": "redis://h:6379/3", "ETL_BROKER_VISIBILITY_TIMEOUT": "42",
         "ETL_QUEUE": "q1", "ETL_RECONCILE_INTERVAL": "90"}
    )  # fmt: skip
    conf = celery_config(ws)
    assert conf["task_acks_late"] is True and conf["task_reject_on_worker_lost"] is True
    assert conf["worker_prefetch_multiplier"] == 1 and conf["task_ignore_result"] is True
    assert conf["broker_transport_options"] == {"visibility_timeout": 42.0}
    assert conf["task_default_queue"] == "q1"
    (entry,) = conf["beat_schedule"].values()
    assert entry["task"] == "etl.workers.tasks.reconcile" and entry["schedule"] == 90.0
    assert "h:6379" not in repr(ws)  # the broker URL (may hold a password) is not shown


def test_release_refs_survive_json() -> None:
    ref = ReleaseRef("rhai", "3.0.1", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "http://s/r")
    assert ref_from_json(ref_to_json(ref)) == ref
    bare = ReleaseRef("rhai", "3.0.1", None, "http://s/r")
    assert ref_from_json(ref_to_json(bare)) == bare


def test_run_notes_round_trip(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    assert notes.get_listing(spool, "run/1") is None and notes.get_releases(spool, "r") == {}
    listing = notes.Listing([{"product": "a"}], ["a/1"], [("a/2", "bad")], fatal=None)
    notes.put_listing(spool, "run/1", listing)
    assert notes.get_listing(spool, "run/1") == listing
    note = notes.ReleaseNote("a/1.0", "failed", "", "404")
    notes.put_release(spool, "run/1", note)
    notes.put_release(spool, "run/1", notes.ReleaseNote("a/1.1", "spooled", "f.parquet", ""))
    got = notes.get_releases(spool, "run/1")
    assert got["a/1.0"] == note and got["a/1.1"].file == "f.parquet"
