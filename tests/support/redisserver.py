"""A ``redis-server`` of the tests' own: started on a free port in a temp folder, with no
persistence (``--save "" --appendonly no``), stopped at the end.  The worker tests and the
README's worked example use it instead of whatever Redis the machine runs, so a test run
never reads or flushes a database it did not create.

A missing ``redis-server`` binary is an error with the fix in its message, never a skip.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

HOST = "127.0.0.1"


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError(
            "`redis-server` not found on PATH: the worker tests start their own "
            "(apt-get install redis-server, or dnf install redis)"
        )
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One private ``redis-server``; :meth:`url` hands out its database indexes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.binary = redis_binary()
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._dbs = itertools.cycle(range(16))
        folder.mkdir(parents=True, exist_ok=True)

    def take_db(self) -> int:
        """The next database index, for one test (which empties it when done)."""
        db = next(self._dbs)
        assert self.client(db).dbsize() == 0, f"database {db} of the test Redis is not empty"
        return db

    def url(self, db: int = 0) -> str:
        return f"redis://{HOST}:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(HOST, self.port, db=db, socket_connect_timeout=3)

    def start(self, timeout: float = 30.0) -> None:
        assert self.proc is None, "already running"
        for _ in range(5):  # a port found free may be taken before redis binds it
            self.port = free_port()
            args = [
                self.binary, "--bind", HOST, "--port", str(self.port), "--save", "",
                "--appendonly", "no", "--dir", str(self.folder), "--daemonize", "no",
                "--logfile", str(self.folder / "redis.log"), "--databases", "16",
            ]  # fmt: skip
            self.proc = subprocess.Popen(
                args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
            )
            if self._wait_ready(timeout):
                return
            self.stop()
        raise RuntimeError(f"redis-server did not start: {self.log()}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            with contextlib.suppress(redis.RedisError):
                if self.client().ping():
                    return True
            time.sleep(0.05)
        return False

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.folder / "redis.log").read_text(errors="replace")[-3000:]
        return ""

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
