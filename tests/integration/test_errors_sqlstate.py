"""What a real Postgres error, a failed connection and an object-store outage mean.

* The SQLSTATE's class alone decides (08, 40, 53, 57P retryable; the rest fatal), with the
  server producing every state: ``RAISE ... USING ERRCODE`` for the whole table, and the
  real thing for the cases that matter (an index row too large and a too deeply nested
  document: class 54, which psycopg files under ``OperationalError``; a terminated
  backend: 57P01).
* A spool file whose content exceeds a server limit goes to ``failed/`` (never back to
  ``ready/``), and the CLI says so with exit 1.
* Connection settings that cannot work are a ConfigError (exit 2); an unreachable server
  is retryable (exit 3).
* The Celery tasks retry when the spool's object store does not answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from etl import cli, errors, load
from etl.db.connect import classify, connect
from etl.errors import ConfigError, FatalLoadError, TransientLoadError
from etl.spool import Spool
from etl.spooling import format as fmt
from tests.support.env import child_env
from tests.support.s3server import S3Server

T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)

RETRYABLE = ["08006", "08001", "40001", "40P01", "53100", "53200", "53300", "57P01", "57P03"]
FATAL = ["22P02", "22001", "23505", "23503", "54000", "54001", "57014", "58030", "42P01", "XX000"]


def _raised(url: str, sql: str, params: tuple[Any, ...] = ()) -> psycopg.Error:
    conn = psycopg.connect(url, autocommit=True)
    try:
        conn.execute(sql, params)
    except psycopg.Error as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError(f"no error from {sql}")


@pytest.mark.parametrize("sqlstate", RETRYABLE + FATAL)
def test_the_sqlstate_class_alone_decides(db_url: str, sqlstate: str) -> None:
    raise_it = f"DO $$ BEGIN RAISE EXCEPTION 'boom' USING ERRCODE = '{sqlstate}'; END $$"
    exc = _raised(db_url, raise_it)
    assert exc.sqlstate == sqlstate
    got = classify(exc, None, release="rhai/3.0", path="f.parquet")
    assert got.retryable is (sqlstate in RETRYABLE), (sqlstate, type(exc).__name__)
    assert type(got) is (TransientLoadError if sqlstate in RETRYABLE else FatalLoadError)
    assert got.sqlstate == sqlstate and "rhai/3.0" in str(got) and "f.parquet" in str(got)


def test_real_limits_are_fatal_though_psycopg_calls_them_operational(db_url: str) -> None:
    nested = _raised(db_url, "SELECT %s::jsonb", ("[" * 100_000 + "]" * 100_000,))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE wide (k text PRIMARY KEY)")
    too_big = _raised(db_url, "INSERT INTO wide VALUES (%s)", (os.urandom(3000).hex(),))
    for exc, state in ((nested, "54001"), (too_big, "54000")):
        assert isinstance(exc, psycopg.OperationalError) and exc.sqlstate == state
        assert not classify(exc, None, release="r", path="p").retryable


def test_a_terminated_backend_is_retryable(db_url: str) -> None:
    exc = _raised(db_url, "SELECT pg_terminate_backend(pg_backend_pid())")
    assert exc.sqlstate == "57P01"
    assert classify(exc, None, release="r", path="p").retryable


def _write(spool: Spool, graph_text: str, release: str) -> str:
    drop = fmt.Drop(
        filename=f"pkg-{release}-py3-none-any.whl", name="pkg", version=release,
        build_tag=None, python_tag="py3", abi_tag="none", platform_tag="any",
        sha256="ab" * 32, size=10, uploaded_at=T0,
    )  # fmt: skip
    row = fmt.ArtifactRow(
        architecture="x86_64", variant="cpu", build_id="b1", built_at=T0,
        dependency_graph=graph_text, constraints_file=json.dumps({"format": "text", "text": ""}),
        build_sequence_summary="[]", drops=(drop,),
    )  # fmt: skip
    with spool.writer("rhai", release, T0, f"file:///src/rhai/{release}") as w:
        w.add(row)
        return w.commit().name


def test_a_file_over_a_server_limit_goes_to_failed_not_back_to_ready(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spool = Spool(tmp_path / "spool")
    good = _write(spool, json.dumps({"nodes": {}}), "1.0")
    deep = _write(spool, "[" * 100_000 + "]" * 100_000, "2.0")  # jsonb: stack depth, 54001
    code = cli.main(["load", "-q", "--spool", str(spool.location), "--database-url", db_url])
    err = capsys.readouterr().err
    assert code == errors.EXIT_FAILED, err
    assert {f.name for f in spool.files("loaded")} == {good}
    assert {f.name for f in spool.files("failed")} == {deep}
    assert not list(spool.files("ready"))
    assert f"failed {deep}" in err and "rhai/2.0" in err and "54001" in err
    record = spool.failure(deep)
    assert record is not None and record.to_json()["last"]["sqlstate"] == "54001"
    again = load.load_spool(spool, db_url, retry_seconds=0)  # nothing comes back
    assert again.ok and not again.applied and not again.failed


@pytest.mark.parametrize(
    "change",
    [
        {"dbname": "no_such_database"},
        {"user": "no_such_role"},
        {"port": "not-a-port"},
        {"sslmode": "sometimes"},
        {"host": "no-such-host.invalid"},
    ],
    ids=["database", "role", "port", "sslmode", "host"],
)
def test_settings_that_cannot_work_are_config_errors(db_url: str, change: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="cannot connect to the database"):
        connect(make_conninfo(db_url, **change))


@pytest.mark.parametrize(
    "conninfo",
    ["host=127.0.0.1 port=1 dbname=x user=postgres", "host=/nonexistent-socket-dir dbname=x"],
    ids=["refused", "no-socket"],
)
def test_an_unreachable_server_is_retryable(conninfo: str, tmp_path: Path) -> None:
    with pytest.raises(TransientLoadError) as info:
        connect(conninfo)
    assert info.value.retryable
    code = cli.main(["migrate", "-q", "--database-url", conninfo])
    assert code == errors.EXIT_UNAVAILABLE


# --- the tasks, when the object store is down ------------------------------------------

# Task.apply runs a task eagerly in this process: a retry runs again at once (no broker,
# no countdown); a task logs its first error and, when it gives up, how many retries.
_TASKS = """
import json
from etl.workers.tasks import extract_release, list_releases, load_file
ref = {"product": "rhai", "version": "3.0", "updated_at": None, "url": "file:///x"}
out = []
for task, args in ((list_releases, ("run", [], False)), (extract_release, ("run", ref)),
                   (load_file, ("run", "rhai~3.0~20261101T120000Z~7cff33673b21675a.parquet"))):
    r = task.apply(args=args)
    out.append([task.name.rsplit(".", 1)[1], r.state, type(r.result).__name__])
print(json.dumps(out))
"""


@pytest.fixture
def dead_store(tmp_path: Path) -> Iterator[tuple[S3Server, str]]:
    server = S3Server(tmp_path / "seaweedfs")
    server.start()
    try:
        url = server.new_spool_url()
        server.kill()
        yield server, url
    finally:
        server.stop()


def test_every_task_retries_while_the_object_store_is_down(
    dead_store: tuple[S3Server, str], db_url: str
) -> None:
    server, url = dead_store
    env = child_env(
        **server.env(), ETL_SPOOL_DIR=url, DATABASE_URL=db_url, ETL_TASK_MAX_RETRIES="4",
        ETL_BROKER_URL="redis://127.0.0.1:1/0",  # eager runs (Task.apply) send nothing
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", _TASKS], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    states = json.loads(done.stdout.strip().splitlines()[-1])
    assert [s[0] for s in states] == ["list_releases", "extract_release", "load_file"]
    lines = done.stderr.splitlines()
    for name, state, _ in states:  # retried ETL_TASK_MAX_RETRIES times (not celery's 3)
        mine = [line for line in lines if line.startswith(f"{name} ")]
        assert len(mine) == 2 and "cannot reach bucket" in mine[0], done.stderr
        assert mine[1].endswith("gave up after 4 retries (the first error is above)"), mine
        assert state == "SUCCESS", (name, done.stderr)  # reported, then ended: no traceback
    assert "Traceback" not in done.stderr and "failed" not in done.stderr
