"""Local spool vs ``s3://`` spool, one process each (issue 12's 1.3x target).

The same generated source over HTTP, ``wheels-etl extract`` then ``wheels-etl load`` into a
fresh database, once on a local folder and once on a SeaweedFS bucket, in alternating
order for three rounds; wall time and peak RSS (GNU time) per command.  Needs Postgres on
127.0.0.1:5432 and the ``weed`` binary of the dev extra::

    python -m benchmarks.s3_vs_local [--releases 20]
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
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests.support.gen import GenSpec, generate
from tests.support.httpserver import SourceServer
from tests.support.s3server import S3Server

PG = "postgresql://postgres@127.0.0.1:5432/postgres"
ETL = str(Path(sys.executable).parent / "wheels-etl")
Timing = dict[str, tuple[float, int]]  # command -> (wall seconds, peak RSS MB)


def run_once(env: dict[str, str]) -> Timing:
    out: Timing = {}
    for command in ("extract", "load"):
        started = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", ETL, command, "-q"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"{command} failed: {done.stderr[-2000:]}")
        rss_mb = int(done.stderr.strip().splitlines()[-1]) // 1024
        out[command] = (time.perf_counter() - started, rss_mb)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--releases", type=int, default=20, help="per product (2 products)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="s3-vs-local-"))
    source = tmp / "source"
    generate(source, GenSpec(products=2, releases=args.releases, artifacts=4, packages=120,
                             drops=150, seed=7))  # fmt: skip
    store = S3Server(tmp / "weed")
    store.start()
    results: dict[str, list[Timing]] = {"local": [], "s3": []}
    try:
        with SourceServer(source) as server:
            for rnd in range(3):
                for kind in ("local", "s3") if rnd % 2 == 0 else ("s3", "local"):
                    db = f"wetl_s3bench_{uuid.uuid4().hex[:8]}"
                    with psycopg.connect(PG, autocommit=True) as conn:
                        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
                    env = {
                        "PATH": os.environ["PATH"],
                        "HOME": str(tmp),
                        "ETL_SOURCE_URL": server.url,
                        "DATABASE_URL": make_conninfo(PG, dbname=db),
                    }
                    if kind == "s3":
                        env.update(store.env())
                        env["ETL_SPOOL_DIR"] = f"s3://{store.new_bucket()}/spool"
                    else:
                        env["ETL_SPOOL_DIR"] = str(tmp / f"spool-{uuid.uuid4().hex[:6]}")
                    timing = run_once(env)
                    results[kind].append(timing)
                    print(kind, rnd, {k: (round(s, 2), mb) for k, (s, mb) in timing.items()})
    finally:
        store.stop()
    for kind, runs in results.items():
        wall = statistics.median(r["extract"][0] + r["load"][0] for r in runs)
        ext = statistics.median(r["extract"][0] for r in runs)
        load = statistics.median(r["load"][0] for r in runs)
        rss = max(max(r["extract"][1], r["load"][1]) for r in runs)
        print(f"{kind}: extract {ext:.2f} s, load {load:.2f} s, total {wall:.2f} s, "
              f"peak RSS {rss} MB")  # fmt: skip
    ratios = [
        (s["extract"][0] + s["load"][0]) / (loc["extract"][0] + loc["load"][0])
        for loc, s in zip(results["local"], results["s3"], strict=True)
    ]
    print(f"s3 / local wall per round: {[round(r, 2) for r in ratios]}, "
          f"median {statistics.median(ratios):.2f} (target <= 1.3)")  # fmt: skip


if __name__ == "__main__":
    main()
