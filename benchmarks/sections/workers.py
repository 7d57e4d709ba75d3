"""Section 5: Celery workers (``wheels-etl worker``) vs the single-process CLI on the same
data: end-to-end wall time and peak RSS per process (issue 12; measured by
:mod:`benchmarks.workers`, which needs Redis on 127.0.0.1:6379)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import workers
from benchmarks.harness import Bench
from benchmarks.mdtable import fmt, median, table
from benchmarks.sections import Metric, Rendered, Section


def measure(bench: Bench) -> dict[str, Any]:
    cfg = bench.cfg
    return workers.run_section(
        bench.server_url, cfg.workers_releases, cfg.workers_counts, cfg.workers_rounds
    )


def render(data: dict[str, Any], out_dir: Path) -> Rendered:
    title = "## 5. Celery workers vs the CLI"
    if "runs" not in data:
        return Rendered(body=[title, "", f"Section failed: `{data.get('error')}`", ""])
    runs: dict[str, list[dict[str, Any]]] = data["runs"]
    cli = median([r["seconds"] for r in runs.get("cli", [])])
    rows, metrics = [], {}
    for name, recs in runs.items():
        wall = median([r["seconds"] for r in recs])
        rss = max(r["peak_rss_mb"] for r in recs)
        speed_up = cli / wall if wall else float("nan")
        rows.append([name, fmt(wall), fmt(speed_up, 2), fmt(rss, 0), str(len(recs))])
        if name != "cli":
            key = f"workers-{name.split('x')[-1]}-speedup"
            metrics[key] = Metric(f"CLI wall / {name} wall (speed-up)", speed_up, "x", "higher")
            metrics[f"workers-{name.split('x')[-1]}-rss"] = Metric(
                f"{name}: peak RSS of one worker", rss, "MB", "lower"
            )
    shape = data.get("shape", {})
    body = [
        title,
        "",
        f"{data.get('releases')} releases x {shape.get('artifacts')} artifacts"
        f" ({shape.get('packages')} packages per graph, {shape.get('drops')} wheels per"
        " artifact), local spool, Redis broker, HTTP source on this machine, a fresh database"
        " per run. *cli* = `wheels-etl extract` then `wheels-etl load`; *celery xN* = N"
        " `wheels-etl worker -P solo` processes, ready before the clock starts, then"
        " `wheels-etl enqueue --wait` (`benchmarks/workers.py`).",
        "",
        table(
            ["run", "wall s (median)", "CLI wall / wall", "peak RSS per process MB", "runs"],
            rows,
        ),
        "",
    ]
    return Rendered(body=body, metrics=metrics)


SECTION = Section(name="workers", order=50, measure=measure, render=render)
