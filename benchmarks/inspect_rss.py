"""Peak RSS of ``inspect --json --sql "select * from artifacts"`` against spool size.

Generates a source (``tests.support.gen``), extracts it once, then runs the query as a
child process over the first N spool files for a few N and prints the child's peak RSS::

    .venv/bin/python -m benchmarks.inspect_rss --releases 45 --products 2

Streaming means the peak stays near the fixed cost of DuckDB + Arrow (plus a little per
file for its footer) instead of growing with the data.  Measured 2026-12-02 (2 cores,
90 releases, 360 artifacts, 163 MB of source JSON, 33 MB of spool):

    ==================  =========  =========
    spool files         before     after
    ==================  =========  =========
    20                  --         247 MB
    90                  1148 MB    326 MB
    ==================  =========  =========

("before": the whole result fetched then dumped; "after": Arrow record batches of 256 rows
written as they arrive.)
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.gen import GenSpec, generate


def _peak_rss_mb(spool: Path) -> float:
    env = {**os.environ, "ETL_SPOOL_DIR": str(spool)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(
        [sys.executable, "-m", "etl", "inspect", "--json", "--sql", "select * from artifacts"],
        env=env,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    assert done.returncode == 0
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(after, before) / 1024  # ru_maxrss of the largest child so far (KiB)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--products", type=int, default=2)
    ap.add_argument("--releases", type=int, default=45)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="wetl-inspect-rss-") as tmp:
        root = Path(tmp)
        generate(root / "src", GenSpec(products=args.products, releases=args.releases))
        spool = root / "spool"
        env = {**os.environ, "ETL_SOURCE_URL": str(root / "src"), "ETL_SPOOL_DIR": str(spool)}
        subprocess.run([sys.executable, "-m", "etl", "extract", "-q"], env=env, check=True)
        files = sorted((spool / "ready").iterdir())
        # sizes ascending: RUSAGE_CHILDREN keeps the maximum, so each run must be the largest
        for n in sorted({max(1, len(files) // 4), len(files)}):
            part = root / f"part{n}"
            for sub in ("tmp", "ready", "loading", "loaded", "failed", "state"):
                (part / sub).mkdir(parents=True)
            for f in files[:n]:
                os.link(f, part / "ready" / f.name)
            print(f"{n:5d} spool files: peak RSS {_peak_rss_mb(part):7.0f} MB", flush=True)


if __name__ == "__main__":
    main()
