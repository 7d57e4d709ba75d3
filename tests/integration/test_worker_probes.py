"""The worker's probes mean what they say: liveness follows this worker process (its own
node name, whatever ``-n`` was) and never the broker; a broker outage shows as not ready;
each failure prints one line saying why.  Real ``celery worker`` processes on a
``redis-server`` of the test's own, which the test stops to make the outage."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

from tests.support.cli import CliResult, cli_env, run_cli
from tests.support.redisserver import RedisServer
from tests.support.workers import Broker, start_worker


def probe(env: dict[str, str], *args: str) -> CliResult:
    return run_cli("worker", *args, env=env, timeout=60)


def wait_alive(env: dict[str, str], name: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while probe(env, "--healthcheck", "-n", name).returncode != 0:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.3)


def test_liveness_follows_the_worker_and_readiness_the_broker(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server:  # its own: the test stops it
        env = worker_env(tmp_path, server)
        name = f"w1-{uuid.uuid4().hex[:6]}@%h"
        proc = start_worker(env, tmp_path / "worker.log", name=name)
        try:
            wait_alive(env, name, proc, tmp_path / "worker.log")
            alive = probe(env, "--healthcheck", "-n", name)
            assert alive.returncode == 0 and f"(pid {proc.pid})" in alive.stdout, alive
            ready = probe(env, "--readiness", "-n", name)
            assert ready.returncode == 0 and "answers" in ready.stdout, ready
            assert probe(env, "--healthcheck").returncode == 0  # every worker of this host

            other = probe(env, "--healthcheck", "-n", "w2@%h")  # the old probe's mistake
            assert other.returncode == 3, other
            assert "no worker named w2@" in other.stderr and len(other.stderr.splitlines()) == 1

            server.stop()  # the broker goes away: the worker is still alive, not ready
            alive = probe(env, "--healthcheck", "-n", name)
            assert alive.returncode == 0, alive
            down = probe(env, "--readiness", "-n", name)
            assert down.returncode == 3, down
            assert down.stderr.startswith("wheels-etl worker: not ready: the broker"), down
            assert len(down.stderr.splitlines()) == 1 and "Traceback" not in down.stderr
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        dead = probe(env, "--healthcheck", "-n", name)  # SIGKILL: the registration stays
        assert dead.returncode == 3 and "is not running" in dead.stderr, dead


def test_a_warm_shutdown_unregisters_and_no_worker_is_not_alive(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server:  # its own: the test stops it
        env = worker_env(tmp_path, server)
        none = probe(env, "--healthcheck")
        assert none.returncode == 3 and "no worker registered" in none.stderr, none
        name = f"w1-{uuid.uuid4().hex[:6]}@%h"
        proc = start_worker(env, tmp_path / "worker.log", name=name)
        wait_alive(env, name, proc, tmp_path / "worker.log")
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 0
        gone = probe(env, "--healthcheck", "-n", name)
        assert gone.returncode == 3 and f"no worker named {name.split('@')[0]}@" in gone.stderr


def test_a_killed_workers_registration_goes_when_the_next_worker_starts(tmp_path: Path) -> None:
    """As in a container restarted after a kill with the same emptyDir at /tmp."""
    with RedisServer(tmp_path / "redis") as server:
        env = worker_env(tmp_path, server)
        first = start_worker(env, tmp_path / "first.log", name="w@%h")
        wait_alive(env, "w@%h", first, tmp_path / "first.log")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(30)
        assert probe(env, "--healthcheck").returncode == 3  # its registration stays
        second = start_worker(env, tmp_path / "second.log", name="w2@%h")  # another name
        try:
            wait_alive(env, "w2@%h", second, tmp_path / "second.log")
            alive = probe(env, "--healthcheck")  # every worker registered here: one
            assert alive.returncode == 0 and f"(pid {second.pid})" in alive.stdout, alive
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(60)


def worker_env(tmp_path: Path, server: RedisServer) -> dict[str, str]:
    """A worker's environment: a Redis of the test's own, a temp folder of its own (where
    the worker registers)."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    broker = Broker(server.url(0), f"wetl-{uuid.uuid4().hex[:8]}", "redis")
    return cli_env(spool=tmp_path / "spool", TMPDIR=tmp_path / "tmp", **broker.env())
