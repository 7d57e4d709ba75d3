"""Benchmark harness: ``python -m benchmarks.run [--quick]`` writes benchmarks/REPORT.md.

Every measured thing runs in its own process (``benchmarks.measure``); every comparison is
a ratio of two runs taken in the same round, and the report quotes medians over rounds.
The machine is shared, so wall times are noisy; peak RSS and CPU seconds are not.

Sections (``benchmarks/sections/``, one module each; ``--only a,b,…`` to run a subset):

* ``extract``  peak RSS of ``wheels-etl extract`` vs the two baselines at three sizes;
* ``load``     load throughput vs the server ceiling, executemany, and the choices
               (lz4 vs pglz, workers, COPY text vs binary, Parquet codec);
* ``bigload``  peak RSS of ``wheels-etl load`` on one very large release file;
* ``dlt``      end to end vs dlt (skipped with a note when dlt is not installed).
* ``workers``  Celery workers vs the CLI, wall time and peak RSS (needs Redis).
* ``gitlab``   GitLab tarball extract vs the machine's gunzip + sha256 (issue 21).

The report also shows a before/after table against the previous run of the same
configuration (headline numbers kept in ``benchmarks/REPORT.json``).

Postgres: ``--server-url`` (default ``$BENCH_DATABASE_URL`` or
``host=127.0.0.1 port=5432 user=postgres dbname=postgres``); the harness creates its own
``wetl_bench_*`` databases and drops them at the end.  The server must run on this machine
(the ceiling has it read a file under ``--workdir``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.harness import DEFAULT_SERVER, FULL, HERE, QUICK, Bench, log
from benchmarks.machine import machine_info
from benchmarks.report import build_report, load_history, previous_numbers, record
from benchmarks.sections import Section, all_sections


def run_section(bench: Bench, res: dict[str, Any], section: Section) -> None:
    t0 = time.perf_counter()
    log(f"section {section.name}")
    try:
        out = section.measure(bench)
    except Exception as exc:
        traceback.print_exc()
        res["errors"][section.name] = f"{type(exc).__name__}: {exc}"
        out = {"error": f"{type(exc).__name__}: {exc}"}
    out["section_seconds"] = time.perf_counter() - t0
    res["sections"][section.name] = out
    log(f"section {section.name} done in {out['section_seconds']:.0f}s")


def run_all(bench: Bench, only: set[str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    res: dict[str, Any] = {"config": bench.cfg.name, "sections": {}, "errors": {}}
    res["machine"] = machine_info(bench.server_url)
    res["started"] = datetime.now(UTC).isoformat(timespec="seconds")
    for section in all_sections():
        if not only or section.name in only:
            run_section(bench, res, section)
    res["total_seconds"] = time.perf_counter() - t0
    res["machine"]["loadavg_end"] = os.getloadavg()
    return res


def write_report(res: dict[str, Any], out: Path) -> None:
    """REPORT.md with a before/after table; REPORT.json beside it gets this run's numbers."""
    history_path = out.with_suffix(".json")
    history = load_history(history_path)
    out.parent.mkdir(parents=True, exist_ok=True)  # --out in a folder not made yet
    report = build_report(res, out.parent, previous_numbers(history, res))
    out.write_text(report.text)
    history_path.write_text(json.dumps(record(history, report.numbers), indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    names = ",".join(s.name for s in all_sections())
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", help="small sizes, one round (< 2 min)")
    ap.add_argument("--server-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER))
    ap.add_argument("--workdir", type=Path, default=None, help="scratch (default: a temp dir)")
    ap.add_argument("--only", default="", help=f"comma list of sections: {names}")
    ap.add_argument("--out", type=Path, default=HERE / "REPORT.md")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--from-json", type=Path, help="re-render the report from saved results")
    ap.add_argument("--load-releases", type=int, help="section load: releases (spool files)")
    ap.add_argument(
        "--load-shape", help="section load: per release, e.g. artifacts=4,packages=270,drops=460"
    )
    ap.add_argument("--load-rounds", type=int, help="section load: rounds")
    args = ap.parse_args(argv)
    if args.from_json:
        write_report(json.loads(args.from_json.read_text()), args.out)
        print(f"wrote {args.out}")
        return 0
    cfg = QUICK if args.quick else FULL
    if args.load_releases or args.load_shape or args.load_rounds:
        shape = dict(cfg.load_shape)
        for item in filter(None, (args.load_shape or "").split(",")):
            key, _, value = item.partition("=")
            shape[key.strip()] = int(value)
        cfg = dataclasses.replace(
            cfg,
            name=f"{cfg.name}-load",
            load_releases=args.load_releases or cfg.load_releases,
            load_shape=shape,
            load_rounds=args.load_rounds or cfg.load_rounds,
        )
    workdir = (
        args.workdir or Path(os.environ.get("BENCH_WORKDIR", "/tmp")) / f"wetl-bench-{os.getpid()}"
    )
    workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(cfg, args.server_url, workdir)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - {s.name for s in all_sections()}
    if unknown:
        ap.error(f"unknown section(s) {sorted(unknown)}: choose from {names}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    res: dict[str, Any] = {"errors": {"run": "did not finish"}}
    try:
        res = run_all(bench, only)
        res["command"] = (
            "python -m benchmarks.run"
            + (" --quick" if args.quick else "")
            + (f" --only {args.only}" if only else "")
            + (f" --load-releases {args.load_releases}" if args.load_releases else "")
            + (f" --load-shape {args.load_shape}" if args.load_shape else "")
            + (f" --load-rounds {args.load_rounds}" if args.load_rounds else "")
        )
        (workdir / "results.json").write_text(json.dumps(res, indent=1, default=str))
        write_report(res, args.out)
        log(f"wrote {args.out} (raw results: {workdir / 'results.json'})")
    finally:
        bench.drop_dbs()
        if not args.keep:
            keep = workdir / "results.json"
            saved = keep.read_text() if keep.exists() else None
            shutil.rmtree(workdir, ignore_errors=True)
            if saved:
                Path(f"/tmp/wetl-bench-last-{cfg.name}.json").write_text(saved)
    return 1 if res.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
