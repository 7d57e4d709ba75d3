"""Real brokers and real ``celery worker`` processes for the worker tests.

* :func:`redis_broker` / :func:`rabbitmq_broker`: give the test a broker of its own (a
  database index of the tests' own ``redis-server``, see ``tests.support.redisserver``;
  a RabbitMQ virtual host of its own) and clean only that afterwards.  A missing broker
  is a failure that says how to start it, never a skip.
* :func:`start_worker` / :func:`one_worker` / :func:`stop_worker`: THE way the tests
  start a ``wheels-etl worker`` process (``-P solo``: one process per worker, so a SIGKILL
  kills the task it runs; a session of its own, so a signal reaches the whole worker) and
  stop it (SIGTERM, a warm shutdown; SIGKILL when it does not end).
* :class:`Workers`: a pool of such workers sharing one environment: kill them, replace them.
* :func:`wait_loaded`: wait until the database holds exactly the source's releases and the
  spool has nothing left in ``ready/``, ``loading/`` or ``tmp/`` (the database is read
  with plain SQL, the source with the generator: no wheels-etl code decides "done").
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psycopg
import pyarrow.fs as pafs
import redis

from tests.support.oracle import iter_expected
from tests.support.procs import REPO
from tests.support.redisserver import RedisServer

RABBIT_HOST, RABBIT_PORT = "127.0.0.1", 5672


@dataclass(frozen=True)
class Broker:
    url: str
    queue: str
    kind: str  # "redis" | "rabbitmq"

    def env(self, visibility_timeout: float = 5.0) -> dict[str, str]:
        return {
            "ETL_BROKER_URL": self.url,
            "ETL_QUEUE": self.queue,
            "ETL_BROKER_VISIBILITY_TIMEOUT": f"{visibility_timeout:g}",
            "ETL_WAIT_POLL_SECONDS": "0.2",
        }

    def queued(self) -> int:
        """Messages waiting in the task queue (Redis only)."""
        assert self.kind == "redis"
        return int(redis.Redis.from_url(self.url).llen(self.queue))

    def flush(self) -> None:
        """Lose every message, as a Redis restarted without persistence does (the
        database is one of the tests' own redis-server, see :func:`redis_broker`)."""
        assert self.kind == "redis"
        redis.Redis.from_url(self.url).flushdb()


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


@contextmanager
def redis_broker(server: RedisServer) -> Iterator[Broker]:
    """A database index of the tests' own ``server`` (the ``redis_server`` fixture) and a
    fresh queue name; the index is emptied afterwards, so the next test finds it empty."""
    broker = Broker(server.url(server.take_db()), f"wetl-{uuid.uuid4().hex[:8]}", "redis")
    try:
        yield broker
    finally:
        broker.flush()


def _rabbitmqctl(*args: str) -> None:
    done = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"rabbitmqctl {' '.join(args)}: {done.stderr or done.stdout}")


def own_vhost_possible() -> bool:
    """``rabbitmqctl`` is there and we are root (it needs the node's Erlang cookie)."""
    return shutil.which("rabbitmqctl") is not None and os.geteuid() == 0


@contextmanager
def rabbitmq_broker() -> Iterator[Broker]:
    """A virtual host of the test's own on the machine's RabbitMQ (created with
    ``rabbitmqctl add_vhost``, deleted with everything in it afterwards); without
    ``rabbitmqctl`` (or not as root), a fresh queue name on ``/`` and only that queue is
    deleted afterwards."""
    if not _answers(RABBIT_HOST, RABBIT_PORT):
        raise AssertionError(
            f"RabbitMQ does not answer on {RABBIT_HOST}:{RABBIT_PORT}: start it, e.g. "
            "`rabbitmq-server -detached` (.ci/run does)"
        )
    from kombu.connection import Connection

    queue = f"wetl-{uuid.uuid4().hex[:8]}"
    if own_vhost_possible():
        vhost = queue
        _rabbitmqctl("add_vhost", vhost)
        try:
            _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
            url = f"amqp://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}/{vhost}"
            yield Broker(url, queue, "rabbitmq")
        finally:
            _rabbitmqctl("delete_vhost", vhost)
        return
    url = f"amqp://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}//"
    broker = Broker(url, queue, "rabbitmq")
    try:
        yield broker
    finally:
        with Connection(url) as conn:  # type: ignore[no-untyped-call]
            channel = conn.channel()
            try:
                channel.queue_delete(broker.queue)
            finally:
                channel.close()


def start_worker(
    env: Mapping[str, str],
    log: Path,
    *,
    name: str | None = None,
    before: Sequence[str] = (),
    after: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """``wheels-etl worker [before] -P solo -n NAME -l info [after]`` from the repository,
    stdout and stderr to ``log``, in a session of its own; ``name`` is a fresh one by
    default; ``before`` holds wheels-etl's own options (``--log-format=json``)."""
    name = name or f"w-{uuid.uuid4().hex[:6]}@%h"
    args = ["worker", *before, "-P", "solo", "-n", name, "-l", "info", *after]
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "etl", *args],
            env=dict(env),
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_worker(proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
    """SIGTERM (a warm shutdown) to the worker's session, SIGKILL when it has not ended
    after ``timeout`` s; its exit status (negative: the signal that ended it)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    return proc.returncode


@contextmanager
def one_worker(
    env: Mapping[str, str], log: Path, *, name: str | None = None, before: Sequence[str] = ()
) -> Iterator[subprocess.Popen[bytes]]:
    """One worker (:func:`start_worker`) for the ``with`` block, stopped after it
    (:func:`stop_worker`) unless it ended already."""
    proc = start_worker(env, log, name=name, before=before)
    try:
        yield proc
    finally:
        stop_worker(proc)


@dataclass
class Workers:
    """``wheels-etl worker`` processes sharing one environment; logs under ``logs``."""

    env: Mapping[str, str]
    logs: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    started: int = 0
    kills: int = 0

    def start(self, count: int = 1) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        (self.logs / "tmp").mkdir(exist_ok=True)  # TMPDIR: their probe registrations
        for _ in range(count):
            self.started += 1
            self.procs.append(
                start_worker(
                    {**self.env, "TMPDIR": str(self.logs / "tmp")},
                    self.logs / f"worker-{self.started}.log",
                    name=f"w{self.started}-{uuid.uuid4().hex[:6]}@%h",
                    after=("--without-gossip", "--without-mingle", "--without-heartbeat"),
                )
            )

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def kill_random(self, rng: random.Random) -> int:
        """SIGKILL one live worker picked by ``rng``; returns its pid."""
        live = self.alive()
        assert live, f"no worker alive; logs in {self.logs}"
        victim = rng.choice(live)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        self.kills += 1
        return victim.pid

    def kill_all(self) -> None:
        for p in self.alive():
            os.killpg(p.pid, signal.SIGKILL)
        for p in self.procs:
            p.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM (warm shutdown), then SIGKILL what is still running after 20 s."""
        for p in self.alive():
            os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=30)

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for path in sorted(self.logs.glob("worker-*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)


@contextmanager
def workers(env: Mapping[str, str], logs: Path, count: int) -> Iterator[Workers]:
    pool = Workers(env, logs)
    pool.start(count)
    try:
        yield pool
    finally:
        pool.kill_all()


def expected_releases(root: Path) -> dict[tuple[str, str], datetime]:
    """``(product, version) -> updated_at`` of every release the source lists."""
    return {(r.product, r.version): r.updated_at for r in iter_expected(root)}


def db_releases(db_url: str) -> dict[tuple[str, str], datetime]:
    with psycopg.connect(db_url) as conn:
        exists = conn.execute("SELECT to_regclass('releases') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return {}
        rows = conn.execute("SELECT product, release, updated_at FROM releases").fetchall()
    return {(p, r): u for p, r, u in rows}


#: Spool folders that hold work in progress (``moves``: an S3 move's intent).
BUSY_FOLDERS = ("ready", "loading", "tmp", "moves")


@dataclass(frozen=True)
class SpoolView:
    """The spool seen from outside, through a pyarrow filesystem (a local folder, or a
    bucket prefix on the test S3 server): names per folder, nothing of wheels-etl's."""

    fs: pafs.FileSystem
    base: str  # folder path, or "bucket/prefix"
    location: str  # what ETL_SPOOL_DIR says
    env: Mapping[str, str] = field(default_factory=dict)  # AWS_* for an s3:// spool

    @classmethod
    def local(cls, path: Path) -> SpoolView:
        return cls(pafs.LocalFileSystem(), str(path), str(path))

    def names(self, folder: str) -> list[str]:
        selector = pafs.FileSelector(f"{self.base}/{folder}", allow_not_found=True)
        return sorted(i.base_name for i in self.fs.get_file_info(selector) if i.is_file)

    def busy(self) -> list[str]:
        return [f"{folder}/{n}" for folder in BUSY_FOLDERS for n in self.names(folder)]


def spool_busy(spool: Path) -> list[str]:
    """Files still in ready/, loading/, tmp/ (or moves/) of a local spool."""
    return SpoolView.local(spool).busy()


def wait_loaded(
    root: Path,
    db_url: str,
    spool: Path | SpoolView,
    pool: Workers,
    *,
    timeout: float = 120,
    missing_ok: frozenset[tuple[str, str]] = frozenset(),
) -> None:
    """Until the database holds every source release at its ``updated_at`` (except
    ``missing_ok``) and the spool is idle; fails with the workers' logs on timeout."""
    view = spool if isinstance(spool, SpoolView) else SpoolView.local(spool)
    want = {k: v for k, v in expected_releases(root).items() if k not in missing_ok}
    deadline = time.monotonic() + timeout
    while True:
        have = db_releases(db_url)
        busy = view.busy()
        if have == want and not busy:
            return
        if time.monotonic() > deadline:
            missing = sorted(k for k in want if have.get(k) != want[k])
            raise AssertionError(
                f"not loaded after {timeout:g} s: {len(missing)} release(s) missing or stale "
                f"{missing[:5]}, spool busy {busy[:5]}\n{pool.log_tail()}"
            )
        time.sleep(0.3)
