"""On-demand: load's client CPU per GB of JSON, one checkout against another (issue 11).

    python -m benchmarks.load_cpu --repo OLD_CHECKOUT:old --repo . [--json-mb 130] [--rounds 3]

Builds one JSON-heavy release file the way ``make bench`` section 3 does (a generated
release's artifacts repeated under new variant names until ``--json-mb`` of JSON) with this
checkout's writer, and a copy rewritten the way spool files were written before issue 11
(zstd level 3, dictionary and statistics on every column; same rows and footer).  Then, in
alternating rounds, each ``--repo`` checkout loads it (``REPO:old`` takes the old-format
copy) with its own ``etl.load.load_spool`` in a process of its own (``PYTHONPATH=REPO``),
into a database of its own created by that checkout's migrations, and prints the process's
CPU-seconds inside the call (all threads; no interpreter start, no imports) per GB of JSON.
A checkout is made with ``git worktree add /tmp/old <commit>``.

Each round also measures the *floor* (this checkout, same file, same kind of process): the
client CPU of only what cannot be avoided, Parquet reading the JSON columns (decompress
and decode) plus a binary COPY of the same documents, already in memory as bytes, into a
temporary ``jsonb`` table.  The loader's CPU above the floor is what its own work costs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
from psycopg import sql

from benchmarks import spoolfiles
from benchmarks.harness import DEFAULT_SERVER, REPO, generate

GB = 1e9

_CHILD = """
import json, shutil, sys, time
from pathlib import Path
import psycopg
from etl.load import load_spool, migrate_db
from etl.spool import Spool
url, src, spool = sys.argv[1:4]
migrate_db(url, "lz4")
with psycopg.connect(url, autocommit=True) as c:
    c.execute("TRUNCATE releases, artifacts, drops, spool_files CASCADE")
    c.execute("CHECKPOINT")
shutil.rmtree(spool, ignore_errors=True)
shutil.copytree(src, spool)
c0, t0 = time.process_time(), time.perf_counter()
rep = load_spool(Spool(spool), url)
cpu, wall = time.process_time() - c0, time.perf_counter() - t0
print(json.dumps({"cpu_s": cpu, "wall_s": wall, "json_bytes": rep.json_bytes, "ok": rep.ok}))
"""

_FLOOR = """
import json, sys, time
import psycopg, pyarrow.parquet as pq  # pyarrow first: the floor keeps pyarrow's allocator
from etl.db.copystream import JSON_COLUMNS, SIGNATURE, TRAILER
url, path = sys.argv[1:3]
cols = list(JSON_COLUMNS)
pf = pq.ParquetFile(path)
docs = [v.encode() for i in range(pf.num_row_groups)
        for c, vs in pf.read_row_group(i, columns=cols).to_pydict().items() for v in vs if v]
c0 = time.process_time()
pf = pq.ParquetFile(path)
for i in range(pf.num_row_groups):  # one row group at a time, as the loader reads
    pf.read_row_group(i, columns=cols, use_threads=False)
read = time.process_time() - c0
with psycopg.connect(url, autocommit=True) as conn:
    conn.execute("CREATE TEMP TABLE floor_docs (doc jsonb)")
    c0 = time.process_time()
    with conn.cursor().copy("COPY floor_docs (doc) FROM STDIN (FORMAT BINARY)") as cp:
        cp.write(SIGNATURE)
        for d in docs:  # one field: its length, jsonb's version byte 1, the text
            cp.write((1).to_bytes(2, "big") + (len(d) + 1).to_bytes(4, "big") + b"\\x01")
            cp.write(d)
        cp.write(TRAILER)
    send = time.process_time() - c0
print(json.dumps({"read_s": read, "send_s": send, "json_bytes": sum(map(len, docs))}))
"""


def floor(url: str, path: Path) -> dict[str, float]:
    """Client CPU-seconds of the floor (see the module's docstring) in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", _FLOOR, url, str(path)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"floor: {done.stderr[-2000:]}")
    res: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return res


def old_format(src: Path, dst: Path) -> None:
    """Rewrite every ready file as spool files were written before issue 11."""
    (dst / "ready").mkdir(parents=True)
    for path in sorted((src / "ready").glob("*.parquet")):
        pf = pq.ParquetFile(path)
        out = dst / "ready" / path.name
        with pq.ParquetWriter(out, pf.schema_arrow, compression="zstd", compression_level=3) as w:
            for i in range(pf.num_row_groups):
                w.write_table(pf.read_row_group(i), row_group_size=1)
            w.add_key_value_metadata(
                {k.decode(): v.decode() for k, v in (pf.metadata.metadata or {}).items()
                 if k.startswith(b"wheels_etl.")}
            )  # fmt: skip


def _drop(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(drop.format(sql.Identifier(name)))


def _db(server: str, name: str) -> str:
    _drop(server, name)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(server, dbname=name)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", action="append", required=True, help="checkout[:old]")
    ap.add_argument("--json-mb", type=float, default=130.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--server-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER))
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="wetl-load-cpu-"))
    try:
        generate(work / "src", 1, {"artifacts": 4, "packages": 3000, "drops": 300}, seed=3)
        info = spoolfiles.big_release(str(work / "src"), str(work / "new"), int(args.json_mb * 1e6))
        old_format(work / "new", work / "old")
        repos = [(r.rpartition(":")[0] or r, r.endswith(":old")) for r in args.repo]
        urls = [_db(args.server_url, f"wetl_load_cpu_{i}") for i in range(len(repos))]
        cpu: dict[int, list[float]] = {i: [] for i in range(len(repos))}
        floors: list[float] = []
        for r in range(args.rounds):
            fl = floor(urls[-1], Path(info["path"]))
            floors.append(fl["read_s"] + fl["send_s"])
            print(f"round {r}: floor: read {fl['read_s']:.3f} + send {fl['send_s']:.3f} CPU-s"
                  f" = {floors[-1] / (fl['json_bytes'] / GB):.2f} s/GB")  # fmt: skip
            for i in [(r + k) % len(repos) for k in range(len(repos))]:
                repo, old = repos[i]
                src = work / ("old" if old else "new")
                env = {**os.environ, "PYTHONPATH": str(Path(repo).resolve())}
                done = subprocess.run(
                    [sys.executable, "-c", _CHILD, urls[i], str(src), str(work / "spool")],
                    env=env, capture_output=True, text=True, check=False,
                )  # fmt: skip
                if done.returncode != 0:
                    raise SystemExit(f"{repo}: {done.stderr[-2000:]}")
                res = json.loads(done.stdout.strip().splitlines()[-1])
                cpu[i].append(res["cpu_s"])
                per_gb = res["cpu_s"] / (res["json_bytes"] / GB)
                tag = f"{repo}{' (old format)' if old else ''}"
                print(f"round {r}: {tag}: {res['cpu_s']:.3f} CPU-s = {per_gb:.2f} s/GB")
        gb = info["json_bytes"] / GB
        for i, (repo, old) in enumerate(repos):
            med = statistics.median(cpu[i])
            print(f"median {repo}{' (old format)' if old else ''}: {med:.3f} CPU-s, {med / gb:.2f}"
                  f" s/GB of JSON ({info['json_bytes'] / 1e6:.0f} MB)")  # fmt: skip
        med_floor = statistics.median(floors)
        print(f"median floor: {med_floor:.3f} CPU-s, {med_floor / gb:.2f} s/GB of JSON")
        if len(repos) == 2:
            a, b = (statistics.median(cpu[i]) for i in (0, 1))
            print(f"second / first: {b / a:.2f}")
        for i in range(len(repos)):
            _drop(args.server_url, f"wetl_load_cpu_{i}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
