"""Failures reach the person who started the run: ``enqueue --wait`` reports the first
error of each task that gave up, in one line, and exits with its code (3 unavailable,
2 bad settings, 1 otherwise), even when the error keeps the worker from writing anything
to the spool (the report travels through the broker); the worker logs it once, not once
per retry.  Real workers on a Redis of the tests' own and on RabbitMQ (own vhost)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.cli import CliResult, cli_env, run_cli
from tests.support.redisserver import RedisServer
from tests.support.s3server import S3Server
from tests.support.workers import Broker, one_worker, rabbitmq_broker, redis_broker


def enqueue_wait(env: dict[str, str]) -> CliResult:
    return run_cli("enqueue", "--wait", "--timeout", "120", env=env, timeout=180)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_source_down_is_one_line_exit_3_and_logged_once(
    tmp_path: Path, db_url: str, redis_server: RedisServer
) -> None:
    with redis_broker(redis_server) as broker:
        env = cli_env(spool=tmp_path / "spool", database_url=db_url, **broker.env())
        env["ETL_SOURCE_URL"] = f"http://127.0.0.1:{closed_port()}/"
        env["ETL_TASK_MAX_RETRIES"] = "2"
        log = tmp_path / "worker.log"
        with one_worker(env, log):
            done = enqueue_wait(env)
    assert done.returncode == 3, (done, log.read_text())
    problems = done.stderr.splitlines()
    assert len(problems) == 1 and problems[0].startswith("enqueue: listing failed: "), done
    assert "connection failed" in problems[0], done
    ours = [line for line in log.read_text().splitlines() if "etl.workers.reports" in line]
    assert len([x for x in ours if "connection failed" in x]) == 1, ours  # once, 3 attempts
    assert any("gave up after 2 retries" in x for x in ours), ours


@pytest.mark.parametrize("kind", ["redis", "rabbitmq"])
def test_an_error_that_keeps_the_worker_off_the_spool_still_reaches_enqueue(
    kind: str, tmp_path: Path, db_url: str, redis_server: RedisServer
) -> None:
    """The worker's spool cannot be opened, so it can write no run note: the report comes
    through the broker (a Celery event), and --wait ends at once instead of timing out."""
    (tmp_path / "a-file").write_text("")
    broken = tmp_path / "a-file" / "spool"  # below a regular file: cannot be made
    with broker_of(kind, redis_server) as broker:
        env = cli_env(spool=tmp_path / "spool", database_url=db_url, **broker.env())
        log = tmp_path / "worker.log"
        with one_worker({**env, "ETL_SPOOL_DIR": str(broken)}, log):
            done = enqueue_wait(env)
    # a spool path below a regular file is a bad setting of the worker: exit 2
    assert done.returncode == 2, (done, log.read_text())
    (line,) = done.stderr.splitlines()
    assert line.startswith("enqueue: listing failed: ") and str(broken) in line, done
    assert "check --spool" in line, done
    assert "still pending" not in done.stderr
    ours = [x for x in log.read_text().splitlines() if "etl.workers.reports" in x]
    assert len(ours) == 1 and "Traceback" not in log.read_text(), log.read_text()


@contextmanager
def broker_of(kind: str, redis_server: RedisServer) -> Iterator[Broker]:
    if kind == "redis":
        with redis_broker(redis_server) as broker:
            yield broker
    else:
        with rabbitmq_broker() as broker:
            yield broker


def test_wrong_object_store_keys_are_one_line_and_exit_2(
    tmp_path: Path, db_url: str, redis_server: RedisServer, s3_server: S3Server
) -> None:
    """Keys refused to the worker (enqueue's are right): the report comes through the
    broker; keys refused to enqueue itself: it says so before sending anything."""
    spool = f"{s3_server.new_spool_url()}/spool"
    with redis_broker(redis_server) as broker:
        env = cli_env(spool=spool, database_url=db_url, **broker.env(), **s3_server.env())
        assert run_cli("spool", "init", env=env).returncode == 0
        log = tmp_path / "worker.log"
        with one_worker({**env, "AWS_SECRET_ACCESS_KEY": "wrong"}, log):
            done = enqueue_wait(env)
        assert done.returncode == 2, (done, log.read_text())
        (line,) = done.stderr.splitlines()
        assert line.startswith("enqueue: listing failed: the object store refused access"), line
        assert "Traceback" not in log.read_text()

        wrong = run_cli("enqueue", "--wait", env={**env, "AWS_SECRET_ACCESS_KEY": "wrong"})
        assert wrong.returncode == 2 and wrong.stdout == "", wrong
        (line,) = wrong.stderr.splitlines()
        assert line.startswith("wheels-etl enqueue: the object store refused access"), line
        assert broker.queued() == 0  # nothing was sent
