"""Section 1: peak RSS of ``wheels-etl extract`` vs the two baselines at three sizes."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from benchmarks import benchdb, plots
from benchmarks.harness import ETL, Bench, generate, log
from benchmarks.mdtable import MB, Target, fmt, med, median, ok_runs, table
from benchmarks.profiling import profile_md
from benchmarks.sections import Rendered, Section, target_metrics
from benchmarks.sourceserver import source_server

#: Issue 11: twice the documents per CPU-second (about 10 when it was filed), and a peak
#: RSS not above what it measured (119 MB).
EXTRACT_MB_PER_CPU_S = 20.0
EXTRACT_RSS_MB = 119.0


def measure(bench: Bench) -> dict[str, Any]:
    cfg = bench.cfg
    url_db = bench.db("extract")
    dbname = bench.dbname("extract")
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {
        "wheels-etl": {},
        "accumulate-all": {},
        "per-release": {},
    }
    trees: dict[int, Any] = {}
    profile: dict[str, Any] | None = None
    for size, reps in zip(cfg.extract_sizes, cfg.extract_repeats, strict=True):
        tree = bench.work / f"src-{size}"
        trees[size] = generate(tree, size, cfg.extract_shape)
        log(f"  source {size} releases: {trees[size]['bytes'] / MB:.1f} MB")
        with source_server(tree) as src:
            order = list(runs)
            for r in range(reps):
                for name in order[r % 3 :] + order[: r % 3]:
                    if name == "wheels-etl":
                        spool = bench.work / "spool-extract"
                        shutil.rmtree(spool, ignore_errors=True)
                        m = bench.m_cmd(
                            [ETL, "extract", "--source", src, "--spool", str(spool), "--full"]
                        )
                        got = len(list((spool / "ready").glob("*.parquet")))
                        shutil.rmtree(spool, ignore_errors=True)
                    else:
                        benchdb.reset_tables(url_db, checkpoint=True)
                        fn = "accumulate_all" if name == "accumulate-all" else "per_release"
                        m = bench.m_py(
                            f"benchmarks.baselines:{fn}",
                            {"source_url": src, "url": url_db},
                            db=dbname,
                        )
                        got = benchdb.table_counts(url_db)["releases"]
                    rec = m.to_dict()
                    rec["releases_done"] = got
                    if got != size:
                        rec["error"] = (rec["error"] or "") + f" ({got}/{size} releases)"
                    runs[name].setdefault(size, []).append(rec)
                    log(
                        f"  {name:<15} n={size:<5} rss={m.peak_rss_mb:7.1f} MB "
                        f"wall={m.wall_s:6.1f}s ok={m.ok and got == size}"
                    )
            if cfg.profile_always and size == cfg.extract_sizes[1]:
                spool = bench.work / "spool-extract"
                shutil.rmtree(spool, ignore_errors=True)
                argv = [ETL, "extract", "--source", src, "--spool", str(spool), "--full"]
                profile = bench.profile(argv, "extract")
                shutil.rmtree(spool, ignore_errors=True)
        shutil.rmtree(tree, ignore_errors=True)
    benchdb.reset_tables(url_db, checkpoint=False)
    return {"runs": runs, "trees": trees, "shape": cfg.extract_shape, "profile": profile}


def render(data: dict[str, Any], out_dir: Path) -> Rendered:
    targets: list[Target] = []
    body: list[str] = []
    nan = float("nan")
    ex = data
    if "runs" in ex:
        runs = ex["runs"]
        sizes = sorted({int(n) for by in runs.values() for n in by})
        rows = []
        rss: dict[str, dict[int, list[float]]] = {}
        for name, by in runs.items():
            rss[name] = {}
            for n in sizes:
                recs = by.get(str(n), by.get(n, []))
                good = ok_runs(recs)
                rss[name][n] = [r["peak_rss_mb"] for r in good]
                rows.append(
                    [
                        name,
                        str(n),
                        fmt(med(recs, "peak_rss_mb"), 0),
                        " / ".join(fmt(r["peak_rss_mb"], 0) for r in recs),
                        fmt(med(recs, "wall_s")),
                        fmt(med(recs, "cpu_s")),
                        str(len(good)) + ("" if len(good) == len(recs) else f" of {len(recs)} ok"),
                    ]
                )
        lo, hi = sizes[0], sizes[-1]

        def m(name: str, n: int) -> float:
            return median(rss.get(name, {}).get(n, []))

        hi_recs = runs["wheels-etl"].get(str(hi), runs["wheels-etl"].get(hi, []))
        doc_mb = ex["trees"].get(str(hi), ex["trees"].get(hi, {})).get("bytes", nan) / MB
        targets.append(
            Target(
                "extract-mb-per-cpu-s",
                f"extract: MB of documents per CPU-second ({hi} releases over HTTP, the"
                " whole process)",
                doc_mb / med(hi_recs, "cpu_s"),
                ">=",
                EXTRACT_MB_PER_CPU_S,
                unit="MB/CPU-s",
                note=f"{fmt(doc_mb, 0)} MB in {fmt(med(hi_recs, 'cpu_s'))} CPU-s",
            )
        )
        targets.append(
            Target(
                "extract-rss",
                f"extract peak RSS at {hi} releases",
                m("wheels-etl", hi),
                "<=",
                EXTRACT_RSS_MB,
                unit="MB",
            )
        )
        flat = m("wheels-etl", hi) / m("wheels-etl", lo)
        vs_acc = m("accumulate-all", hi) / m("wheels-etl", hi)
        targets.append(
            Target(
                "extract-flat",
                f"extract peak RSS at {hi} releases / at {lo} releases (wheels-etl)",
                flat,
                "<=",
                1.10,
                note=f"{fmt(m('wheels-etl', hi), 0)} vs {fmt(m('wheels-etl', lo), 0)} MB",
            )
        )
        targets.append(
            Target(
                "extract-vs-accumulate",
                f"accumulate-all / wheels-etl peak RSS at {hi} releases",
                vs_acc,
                ">=",
                20.0,
                note=f"{fmt(m('accumulate-all', hi), 0)} vs {fmt(m('wheels-etl', hi), 0)} MB",
            )
        )
        trees = ex.get("trees", {})
        shape = ex.get("shape", {})
        sizes_txt = ", ".join(
            f"{n} releases = {fmt(trees.get(str(n), trees.get(n, {})).get('bytes', nan) / MB)} MB"
            for n in sizes
        )
        png = plots.rss_vs_releases(rss, out_dir / "rss_vs_releases.png")
        body += [
            "## 1. Extract: peak memory vs number of releases",
            "",
            f"Source: `tests.support.gen`, one product, {shape.get('artifacts')} artifacts"
            f" per release, {shape.get('packages')} packages per graph, {shape.get('drops')}"
            f" wheels per artifact ({sizes_txt} of documents), served over HTTP by"
            " `tests/support/httpserver.SourceServer` in its own process.",
            "`wheels-etl extract --full` (CLI, default 4 fetch workers) writes the spool; the"
            " two baselines (`benchmarks/baselines.py`) fetch with plain `requests` and write"
            " the same tables with `executemany` (accumulate-all: everything at the end in one"
            " transaction; per-release: one transaction per release). Peak RSS is the"
            " process's high-water mark (`VmHWM` / `ru_maxrss`). Wall and CPU of the"
            " baselines include their Postgres writes; wheels-etl's extract does not write"
            " Postgres.",
            "",
            table(
                [
                    "approach",
                    "releases",
                    "peak RSS MB (median)",
                    "each run",
                    "wall s",
                    "CPU s",
                    "runs",
                ],
                rows,
            ),
            "",
            "![RSS vs releases](rss_vs_releases.png)" if png else "(matplotlib missing: no plot)",
            "",
        ]
        body += profile_md("Where extract's Python time goes", ex.get("profile"))
    elif ex:
        body += ["## 1. Extract", "", f"Section failed: `{ex.get('error')}`", ""]
    return Rendered(targets, body, target_metrics(targets))


SECTION = Section(name="extract", order=10, measure=measure, render=render)
