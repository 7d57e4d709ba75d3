"""On-demand: extract's documents per CPU-second and peak RSS (issue 11 item 4).

    python -m benchmarks.extract_cpu [--releases 24] [--rounds 3] [--keep DIR]

Generates a source (``tests.support.gen``, default shape: 4 artifacts per release,
300 packages per graph, 300 wheels per artifact) once, then runs ``wheels-etl extract
--full`` on it as a child process ``--rounds`` times (a folder source: no HTTP server
competes for the CPU), and reports for each round the child's CPU-seconds (user + system,
``getrusage``), MB of documents per CPU-second, wall time and peak RSS, then the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.gen import GenSpec, generate

REPO = Path(__file__).resolve().parents[1]
MB = 1e6


def _document_bytes(root: Path) -> int:
    """Bytes of every document extract reads (release.json and the artifact files)."""
    total = 0
    for path in root.rglob("*"):
        if path.is_file() and path.parent != root and not path.name.startswith("releases"):
            total += path.stat().st_size
    return total


def _one_round(source: Path, spool: Path, workers: int, repo: Path) -> dict[str, float]:
    shutil.rmtree(spool, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    env["PYTHONPATH"] = str(repo)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "etl", "extract", "--full", "--source", str(source),
         "--spool", str(spool), "--workers", str(workers)],
        env=env, capture_output=True, text=True, check=False, cwd=repo,
    )  # fmt: skip
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"extract failed ({done.returncode}):\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"cpu_s": cpu, "wall_s": wall, "peak_rss_mb": after.ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--releases", type=int, default=24, help="releases per product (2)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--keep", type=Path, help="generate into (or reuse) this folder")
    ap.add_argument(
        "--repo", type=Path, default=REPO, help="the checkout whose etl/ runs (a before/after)"
    )
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="wheels-etl-extract-cpu-"))
    try:
        source = args.keep or tmp / "src"
        if not (source / "index.json").exists():
            generate(source, GenSpec(products=2, releases=args.releases))
        doc_mb = _document_bytes(source) / MB
        rounds = [
            _one_round(source, tmp / "spool", args.workers, args.repo) for _ in range(args.rounds)
        ]
        for i, r in enumerate(rounds, 1):
            print(
                f"round {i}: {r['cpu_s']:.2f} CPU-s, {doc_mb / r['cpu_s']:.1f} MB/CPU-s, "
                f"{r['wall_s']:.2f} s wall, peak RSS {r['peak_rss_mb']:.0f} MB (max so far)"
            )
        cpu = statistics.median(r["cpu_s"] for r in rounds)
        summary = {
            "documents_mb": round(doc_mb, 1),
            "releases": 2 * args.releases,
            "cpu_s_median": round(cpu, 2),
            "mb_per_cpu_s": round(doc_mb / cpu, 1),
            "wall_s_median": round(statistics.median(r["wall_s"] for r in rounds), 2),
            "peak_rss_mb": round(max(r["peak_rss_mb"] for r in rounds)),
        }
        print(json.dumps(summary))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
