"""Celery workers vs the single-process CLI on the same data (issue 12, "Measure").

``python -m benchmarks.workers [--releases N] [--workers 1,2,4] [--json FILE]``

For each configuration, on a fresh database and a fresh local spool, against the same
generated source served over HTTP:

* ``cli``: ``wheels-etl extract`` then ``wheels-etl load`` (one process each);
* ``celery xN``: N ``wheels-etl worker -P solo`` processes (one task at a time each, as in
  the Kubernetes Deployment), started and ready before the clock starts, then
  ``wheels-etl enqueue --wait``.

Reported: end-to-end wall time, and peak RSS per process (sampled every 20 ms with psutil:
the largest of the extract/load processes, the largest worker).  Needs Redis on
127.0.0.1:6379 (database 7 is used and flushed) and ``ETL_BENCH_DATABASE_URL`` or
``ETL_TEST_DATABASE_URL`` (a server where databases can be created).
Section module for the harness once it is split by section: :func:`run_section`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from benchmarks.harness import generate
from benchmarks.sourceserver import source_server

REPO = Path(__file__).resolve().parents[1]
BROKER = "redis://127.0.0.1:6379/7"
SHAPE = {"artifacts": 4, "packages": 120, "drops": 200}


class RssPoller(threading.Thread):
    """Peak RSS of each of some processes (and their children), every 20 ms."""

    def __init__(self, pids: Sequence[int]) -> None:
        super().__init__(daemon=True)
        self.procs = [psutil.Process(p) for p in pids]
        self.peak = {p: 0 for p in pids}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for proc in self.procs:
                try:
                    rss = sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
                except psutil.Error:
                    continue
                self.peak[proc.pid] = max(self.peak[proc.pid], rss)
            self.stop.wait(0.02)


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    name = f"wetl_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(server_url, dbname=name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _env(spool: Path, source: str, db_url: str, queue: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    env.pop("DATABASE_URL", None)
    env.update(
        ETL_SPOOL_DIR=str(spool),
        ETL_SOURCE_URL=source,
        DATABASE_URL=db_url,
        ETL_BROKER_URL=BROKER,
        ETL_QUEUE=queue,
        ETL_WAIT_POLL_SECONDS="0.1",
    )
    return env


def _etl(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "etl", *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def run_cli(source: str, db_url: str, work: Path) -> dict[str, Any]:
    env = _env(work / "spool", source, db_url, "unused")
    started = time.perf_counter()
    peaks = []
    for command in (["extract", "-q"], ["load", "-q"]):
        proc = _etl(command, env)
        poller = RssPoller([proc.pid])
        poller.start()
        _, err = proc.communicate()
        poller.stop.set()
        poller.join()
        if proc.returncode != 0:
            raise RuntimeError(f"{command} failed: {err.decode()[-2000:]}")
        peaks.append(poller.peak[proc.pid])
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": max(peaks) / 2**20}


def run_workers(source: str, db_url: str, work: Path, count: int) -> dict[str, Any]:
    import redis

    redis.Redis.from_url(BROKER).flushdb()
    env = _env(work / "spool", source, db_url, f"bench-{uuid.uuid4().hex[:6]}")
    logs = [work / f"worker-{i}.log" for i in range(count)]
    procs = []
    for i, log in enumerate(logs):
        with open(log, "wb") as out:
            argv = [sys.executable, "-m", "etl", "worker", "-P", "solo", "-n", f"b{i}@%h"]
            argv += ["-l", "info", "--without-gossip", "--without-mingle"]
            procs.append(
                subprocess.Popen(
                    argv,
                    env=env,
                    cwd=REPO,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    try:
        deadline = time.monotonic() + 60
        while not all("ready." in log.read_text(errors="replace") for log in logs):
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start")
            time.sleep(0.1)
        poller = RssPoller([p.pid for p in procs])
        poller.start()
        started = time.perf_counter()
        enqueue = _etl(["enqueue", "--wait", "--timeout", "30m"], env)
        _, err = enqueue.communicate()
        seconds = time.perf_counter() - started
        poller.stop.set()
        poller.join()
        if enqueue.returncode != 0:
            raise RuntimeError(f"enqueue --wait failed: {err.decode()[-2000:]}")
        peaks = [poller.peak[p.pid] / 2**20 for p in procs]
        return {"seconds": seconds, "peak_rss_mb": max(peaks), "per_worker_mb": peaks}
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def run_section(
    server_url: str, releases: int, worker_counts: Sequence[int], rounds: int = 1
) -> dict[str, Any]:
    out: dict[str, Any] = {"releases": releases, "shape": SHAPE, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="wetl-bench-workers-") as tmp:
        root = Path(tmp) / "source"
        out["source"] = generate(root, releases, SHAPE)
        with source_server(root) as url:
            configs = [("cli", 0), *((f"celery x{n}", n) for n in worker_counts)]
            for r in range(rounds):
                for name, n in configs:
                    work = Path(tmp) / f"{name.replace(' ', '')}-{r}"
                    work.mkdir()
                    with fresh_database(server_url) as db_url:
                        if n == 0:
                            res = run_cli(url, db_url, work)
                        else:
                            res = run_workers(url, db_url, work, n)
                    print(f"{name:<10} {res['seconds']:6.1f} s  peak RSS "
                          f"{res['peak_rss_mb']:5.0f} MB", file=sys.stderr)  # fmt: skip
                    out["runs"].setdefault(name, []).append(res)
    return out


def render(res: dict[str, Any]) -> str:
    lines = [
        f"{res['releases']} releases x {res['shape']['artifacts']} artifacts, local spool, "
        "Redis broker, HTTP source on this machine",
        "",
        "| run | wall s (median) | peak RSS per process MB (max) |",
        "|---|---|---|",
    ]
    for name, runs in res["runs"].items():
        secs = sorted(r["seconds"] for r in runs)[len(runs) // 2]
        rss = max(r["peak_rss_mb"] for r in runs)
        lines.append(f"| {name} | {secs:.1f} | {rss:.0f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--releases", type=int, default=40)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    server = os.environ.get("ETL_BENCH_DATABASE_URL") or os.environ.get("ETL_TEST_DATABASE_URL")
    if not server:
        ap.error("set ETL_BENCH_DATABASE_URL (or ETL_TEST_DATABASE_URL)")
    counts = [int(x) for x in args.workers.split(",") if x]
    res = run_section(server, args.releases, counts, args.rounds)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    print(render(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
