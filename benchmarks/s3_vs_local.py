"""Local spool vs ``s3://`` spool, the same files, in the same run (issue 20's 1.3x target).

The same generated source over HTTP; per round, for each spool kind in alternating order:
a fresh database, ``wheels-etl extract`` into a fresh spool (a local folder, or a fresh
prefix of a SeaweedFS bucket), then ``wheels-etl load``; each command timed as a user
sees it (the whole process, start-up included) with its peak RSS and CPU (GNU time), and
the CPU the S3 server (SeaweedFS, on the same cores) used meanwhile.  The target is on the
load: the ``s3://`` spool's median load wall over the local one's.  Needs
Postgres and the ``weed`` binary of the dev extra.  Run on its own::

    python -m benchmarks.s3_vs_local [--releases 20] [--rounds 5] [--shape small|release]

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


#: Shapes of the release files (per release; 2 products, ``releases`` each).  "small" is
#: the section's original size (about 0.6 MB of JSON a file), "release" the load section's
#: drop-heavy one (about 1.5 MB of JSON a file), nearer a real release's.
SHAPES: dict[str, dict[str, int]] = {
    "small": {"artifacts": 4, "packages": 120, "drops": 150},
    "release": {"artifacts": 4, "packages": 270, "drops": 463},
}

#: One command's measurement: wall s, peak RSS MB, its own CPU s, the S3 server's CPU s.
Timing = tuple[float, int, float, float]


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process so far (0 when there is none)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(env: dict[str, str], store_pid: int | None = None) -> dict[str, Timing]:
    """``command`` -> :data:`Timing` for extract then load."""
    out: dict[str, Timing] = {}
    for command in COMMANDS:
        store_cpu = _cpu_seconds(store_pid)
        started = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M %U %S", ETL, command, "-q"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{command} failed: {done.stderr[-2000:]}")
        rss_kb, user, system = done.stderr.strip().splitlines()[-1].split()
        store_cpu = _cpu_seconds(store_pid) - store_cpu
        out[command] = (wall, int(rss_kb) // 1024, float(user) + float(system), store_cpu)
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
    shape: str = "small",
) -> dict[str, Any]:
    """Rounds of extract + load on each spool kind; the per-round times and the ratios."""
    source = work / f"source-{shape}"
    spec = GenSpec(products=2, releases=releases, seed=7, **SHAPES[shape])
    summary = generate(source, spec)
    store = S3Server(work / f"weed-{shape}")
    store.start()
    runs: dict[str, list[dict[str, Timing]]] = {"local": [], "s3": []}
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
                    store_pid = store.proc.pid if kind == "s3" and store.proc else None
                    try:
                        timing = run_once(env, store_pid)
                    finally:
                        _drop_db(server_url, db)
                    runs[kind].append(timing)
                    shown = {k: tuple(round(v, 2) for v in t) for k, t in timing.items()}
                    log(f"  {shape} {kind} round {rnd}: {shown}")
    finally:
        store.stop()
    pairs = list(zip(runs["local"], runs["s3"], strict=True))
    return {
        "shape": shape,
        "files": 2 * releases,
        "json_mb": round(summary.bytes / 1e6, 1),
        "rounds": rounds,
        "runs": {k: [{c: list(t[c]) for c in COMMANDS} for t in v] for k, v in runs.items()},
        "load_ratios": [s["load"][0] / loc["load"][0] for loc, s in pairs],
        "extract_ratios": [s["extract"][0] / loc["extract"][0] for loc, s in pairs],
    }


def summary(data: dict[str, Any]) -> list[str]:
    lines = [f"{data['files']} files, {data['json_mb']} MB of JSON ({data['shape']} shape)"]
    for kind, runs in data["runs"].items():
        ext = statistics.median(r["extract"][0] for r in runs)
        load = statistics.median(r["load"][0] for r in runs)
        cpu = statistics.median(r["load"][2] for r in runs)
        store_cpu = statistics.median(r["load"][3] for r in runs)
        rss = max(max(r["extract"][1], r["load"][1]) for r in runs)
        lines.append(
            f"{kind}: extract {ext:.2f} s, load {load:.2f} s (medians), load CPU {cpu:.2f} s"
            f" (+ S3 server {store_cpu:.2f} s), peak RSS {rss} MB"
        )
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
    parser.add_argument("--shape", choices=sorted(SHAPES), default="small")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="s3-vs-local-"))
    data = measure(work, args.releases, args.rounds, shape=args.shape)
    print("\n".join(summary(data)))


if __name__ == "__main__":
    main()
