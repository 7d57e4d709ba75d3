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


COLUMNS = ["shape", "spool", "command", "wall s (median)", "each round", "CPU s"]
COLUMNS += ["S3 server CPU s", "peak RSS MB"]

#: Target ids per shape (the small one keeps the id earlier reports used).
IDS = {"small": "s3_vs_local_load", "release": "s3_vs_local_load_release_sized"}


def measure(bench: Bench) -> dict[str, Any]:
    quick = bench.cfg.name == "quick"
    releases, rounds = (5, 3) if quick else (20, 5)
    return {
        shape: s3_vs_local.measure(
            bench.work / "s3-vs-local", releases, rounds, bench.server_url, log, shape
        )
        for shape in s3_vs_local.SHAPES
    }


def _shape(data: dict[str, Any]) -> tuple[Target, str, list[list[str]]]:
    """One shape's target, its sentence and its table rows."""
    ratio = statistics.median(data["load_ratios"])
    what = f"{data['files']} files, {data['json_mb']} MB of JSON, whole command"
    name = "`s3://` spool load / local spool load" if data["shape"] == "small" else "same"
    target = Target(IDS[data["shape"]], f"{name} ({what})", ratio, "<=", TARGET)
    rows = []
    for kind, runs in data["runs"].items():
        for command in s3_vs_local.COMMANDS:
            walls = [r[command][0] for r in runs]
            rows.append([
                data["shape"], kind, command, f"{statistics.median(walls):.2f}",
                " / ".join(f"{w:.2f}" for w in walls), _median(runs, command, 2),
                _median(runs, command, 3) if kind == "s3" else "",
                str(max(r[command][1] for r in runs)),
            ])  # fmt: skip
    text = (
        f"**{data['shape']}** ({what}): per-round load ratios (s3 / local) "
        + ", ".join(f"{r:.2f}" for r in data["load_ratios"])
        + f"; median {ratio:.2f} (target <= {TARGET}); extract ratio, median"
        f" {statistics.median(data['extract_ratios']):.2f}."
    )
    return target, text, rows


def _median(runs: list[dict[str, list[float]]], command: str, field: int) -> str:
    """The median of one field of a command's timings ("" in results from before it)."""
    values = [r[command][field] for r in runs if len(r[command]) > field]
    return f"{statistics.median(values):.2f}" if values else ""


def render(data: dict[str, Any], out_dir: Path) -> Rendered:
    if "load_ratios" in data:  # results of one shape, saved before there were two
        data = {"small": {"shape": "small", "json_mb": "?", **data}}
    shapes = [d for d in data.values() if isinstance(d, dict) and "load_ratios" in d]
    if not shapes:
        err = data.get("error")
        return Rendered(body=["## 7. S3 spool vs local spool", "", f"Section failed: `{err}`", ""])
    targets, texts, rows = [], [], []
    for d in shapes:
        target, text, shape_rows = _shape(d)
        targets.append(target)
        texts += [text, ""]
        rows += shape_rows
    body = [
        "## 7. S3 spool vs local spool",
        "",
        "The same release files (2 products) extracted over HTTP into, and loaded from, a"
        " local folder and a SeaweedFS bucket on this machine: each command timed whole"
        " (start-up included), a fresh database each time, alternating order,"
        f" {shapes[0]['rounds']} rounds per shape.  CPU is the command's own (user +"
        " system); the S3 server's is what SeaweedFS used meanwhile, on the same cores as"
        " Postgres and the command.",
        "",
        *texts,
        table(COLUMNS, rows),
        "",
    ]
    return Rendered(targets, body, target_metrics(targets))


SECTION = Section(name="s3", order=70, measure=measure, render=render)
