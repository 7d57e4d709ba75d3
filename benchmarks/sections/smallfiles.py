"""Section 2b: load vs the server ceiling on small files (issue 11's "quick sizes").

The quick configuration's load data, whatever the configuration: a few release files of
well under 1 MB, where what a run and each file cost besides the COPY (connecting, the
schema check, listing the spool, claims, the ledger, COMMIT) weighs most.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from benchmarks import benchdb
from benchmarks.harness import QUICK, Bench, generate
from benchmarks.mdtable import MB, Target, fmt, med, median, ratios, table
from benchmarks.sections import Rendered, Section, target_metrics
from benchmarks.sections.load import LOAD_LABELS

#: Issue 11: >= 0.60 of the ceiling on small files (0.24 when the issue was filed).
SMALL_TARGET = 0.60
NAMES = ("ceiling-lz4", "etl-w1-lz4")  # what Bench.vs_ceiling measures


def measure(bench: Bench) -> dict[str, Any]:
    tree = bench.work / "src-load-small"
    gen = generate(tree, QUICK.load_releases, QUICK.load_shape, seed=5)
    sp = bench.work / "spool-load-small"
    totals = bench.extract_spool(tree, sp, "small-files dataset")
    url = bench.db("small", "lz4")
    rounds = max(3, bench.cfg.load_rounds)
    runs = bench.vs_ceiling(url, bench.dbname("small"), sp, rounds, "small files")["runs"]
    benchdb.reset_tables(url, checkpoint=False)
    for d in (sp, tree):
        shutil.rmtree(d, ignore_errors=True)
    return {"totals": totals, "runs": runs, "source": gen}


def render(data: dict[str, Any], out_dir: Path) -> Rendered:
    runs, tot = data.get("runs", {}), data.get("totals", {})
    if not runs or not tot:
        err = data.get("error")
        return Rendered(body=["## 2b. Load on small files", "", f"Section failed: `{err}`", ""])
    jmb = tot["json_bytes"] / MB
    per_file = tot["file_bytes"] / max(1, tot["files"]) / MB
    rows = []
    for name in NAMES:
        recs = runs.get(name, [])
        rows.append(
            [
                LOAD_LABELS[name],
                fmt(med(recs, "wall_s"), 2),
                " / ".join(fmt(r["wall_s"], 2) for r in recs),
                fmt(jmb / med(recs, "wall_s")),
                fmt(med(recs, "cpu_s"), 2),
                fmt(median(ratios(runs, "ceiling-lz4", name)), 2),
            ]
        )
    ratio = median(ratios(runs, "ceiling-lz4", "etl-w1-lz4"))
    targets = [
        Target(
            "load-vs-ceiling-small",
            f"same, small files ({tot['files']} files of {per_file:.2f} MB, the quick sizes)",
            ratio,
            ">=",
            SMALL_TARGET,
            note=f"{fmt(med(runs['etl-w1-lz4'], 'wall_s'), 2)} vs"
            f" {fmt(med(runs['ceiling-lz4'], 'wall_s'), 2)} s",
        )
    ]
    header = ["method", "wall s (median)", "each run", "JSON MB/s", "client CPU s", "/ ceiling"]
    body = [
        "## 2b. Load on small files",
        "",
        f"The quick configuration's load data in every configuration: {tot['files']} spool"
        f" files of {per_file:.2f} MB ({jmb:.1f} MB of JSON, {tot['drops']:,} drops), where"
        " what a run and each file cost besides the COPY weighs most. Same method as"
        " section 2 (`load_spool` timed from the call, against the server's own COPY of the"
        " same rows into the same lz4 tables), alternating order.",
        "",
        table(header, rows),
        "",
    ]
    return Rendered(targets, body, target_metrics(targets))


SECTION = Section(name="smallfiles", order=25, measure=measure, render=render)
