"""Section 5: Celery workers vs the single-process CLI on the same data (issue 12).

For each configuration, on a fresh database and a fresh local spool, against the same
generated source served over HTTP:

* ``cli``: ``wheels-etl extract`` then ``wheels-etl load`` (one process each);
* ``celery xN``: N ``wheels-etl worker -P solo`` processes (one task at a time each, as in
  the Kubernetes Deployment), started and ready before the clock starts, then
  ``wheels-etl enqueue --wait``.

Reported: end-to-end wall time, and peak RSS per process (sampled every 20 ms by
:mod:`benchmarks.poller`: the largest of the extract/load processes, the largest
worker).  Starts a redis-server of its own (``tests.support.redisserver``: a free port,
no persistence), so the machine's Redis is never touched.  Alone:
``python -m benchmarks.sections.workers [--releases N] [--workers 1,2,4]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import benchdb
from benchmarks.harness import DEFAULT_SERVER, Bench, generate, log
from benchmarks.mdtable import Target, fmt, median, table
from benchmarks.poller import Poller
from benchmarks.sections import Metric, Rendered, Section, target_metrics
from benchmarks.sourceserver import source_server
from tests.support.redisserver import RedisServer

REPO = Path(__file__).resolve().parents[2]
SHAPE = {"artifacts": 4, "packages": 120, "drops": 200}


def _tree_pollers(pids: Sequence[int]) -> list[Poller]:
    """A started :class:`benchmarks.poller.Poller` per process: peak RSS of it and its
    children, sampled every 20 ms (``tree_peak``)."""
    pollers = [Poller(pid, skip_root=False, pg_database=None) for pid in pids]
    for poller in pollers:
        poller.start()
    return pollers


def _env(spool: Path, source: str, db_url: str, broker: str, queue: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    env.pop("DATABASE_URL", None)
    env.update(
        ETL_SPOOL_DIR=str(spool),
        ETL_SOURCE_URL=source,
        DATABASE_URL=db_url,
        ETL_BROKER_URL=broker,
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
    env = _env(work / "spool", source, db_url, "", "unused")
    started = time.perf_counter()
    peaks = []
    for command in (["extract", "-q"], ["load", "-q"]):
        proc = _etl(command, env)
        [poller] = _tree_pollers([proc.pid])
        _, err = proc.communicate()
        poller.stop()
        if proc.returncode != 0:
            raise RuntimeError(f"{command} failed: {err.decode()[-2000:]}")
        peaks.append(poller.tree_peak)
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": max(peaks) / 2**20}


def run_workers(source: str, db_url: str, work: Path, count: int, broker: str) -> dict[str, Any]:
    env = _env(work / "spool", source, db_url, broker, f"bench-{uuid.uuid4().hex[:6]}")
    logs = [work / f"worker-{i}.log" for i in range(count)]
    procs = []
    for i, log_path in enumerate(logs):
        with open(log_path, "wb") as out:
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
        while not all("ready." in p.read_text(errors="replace") for p in logs):
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start")
            time.sleep(0.1)
        pollers = _tree_pollers([p.pid for p in procs])
        started = time.perf_counter()
        enqueue = _etl(["enqueue", "--wait", "--timeout", "30m"], env)
        _, err = enqueue.communicate()
        seconds = time.perf_counter() - started
        for poller in pollers:
            poller.stop()
        if enqueue.returncode != 0:
            raise RuntimeError(f"enqueue --wait failed: {err.decode()[-2000:]}")
        peaks = [poller.tree_peak / 2**20 for poller in pollers]
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


def run_all(
    server_url: str, work: Path, releases: int, counts: Sequence[int], rounds: int = 1
) -> dict[str, Any]:
    out: dict[str, Any] = {"releases": releases, "shape": SHAPE, "runs": {}}
    root = work / "src-workers"
    out["source"] = generate(root, releases, SHAPE, seed=5)
    with source_server(root) as url, RedisServer(work / "redis") as redis_server:
        configs = [("cli", 0), *((f"celery x{n}", n) for n in counts)]
        for r in range(rounds):
            for name, n in configs:
                run_dir = work / f"workers-{name.replace(' ', '')}-{r}"
                run_dir.mkdir(parents=True)
                dbname = f"wetl_bench_workers_{uuid.uuid4().hex[:6]}"
                db_url = benchdb.create_db(server_url, dbname)
                try:
                    res = (
                        run_cli(url, db_url, run_dir)
                        if n == 0
                        else run_workers(url, db_url, run_dir, n, redis_server.url(r % 16))
                    )
                finally:
                    benchdb.drop_db(server_url, dbname)
                log(f"  {name:<10} {res['seconds']:6.1f} s  peak RSS {res['peak_rss_mb']:5.0f} MB")
                out["runs"].setdefault(name, []).append(res)
    return out


def measure(bench: Bench) -> dict[str, Any]:
    cfg = bench.cfg
    return run_all(
        bench.server_url, bench.work, cfg.workers_releases, cfg.workers_counts, cfg.workers_rounds
    )


def render(data: dict[str, Any], out_dir: Path) -> Rendered:
    heading = ["## 5. Celery workers vs the CLI", ""]
    if "error" in data:
        return Rendered(body=[*heading, f"Section failed: `{data['error']}`"])
    runs: dict[str, list[dict[str, Any]]] = data.get("runs", {})
    cli = median([r["seconds"] for r in runs.get("cli", [])])
    rows = []
    metrics: dict[str, Metric] = {}
    for name, recs in runs.items():
        secs = median([r["seconds"] for r in recs])
        rss = max(r["peak_rss_mb"] for r in recs)
        rows.append([name, fmt(secs), fmt(cli / secs, 2), fmt(rss, 0), str(len(recs))])
        if name.startswith("celery x"):
            n = name.removeprefix("celery x")
            metrics[f"workers-{n}-speedup"] = Metric(
                f"{n} Celery worker(s): speed vs the CLI", cli / secs, "x", "higher"
            )
    workers = [r for name, recs in runs.items() if name != "cli" for r in recs]
    worst = max((r["peak_rss_mb"] for r in workers), default=float("nan"))
    targets = [
        Target("worker-rss", "Celery worker peak RSS (one task at a time)", worst, "<=", 200.0,
               unit="MB", note="must fit the 512Mi pod"),
    ]  # fmt: skip
    body = [
        *heading,
        f"{data.get('releases')} releases x {SHAPE['artifacts']} artifacts, local spool, Redis"
        " broker, source over HTTP on this machine; each worker `-P solo` (one task at a"
        " time); wall time from `enqueue --wait` to its end, workers already running.",
        "",
        table(["run", "wall s (median)", "speed vs CLI", "peak RSS per process MB", "runs"], rows),
    ]
    return Rendered(targets=targets, body=body, metrics={**metrics, **target_metrics(targets)})


SECTION = Section(name="workers", order=50, measure=measure, render=render)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Celery workers vs the CLI (benchmark section)")
    ap.add_argument("--releases", type=int, default=40)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args(argv)
    server = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_SERVER
    with tempfile.TemporaryDirectory(prefix="wetl-bench-workers-") as tmp:
        counts = [int(x) for x in args.workers.split(",") if x]
        res = run_all(server, Path(tmp), args.releases, counts, args.rounds)
    print("\n".join(render(res, Path(".")).body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
