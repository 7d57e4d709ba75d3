"""On-demand: extract's documents per CPU-second over HTTP, and peak RSS (issue 11 item 4).

    python -m benchmarks.extract_http_cpu [--releases 100] [--rounds 3] [--repo DIR ...]

Like :mod:`benchmarks.extract_cpu`, but the way ``make bench`` section 1 runs extract: the
source is generated once in the bench's shape (one product, 4 artifacts per release, 150
packages per graph, 150 wheels per artifact) and served over HTTP by
``tests.support.httpserver.SourceServer`` in its own process
(:mod:`benchmarks.sourceserver`); ``wheels-etl extract --full`` runs as a child of the
measuring wrapper (:func:`benchmarks.measure.run_command`, so peak RSS is the child's own).
Each round reports the extract process's CPU-seconds (user + system, ``getrusage``), MB of
documents per CPU-second (the generator's byte count, as the bench report uses), wall time
and peak RSS; then the medians.  With several ``--repo`` checkouts (a before/after) the
rounds alternate between them, in a rotating order, against the same server.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.harness import generate
from benchmarks.measure import run_command
from benchmarks.sourceserver import source_server

REPO = Path(__file__).resolve().parents[1]
MB = 1e6
SHAPE = {"artifacts": 4, "packages": 150, "drops": 150}


def _one_round(url: str, spool: Path, repo: Path, workers: int | None) -> dict[str, float]:
    shutil.rmtree(spool, ignore_errors=True)
    env = {"PYTHONPATH": str(repo)}
    argv = [sys.executable, "-m", "etl", "extract", "--full", "--source", url]
    argv += ["--spool", str(spool)]
    if workers is not None:
        argv += ["--workers", str(workers)]
    m = run_command(argv, env=env, cwd=str(repo))
    if not m.ok:
        raise SystemExit(f"extract failed with {repo}: {m.error}")
    done = len(list((spool / "ready").glob("*.parquet")))
    shutil.rmtree(spool, ignore_errors=True)
    return {"cpu_s": m.cpu_s, "wall_s": m.wall_s, "peak_rss_mb": m.peak_rss_mb, "files": done}


def _summary(doc_mb: float, rounds: list[dict[str, float]]) -> dict[str, Any]:
    cpu = statistics.median(r["cpu_s"] for r in rounds)
    return {
        "documents_mb": round(doc_mb, 1),
        "cpu_s_median": round(cpu, 2),
        "mb_per_cpu_s": round(doc_mb / cpu, 1),
        "wall_s_median": round(statistics.median(r["wall_s"] for r in rounds), 2),
        "peak_rss_mb_median": round(statistics.median(r["peak_rss_mb"] for r in rounds)),
        "peak_rss_mb_max": round(max(r["peak_rss_mb"] for r in rounds)),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--releases", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, help="extract --workers (default: extract's own)")
    ap.add_argument("--keep", type=Path, help="generate into (or reuse) this folder")
    ap.add_argument(
        "--repo",
        type=Path,
        action="append",
        help="a checkout whose etl/ runs (repeat for a before/after; default: this one)",
    )
    args = ap.parse_args(argv)
    repos: list[Path] = [p.resolve() for p in args.repo] if args.repo else [REPO]
    tmp = Path(tempfile.mkdtemp(prefix="wheels-etl-extract-http-cpu-"))
    try:
        source = args.keep or tmp / "src"
        meta = source / "bench-meta.json"
        if not meta.exists():
            info = generate(source, args.releases, SHAPE)
            meta.write_text(json.dumps(info))
        doc_mb = json.loads(meta.read_text())["bytes"] / MB
        print(f"source: {args.releases} releases, {doc_mb:.1f} MB of documents", flush=True)
        results: dict[Path, list[dict[str, float]]] = {r: [] for r in repos}
        with source_server(source) as url:
            for i in range(args.rounds):
                for repo in repos[i % len(repos) :] + repos[: i % len(repos)]:
                    r = _one_round(url, tmp / "spool", repo, args.workers)
                    results[repo].append(r)
                    print(
                        f"round {i + 1} {repo}: {r['cpu_s']:.2f} CPU-s, "
                        f"{doc_mb / r['cpu_s']:.1f} MB/CPU-s, {r['wall_s']:.2f} s wall, "
                        f"peak RSS {r['peak_rss_mb']:.0f} MB, {r['files']:.0f} files",
                        flush=True,
                    )
        for repo in repos:
            print(json.dumps({"repo": str(repo), **_summary(doc_mb, results[repo])}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
