"""Section 4: end to end vs dlt (skipped with a note when dlt is not installed)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from benchmarks import benchdb, plots
from benchmarks.harness import ETL, Bench, generate, log
from benchmarks.mdtable import MB, Target, fmt, med, median, ok_runs, ratios, table
from benchmarks.sections import Rendered, Section, target_metrics
from benchmarks.sourceserver import source_server


def measure(bench: Bench) -> dict[str, Any]:
    from benchmarks import dlt_peer

    version = dlt_peer.available()
    if version is None:
        return {"skipped": "dlt is not installed (pip install '.[bench]')"}
    cfg = bench.cfg
    tree = bench.work / "src-dlt"
    gen = generate(tree, cfg.dlt_releases, cfg.dlt_shape, seed=4)
    log(f"  dlt source: {cfg.dlt_releases} releases, {gen['bytes'] / MB:.1f} MB")
    url = bench.db("dlt", "auto")
    dbname = bench.dbname("dlt")
    pipes = bench.work / "dlt-pipelines"
    runs: dict[str, list[dict[str, Any]]] = {"wheels-etl": []}
    runs.update({f"dlt {v}": [] for v in cfg.dlt_variants})
    with source_server(tree) as src:
        for r in range(cfg.dlt_repeats):
            order = list(runs)
            order = order[r % len(order) :] + order[: r % len(order)]
            for name in order:
                if name == "wheels-etl":
                    benchdb.reset_tables(url, checkpoint=True)
                    spool = bench.work / "spool-e2e"
                    shutil.rmtree(spool, ignore_errors=True)
                    e = bench.m_cmd(
                        [ETL, "extract", "--source", src, "--spool", str(spool), "--full"]
                    )
                    lo = bench.m_cmd(
                        [ETL, "load", "--spool", str(spool), "--database-url", url], db=dbname
                    )
                    counts = benchdb.table_counts(url)
                    rec = {
                        "wall_s": e.wall_s + lo.wall_s,
                        "peak_rss_mb": max(e.peak_rss_mb, lo.peak_rss_mb),
                        "cpu_s": e.cpu_s + lo.cpu_s,
                        "extract": e.to_dict(),
                        "load": lo.to_dict(),
                        "counts": counts,
                        "error": (e.error + " " + lo.error).strip(),
                    }
                    shutil.rmtree(spool, ignore_errors=True)
                else:
                    v = name.split(" ", 1)[1]
                    dlt_peer.drop_dataset(url, v, str(pipes))
                    benchdb.reset_tables(url, checkpoint=True)
                    m = bench.m_py(
                        "benchmarks.dlt_peer:run_dlt",
                        {
                            "source_url": src,
                            "url": url,
                            "variant": v,
                            "pipelines_dir": str(pipes),
                        },
                        db=dbname,
                        env=dlt_peer.variant_env(v),
                    )
                    rec = m.to_dict()
                    rec["counts"] = m.result.get("counts")
                    dlt_peer.drop_dataset(url, v, str(pipes))
                runs[name].append(rec)
                log(
                    f"  {name:<18} wall={rec['wall_s']:6.1f}s rss={rec['peak_rss_mb']:6.0f} MB"
                    f" counts={rec.get('counts')} {rec.get('error') or ''}"
                )
    benchdb.reset_tables(url, checkpoint=False)
    shutil.rmtree(pipes, ignore_errors=True)
    shutil.rmtree(tree, ignore_errors=True)
    return {
        "version": version,
        "runs": runs,
        "source_bytes": gen.get("bytes"),
        "source": gen,
        "shape": cfg.dlt_shape,
    }


def render(data: dict[str, Any], out_dir: Path) -> Rendered:
    targets: list[Target] = []
    body: list[str] = []
    nan = float("nan")
    dl = data
    if "skipped" in dl:
        body += ["## 4. End to end vs dlt", "", f"Skipped: {dl['skipped']}.", ""]
    elif "runs" in dl:
        runs = dl["runs"]
        rows = []
        e2e = []
        etl_w = med(runs.get("wheels-etl", []), "wall_s")
        etl_r = med(runs.get("wheels-etl", []), "peak_rss_mb")
        for name, recs in runs.items():
            w, rs = med(recs, "wall_s"), med(recs, "peak_rss_mb")
            steps = ""
            good = ok_runs(recs)
            if name == "wheels-etl" and good:
                steps = (
                    f"extract {fmt(median([r['extract']['wall_s'] for r in good]))} s"
                    f" ({fmt(median([r['extract']['peak_rss_mb'] for r in good]), 0)} MB),"
                    f" load {fmt(median([r['load']['wall_s'] for r in good]))} s"
                    f" ({fmt(median([r['load']['peak_rss_mb'] for r in good]), 0)} MB)"
                )
            elif good and good[0].get("result", {}).get("steps"):
                st = good[0]["result"]["steps"]
                steps = ", ".join(f"{k} {fmt(v)} s" for k, v in st.items() if k != "run")
            rows.append(
                [
                    name,
                    fmt(w),
                    fmt(w / etl_w, 2),
                    fmt(rs, 0),
                    fmt(rs / etl_r, 1),
                    fmt(med(recs, "cpu_s")),
                    steps,
                    f"{len(good)}/{len(recs)}",
                ]
            )
            e2e.append((name, w, rs))
        png = plots.e2e_bars(e2e, out_dir / "e2e_vs_dlt.png")
        dflt = runs.get("dlt defaults", [])
        targets.append(
            Target(
                "dlt-speed",
                "dlt defaults wall / wheels-etl end-to-end wall",
                median(ratios(runs, "dlt defaults", "wheels-etl")),
                ">=",
                1.0,
                note=f"{fmt(med(dflt, 'wall_s'))} s vs {fmt(etl_w)} s",
            )
        )
        targets.append(
            Target(
                "dlt-memory",
                "dlt defaults peak RSS / wheels-etl end-to-end peak RSS",
                med(dflt, "peak_rss_mb") / etl_r,
                ">=",
                5.0,
                note=f"{fmt(med(dflt, 'peak_rss_mb'), 0)} vs {fmt(etl_r, 0)} MB",
            )
        )
        body += [
            "## 4. End to end vs dlt",
            "",
            f"dlt {dl.get('version')}, same source over HTTP"
            f" ({fmt((dl.get('source_bytes') or nan) / MB)} MB of documents), rows yielded"
            " release by release with the JSON documents parsed and hinted `json` (stored as"
            " `jsonb`, like ours) into its own schema of the same database (default pglz"
            " compression; wheels-etl's tables use lz4). Source shape:"
            f" {(dl.get('source') or {}).get('releases')} releases x"
            f" {(dl.get('shape') or {}).get('artifacts')} artifacts,"
            f" {(dl.get('shape') or {}).get('packages')} packages per graph,"
            f" {(dl.get('shape') or {}).get('drops')} wheels per artifact."
            " Variants: *defaults* = `pipeline.run()` untouched; *tuned* = its documented"
            ' memory knobs (its "Optimizing dlt" docs page): `loader_file_format="csv"`,'
            " `DATA_WRITER__BUFFER_MAX_ITEMS=50`, `DATA_WRITER__FILE_MAX_ITEMS=100`, and"
            " `DATA_WRITER__DISABLE_COMPRESSION=true` (*small-buffers*, when run, = the same"
            " without the last). wheels-etl = `wheels-etl extract` then `wheels-etl load` (two"
            " processes; wall = sum, RSS = the larger).",
            "",
            table(
                [
                    "pipeline",
                    "wall s",
                    "/ wheels-etl",
                    "peak RSS MB",
                    "/ wheels-etl",
                    "CPU s",
                    "steps",
                    "ok",
                ],
                rows,
            ),
            "",
            "![end to end](e2e_vs_dlt.png)" if png else "",
            "",
        ]
    elif dl:
        body += ["## 4. End to end vs dlt", "", f"Section failed: `{dl.get('error')}`", ""]
    return Rendered(targets, body, target_metrics(targets))


SECTION = Section(name="dlt", order=40, measure=measure, render=render)
