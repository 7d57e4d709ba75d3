"""Hostile input through the workers (issue 23, items 3, 4 and 8), on real ``celery
worker`` processes and a ``redis-server`` each test starts for itself (free port, no
persistence), whose every command the test reads with ``MONITOR``.

* 4: a release URL signed with ``X-Amz-Signature=`` and ``token=`` never appears in the
  broker traffic, the logs, the output or anything in the spool;
* 3: ``enqueue --full`` re-extracts a release changed in place (same ``updated_at``) and
  reports this run's outcomes, not old ledger rows;
* 8: tasks with hostile arguments are refused in one log line each, acknowledged, never
  retried, and nothing is touched outside (or inside) the spool.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from celery import Celery

from tests.support.cli import cli_env, run_cli
from tests.support.httpserver import SourceServer
from tests.support.redisserver import HOST, RedisServer
from tests.support.sourcetree import write_source_tree
from tests.support.workers import Broker, workers

SIGNATURE = "SIGSECRET4f1c9a7e2b"
TOKEN = "TOKSECRET8d3e6b0a5c"
QUERY = f"X-Amz-Signature={SIGNATURE}&token={TOKEN}"


class Monitor:
    """Every command the Redis server receives (``MONITOR``), read on a socket of its own."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=5)
        self.sock.sendall(b"MONITOR\r\n")
        self.sock.settimeout(0.2)
        self.data = bytearray()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self.stop.is_set():
            try:
                chunk = self.sock.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            self.data += chunk

    def close(self) -> bytes:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()
        return bytes(self.data)


_B64 = re.compile(rb"[A-Za-z0-9+/]{16,}={0,2}")


def decoded(traffic: bytes) -> bytes:
    """The traffic plus every base64 run in it decoded (kombu sends message bodies in
    base64): a secret inside a task's arguments shows in one or the other."""
    out = [traffic.replace(b"\\\\", b"\\").replace(b'\\"', b'"')]
    for token in _B64.findall(traffic):
        for cut in range(4):  # a run may start mid-quantum when escapes precede it
            piece = token[cut:]
            piece = piece[: len(piece) - len(piece) % 4]
            try:
                out.append(base64.b64decode(piece))
            except (binascii.Error, ValueError):
                continue
    return b"\n".join(out)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[RedisServer, Broker]]:
    with RedisServer(tmp_path / "redis") as server:
        broker = Broker(server.url(0), f"wetl-{uuid.uuid4().hex[:8]}", "redis")
        yield server, broker


def _env(broker: Broker, source: str, spool: Path, db_url: str) -> dict[str, str]:
    return cli_env(spool=spool, source=source, database_url=db_url, **broker.env())


def _enqueue_wait(env: dict[str, str], *extra: str) -> Any:
    return run_cli("enqueue", "--wait", "--timeout", "150", *extra, env=env, timeout=180)


def _sign(tree: Path) -> None:
    """Every release URL of the listing signed (the server maps ``?query`` to
    ``release.json@query`` on disk)."""
    listing = tree / "rhai" / "releases.json"
    doc = json.loads(listing.read_text())
    for entry in doc["releases"]:
        entry["url"] = f"{entry['url']}?{QUERY}"
        plain = tree / "rhai" / entry["version"] / "release.json"
        (plain.parent / f"release.json@{QUERY}").write_bytes(plain.read_bytes())
        plain.unlink()  # only the signed URL answers
    listing.write_text(json.dumps(doc))


def test_signed_urls_stay_out_of_the_broker_logs_and_spool(
    tmp_path: Path, db_url: str, own_redis: tuple[RedisServer, Broker]
) -> None:
    server, broker = own_redis
    tree = write_source_tree(tmp_path / "src")
    _sign(tree)
    spool = tmp_path / "spool"
    monitor = Monitor(server.port)
    with SourceServer(tree) as source:
        env = _env(broker, source.url, spool, db_url)
        with workers(env, tmp_path / "logs", 1) as pool:
            result = _enqueue_wait(env)
            assert result.returncode == 0, (result, pool.log_tail())
            pool.stop()
        signed = [r for r in source.requests if SIGNATURE in r.target]
    traffic = monitor.close()
    assert "extract: 2 spooled" in result.stdout and "load: 2 applied" in result.stdout
    assert len(signed) >= 2, "the releases were not read through their signed URLs"
    assert b"etl.workers.tasks.extract_release" in traffic, "MONITOR saw no task"
    haystacks: dict[str, bytes] = {"broker traffic": decoded(traffic)}
    haystacks["enqueue output"] = (result.stdout + result.stderr).encode()
    for path in (tmp_path / "logs").glob("*.log"):
        haystacks[f"log {path.name}"] = path.read_bytes()
    for path in spool.rglob("*"):
        if path.is_file():
            haystacks[f"spool {path.relative_to(spool)}"] = path.read_bytes()
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT source_url FROM releases").fetchall()
    haystacks["database releases.source_url"] = json.dumps(rows).encode()
    for secret in (SIGNATURE, TOKEN):
        found = [where for where, text in haystacks.items() if secret.encode() in text]
        assert found == [], f"{secret} found in {found}"


def _drop_last_wheel(tree: Path, version: str) -> str:
    path = tree / "rhai" / version / "aarch64" / "cpu" / "wheels.json"
    doc = json.loads(path.read_text())
    removed = str(doc["files"][-1]["filename"])
    doc["files"] = doc["files"][:-1]
    path.write_text(json.dumps(doc))
    return removed


def test_enqueue_full_re_extracts_and_reports_this_run(
    tmp_path: Path, db_url: str, own_redis: tuple[RedisServer, Broker]
) -> None:
    """A release changed in place (same updated_at): `enqueue --full --wait` extracts it
    again and says what this run did; before, the extract task skipped every release with
    a file in any state and --wait reported the old ledger rows (2 spooled, 2 applied)
    while nothing changed."""
    _, broker = own_redis
    tree = write_source_tree(tmp_path / "src")
    spool = tmp_path / "spool"
    with SourceServer(tree) as source:
        env = _env(broker, source.url, spool, db_url)
        with workers(env, tmp_path / "logs", 1) as pool:
            first = _enqueue_wait(env)
            assert first.returncode == 0, (first, pool.log_tail())
            removed = _drop_last_wheel(tree, "3.0.1")
            plain = _enqueue_wait(env)  # incremental: nothing to do, and it says so
            assert plain.returncode == 0, (plain, pool.log_tail())
            full = _enqueue_wait(env, "--full")
            assert full.returncode == 0, (full, pool.log_tail())
            pool.stop()
    assert "extract: 0 spooled, 2 unchanged" in plain.stdout, plain
    assert "load: 0 applied" in plain.stdout, plain
    assert "extract: 2 spooled, 0 unchanged, 0 failed" in full.stdout, full
    assert "load: 1 applied, 1 unchanged, 0 superseded, 0 failed" in full.stdout, full
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM drops WHERE release = '3.0.1' AND architecture = 'aarch64'"
            " AND filename = %s",
            (removed,),
        ).fetchone()
    assert row is not None and row[0] == 0, "enqueue --full did not pick the change up"


HOSTILE = [
    ("etl.workers.tasks.load_file", ("r1", "..")),
    ("etl.workers.tasks.load_file", ("r1", ".")),
    ("etl.workers.tasks.load_file", ("r1", "x" * 300)),
    ("etl.workers.tasks.load_file", ("r1", "../../../etc/passwd")),
    ("etl.workers.tasks.load_file", ("../r1", "a~b~20261001T120000Z~0123456789abcdef.parquet")),
    (
        "etl.workers.tasks.extract_release",
        ("r1", {"product": "../../x", "version": "1.0", "updated_at": None, "url": "x"}),
    ),
    (
        "etl.workers.tasks.extract_release",
        ("r1", {"product": "rhai", "version": "..", "updated_at": None, "url": "x"}),
    ),
    ("etl.workers.tasks.list_releases", ("r1", ["../../x"], False)),
]


def test_tasks_with_hostile_arguments_are_refused_once_and_acknowledged(
    tmp_path: Path, db_url: str, own_redis: tuple[RedisServer, Broker]
) -> None:
    server, broker = own_redis
    tree = write_source_tree(tmp_path / "src")
    spool = tmp_path / "work" / "spool"
    spool.mkdir(parents=True)
    outside = sorted(p.name for p in spool.parent.iterdir())
    sender = Celery("hostile-sender", broker=broker.url, set_as_current=False)
    with SourceServer(tree) as source:
        env = _env(broker, source.url, spool, db_url)
        with workers(env, tmp_path / "logs", 1) as pool:
            for name, args in HOSTILE:
                sender.send_task(name, args, queue=broker.queue)
            client = server.client(0)
            deadline = time.monotonic() + 120
            while True:
                log = "\n".join(p.read_text() for p in (tmp_path / "logs").glob("*.log"))
                refused = [line for line in log.splitlines() if " refused: " in line]
                idle = client.llen(broker.queue) == 0 and client.hlen("unacked") == 0
                if len(refused) >= len(HOSTILE) and idle:
                    break
                assert time.monotonic() < deadline, (refused, pool.log_tail())
                time.sleep(0.2)
            time.sleep(1)  # a retry, were one scheduled, would be in the queue by now
            log = "\n".join(p.read_text() for p in (tmp_path / "logs").glob("*.log"))
            assert client.llen(broker.queue) == 0 and client.hlen("unacked") == 0
            assert client.zcard("unacked_index") == 0
            pool.stop()
    refused = [line for line in log.splitlines() if " refused: " in line]
    assert len(refused) == len(HOSTILE), refused
    assert "Traceback" not in log and "Retry in" not in log and "retry" not in log.lower()
    assert all(len(line) < 400 for line in refused), refused
    assert sorted(p.name for p in spool.parent.iterdir()) == outside
    assert not (spool / "ready").exists() or not any((spool / "ready").iterdir())
