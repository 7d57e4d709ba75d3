"""Local spool vs ``s3://`` spool, the same files, in the same run (issue 20's 1.3x target).

The same generated source over HTTP; per round, for each spool kind in alternating order:
a fresh database, ``wheels-etl extract`` into a fresh spool (a local folder, or a fresh
prefix of a SeaweedFS bucket), then ``wheels-etl load``; each command timed as a user
sees it (the whole process, start-up included) with its peak RSS (GNU time).  The target
is on the load: the ``s3://`` spool's median load wall over the local one's.  Needs
Postgres and the ``weed`` binary of the dev extra.  Run on its own::

    python -m benchmarks.s3_vs_local [--releases 20] [--rounds 5]

or as the report's section ``s3`` (``python -m benchmarks.run --only s3``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests.support.gen import GenSpec, generate
from tests.support.httpserver import SourceServer
from tests.support.s3server import S3Server

PG = "postgresql://postgres@127.0.0.1:5432/postgres"
ETL = str(Path(sys.executable).parent / "wheels-etl")
COMMANDS = ("extract", "load")


def run_once(env: dict[str, str]) -> dict[str, tuple[float, int]]:
    """``command`` -> (wall seconds, peak RSS MB) for extract then load."""
    out: dict[str, tuple[float, int]] = {}
    for command in COMMANDS:
        started = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", ETL, command, "-q"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{command} failed: {done.stderr[-2000:]}")
        rss_mb = int(done.stderr.strip().splitlines()[-1]) // 1024
        out[command] = (time.perf_counter() - started, rss_mb)
    return out


def _fresh_db(server_url: str) -> str:
    name = f"wetl_s3bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def _drop_db(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(drop.format(sql.Identifier(name)))


def measure(
    work: Path,
    releases: int = 20,
    rounds: int = 5,
    server_url: str = PG,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Rounds of extract + load on each spool kind; the per-round times and the ratios."""
    source = work / "source"
    spec = GenSpec(products=2, releases=releases, artifacts=4, packages=120, drops=150, seed=7)
    generate(source, spec)
    store = S3Server(work / "weed")
    store.start()
    runs: dict[str, list[dict[str, tuple[float, int]]]] = {"local": [], "s3": []}
    try:
        with SourceServer(source) as server:
            for rnd in range(rounds):
                for kind in ("local", "s3") if rnd % 2 == 0 else ("s3", "local"):
                    db = _fresh_db(server_url)
                    env = {
                        "PATH": os.environ["PATH"],
                        "HOME": str(work),
                        "ETL_SOURCE_URL": server.url,
                        "DATABASE_URL": make_conninfo(server_url, dbname=db),
                    }
                    if kind == "s3":
                        env.update(store.env())
                        env["ETL_SPOOL_DIR"] = f"{store.new_spool_url()}/spool"
                    else:
                        env["ETL_SPOOL_DIR"] = str(work / f"spool-{uuid.uuid4().hex[:6]}")
                    try:
                        timing = run_once(env)
                    finally:
                        _drop_db(server_url, db)
                    runs[kind].append(timing)
                    log(f"  {kind} round {rnd}: "
                        f"{ {k: (round(s, 2), mb) for k, (s, mb) in timing.items()} }")  # fmt: skip
    finally:
        store.stop()
    pairs = list(zip(runs["local"], runs["s3"], strict=True))
    return {
        "files": 2 * releases,
        "rounds": rounds,
        "runs": {k: [{c: list(t[c]) for c in COMMANDS} for t in v] for k, v in runs.items()},
        "load_ratios": [s["load"][0] / loc["load"][0] for loc, s in pairs],
        "extract_ratios": [s["extract"][0] / loc["extract"][0] for loc, s in pairs],
    }


def summary(data: dict[str, Any]) -> list[str]:
    lines = []
    for kind, runs in data["runs"].items():
        ext = statistics.median(r["extract"][0] for r in runs)
        load = statistics.median(r["load"][0] for r in runs)
        rss = max(max(r["extract"][1], r["load"][1]) for r in runs)
        lines.append(f"{kind}: extract {ext:.2f} s, load {load:.2f} s (medians), peak RSS {rss} MB")
    lr = data["load_ratios"]
    lines.append(
        f"s3 / local load wall per round: {[round(r, 2) for r in lr]}, "
        f"median {statistics.median(lr):.2f} (target <= 1.3)"
    )
    er = data["extract_ratios"]
    lines.append(f"s3 / local extract wall: median {statistics.median(er):.2f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--releases", type=int, default=20, help="per product (2 products)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="s3-vs-local-"))
    data = measure(work, args.releases, args.rounds)
    print("\n".join(summary(data)))


if __name__ == "__main__":
    main()
