"""Section 2b: load vs the server ceiling on small files (issue 11's "quick sizes").

The quick configuration's load data, whatever the configuration: a few release files of
well under 1 MB, where what a run and each file cost besides the COPY (connecting, the
schema check, listing the spool, claims, the ledger, COMMIT) weighs most.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from benchmarks import benchdb, ceiling, spoolfiles
from benchmarks.harness import ETL, QUICK, Bench, generate, log
from benchmarks.mdtable import MB, Target, fmt, med, median, ratios, table
from benchmarks.sections import Rendered, Section, target_metrics
from benchmarks.sections.load import LOAD_LABELS

#: Issue 11: >= 0.60 of the ceiling on small files (0.24 when the issue was filed).
SMALL_TARGET = 0.60
NAMES = ("ceiling-lz4", "etl-w1-lz4")


def measure(bench: Bench) -> dict[str, Any]:
    tree = bench.work / "src-load-small"
    gen = generate(tree, QUICK.load_releases, QUICK.load_shape, seed=5)
    sp = bench.work / "spool-load-small"
    shutil.rmtree(sp, ignore_errors=True)
    ext = bench.m_cmd([ETL, "extract", "--source", str(tree), "--spool", str(sp), "--full"])
    if not ext.ok:
        raise RuntimeError(f"extract of the small-files dataset failed: {ext.error}")
    totals = spoolfiles.spool_totals(spoolfiles.spool_files(sp))
    copy_dir = Path("/tmp") / f"wetl-bench-copy-small-{os.getpid()}"
    rendered = ceiling.render_copy_files(sp, copy_dir)
    url, dbn = bench.db("small", "lz4"), bench.dbname("small")
    spool_run = bench.work / "spool-small-run"
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in NAMES}
    for r in range(max(3, bench.cfg.load_rounds)):
        for name in sorted(runs, reverse=bool(r % 2)):
            benchdb.reset_tables(url, checkpoint=True)
            os.sync()
            if name == "ceiling-lz4":
                kw: dict[str, Any] = {"url": url, "paths": rendered["paths"]}
                m = bench.m_py("benchmarks.ceiling:server_copy", kw, db=dbn)
            else:
                fresh = spoolfiles.fresh_spool(sp / "ready", spool_run)
                kw = {"url": url, "spool_dir": str(fresh), "workers": 1}
                m = bench.m_py("benchmarks.ceiling:etl_load", kw, db=dbn)
            runs[name].append(m.to_dict())
            log(f"  {name} (small files): wall={m.wall_s:.2f}s cpu={m.cpu_s:.2f} ok={m.ok}")
    benchdb.reset_tables(url, checkpoint=False)
    for d in (copy_dir, sp, spool_run, tree):
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
