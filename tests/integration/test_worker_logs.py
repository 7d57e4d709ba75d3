"""With JSON logs every line a worker prints is one JSON object: Celery's warnings (as
root, its superuser warning), its shutdown notice printed past the logging system, the
tasks' log lines; the banner is one log line instead of thirty.  A real worker on a
``redis-server`` of the test's own, running a real run of the shipped sample collection."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.support.cli import cli_env, run_cli
from tests.support.redisserver import RedisServer
from tests.support.workers import Broker, one_worker, redis_broker, stop_worker


@pytest.mark.parametrize("how", ["env", "flag"])
def test_every_line_a_worker_prints_is_one_json_object(
    how: str, tmp_path: Path, db_url: str, redis_server: RedisServer
) -> None:
    with redis_broker(redis_server) as broker:
        lines = run_a_worker(how, tmp_path, db_url, broker)
    docs = []
    for number, line in enumerate(lines, 1):
        try:
            doc = json.loads(line)
        except ValueError:
            pytest.fail(f"line {number} is not JSON: {line!r}\n" + "\n".join(lines))
        assert isinstance(doc, dict) and {"ts", "level", "logger", "message"} <= set(doc), line
        docs.append(doc)
    messages = [d["message"] for d in docs]
    assert any(d["logger"] == "etl.workers" and "starting" in d["message"] for d in docs)
    assert any(m.endswith(" ready.") for m in messages), messages
    assert any("Warm shutdown" in m for m in messages), messages  # printed, not logged
    assert any(d["logger"] == "etl.workers.tasks" for d in docs), messages
    assert not any("-------------- " in m for m in messages), "the banner was printed"
    if os.geteuid() == 0:  # Celery warns a root worker: one JSON line, not seven
        (warning,) = [d for d in docs if "superuser privileges" in d["message"]]
        assert warning["level"] == "warning"


def run_a_worker(how: str, tmp_path: Path, db_url: str, broker: Broker) -> list[str]:
    env = cli_env(spool=tmp_path / "spool", database_url=db_url, **broker.env())
    before = []
    if how == "env":
        env["ETL_LOG_FORMAT"] = "json"
    else:
        before.append("--log-format=json")
    log = tmp_path / "worker.log"
    with one_worker(env, log, before=before) as proc:
        done = run_cli("enqueue", "--wait", "--timeout", "120", env=env, timeout=180)
        assert done.returncode == 0, (done, log.read_text())
        assert stop_worker(proc) == 0, log.read_text()
    deadline = time.monotonic() + 60  # the filter process writes the last lines at EOF
    while "Warm shutdown" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    return log.read_text().splitlines()
