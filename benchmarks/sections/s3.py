"""Section 7: an ``s3://`` spool against a local one, in the same run (issue 20, item 3).

The measurement is :mod:`benchmarks.s3_vs_local` (also runnable on its own): the same
files extracted into and loaded from a local folder and a SeaweedFS bucket, whole
commands as a user runs them, alternating order.  Target: the ``s3://`` load at most 1.3x
the local load (median of the per-round ratios).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from benchmarks import s3_vs_local
from benchmarks.harness import Bench, log
from benchmarks.mdtable import Target, table
from benchmarks.sections import Rendered, Section, target_metrics

TARGET = 1.3


def measure(bench: Bench) -> dict[str, Any]:
    quick = bench.cfg.name == "quick"
    return s3_vs_local.measure(
        bench.work / "s3-vs-local", 5 if quick else 20, 3 if quick else 5, bench.server_url, log
    )


def render(data: dict[str, Any], out_dir: Path) -> Rendered:
    if "load_ratios" not in data:
        err = data.get("error")
        return Rendered(body=["## 7. S3 spool vs local spool", "", f"Section failed: `{err}`", ""])
    ratio = statistics.median(data["load_ratios"])
    targets = [
        Target(
            "s3_vs_local_load",
            f"`s3://` spool load / local spool load ({data['files']} files, whole command)",
            ratio,
            "<=",
            TARGET,
        )
    ]
    rows = []
    for kind, runs in data["runs"].items():
        for command in s3_vs_local.COMMANDS:
            walls = [r[command][0] for r in runs]
            rows.append(
                [
                    kind,
                    command,
                    f"{statistics.median(walls):.2f}",
                    " / ".join(f"{w:.2f}" for w in walls),
                    str(max(r[command][1] for r in runs)),
                ]
            )
    body = [
        "## 7. S3 spool vs local spool",
        "",
        f"The same {data['files']} release files (2 products) extracted over HTTP into, and"
        " loaded from, a local folder and a SeaweedFS bucket on this machine: each command"
        " timed whole (start-up included), a fresh database each time, alternating order,"
        f" {data['rounds']} rounds.  Per-round load ratios (s3 / local): "
        + ", ".join(f"{r:.2f}" for r in data["load_ratios"])
        + f"; median {ratio:.2f} (target <= {TARGET}).  Extract ratio, median:"
        f" {statistics.median(data['extract_ratios']):.2f}.",
        "",
        table(["spool", "command", "wall s (median)", "each round", "peak RSS MB"], rows),
        "",
    ]
    return Rendered(targets, body, target_metrics(targets))


SECTION = Section(name="s3", order=70, measure=measure, render=render)
