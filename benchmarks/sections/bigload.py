"""Section 3: peak RSS of ``wheels-etl load`` on one very large release file."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from benchmarks import benchdb, spoolfiles
from benchmarks.harness import ETL, Bench, generate, log
from benchmarks.mdtable import MB, Target, fmt, med, median, ok_runs, ratios, table
from benchmarks.sections import Rendered, Section, target_metrics
from benchmarks.sections.load import LOAD_LABELS

#: Issue 11's targets: the JSON-heavy ratio it measured (1.43) kept; half the client CPU
#: per GB of JSON of the loader before that work (4.3 s/GB, commit 71f1656); peak RSS not
#: above what it measured (180 MB).
JSON_HEAVY_TARGET = 1.43
CPU_PER_GB_TARGET = 2.15
LOAD_RSS_TARGET = 180.0


def measure(bench: Bench) -> dict[str, Any]:
    cfg = bench.cfg
    tree = bench.work / "src-big"
    generate(
        tree,
        1,
        {"artifacts": 4, "packages": cfg.big_packages, "drops": 300},
        seed=3,
    )
    url = bench.db("big", "auto")
    out: dict[str, Any] = {"files": {}, "runs": {}}
    spool_run = bench.work / "spool-big-run"
    for label, target in zip(("small", "big"), cfg.big_json_bytes, strict=True):
        sp = bench.work / f"spool-big-{label}"
        shutil.rmtree(sp, ignore_errors=True)
        info = spoolfiles.big_release(str(tree), str(sp), target)
        out["files"][label] = info
        log(
            f"  {label}: {info['artifacts']} artifacts, {info['json_bytes'] / MB:.0f} MB JSON,"
            f" file {info['file_bytes'] / MB:.0f} MB"
        )
        out["runs"][label] = []
        for _ in range(cfg.big_repeats):
            benchdb.reset_tables(url, checkpoint=True)
            fresh = spoolfiles.fresh_spool(sp / "ready", spool_run)
            m = bench.m_cmd(
                [ETL, "load", "--spool", str(fresh), "--database-url", url],
                db=bench.dbname("big"),
            )
            rec = m.to_dict()
            counts = benchdb.table_counts(url)
            rec["counts"] = counts
            if counts["artifacts"] != info["artifacts"]:
                rec["error"] = (rec["error"] or "") + f" wrong counts {counts}"
            out["runs"][label].append(rec)
            log(f"  load {label}: rss={m.peak_rss_mb:.0f} MB wall={m.wall_s:.1f}s ok={m.ok}")
        if label == "small":
            rounds = max(4, cfg.big_repeats)
            out["vs_ceiling"] = bench.vs_ceiling(
                url, bench.dbname("big"), sp, rounds, "one big release"
            )
        shutil.rmtree(sp, ignore_errors=True)
    benchdb.reset_tables(url, checkpoint=False)
    shutil.rmtree(spool_run, ignore_errors=True)
    shutil.rmtree(tree, ignore_errors=True)
    return out


def render(data: dict[str, Any], out_dir: Path) -> Rendered:
    targets: list[Target] = []
    body: list[str] = []
    nan = float("nan")
    bl = data
    if "runs" in bl:
        files = bl["files"]
        rows = []
        for label in ("small", "big"):
            recs = bl["runs"].get(label, [])
            info = files.get(label, {})
            w = med(recs, "wall_s")
            rows.append(
                [
                    label,
                    str(info.get("artifacts")),
                    fmt(info.get("json_bytes", nan) / MB, 0),
                    fmt(info.get("file_bytes", nan) / MB, 0),
                    fmt(med(recs, "peak_rss_mb"), 0),
                    " / ".join(fmt(r["peak_rss_mb"], 0) for r in recs),
                    fmt(w),
                    fmt(info.get("json_bytes", nan) / MB / w),
                ]
            )
        big = med(bl["runs"].get("big", []), "peak_rss_mb")
        small = med(bl["runs"].get("small", []), "peak_rss_mb")
        targets.append(
            Target(
                "load-rss",
                f"`wheels-etl load` peak RSS, one release of"
                f" {files.get('big', {}).get('json_bytes', nan) / MB:,.0f} MB of JSON",
                big,
                "<=",
                LOAD_RSS_TARGET,
                unit="MB",
            )
        )
        targets.append(
            Target(
                "load-rss-flat",
                "same / peak RSS on a release 8x smaller (must not grow)",
                big / small,
                "<=",
                1.10,
            )
        )
        body += [
            "## 3. Load memory on one very large release",
            "",
            "One spool file per size, written by the spool's own `ReleaseWriter`: the"
            " artifacts of a generated release (parsed as extract parses them) repeated under"
            " new variant names until the JSON total is reached. Loaded with the CLI"
            " (`wheels-etl load --spool … --database-url …`), peak RSS from `getrusage`.",
            "",
            table(
                [
                    "file",
                    "artifacts",
                    "JSON MB",
                    "spool MB",
                    "peak RSS MB (median)",
                    "each run",
                    "wall s",
                    "JSON MB/s",
                ],
                rows,
            ),
            "",
        ]
        vc = bl.get("vs_ceiling")
        if vc and "runs" in vc:
            vr = vc["runs"]
            ratio = median(ratios(vr, "ceiling-lz4", "etl-w1-lz4"))
            cw, ew = med(vr["ceiling-lz4"], "wall_s"), med(vr["etl-w1-lz4"], "wall_s")
            vmb = vc["json_bytes"] / MB
            n_small = max(1, int(files.get("small", {}).get("artifacts") or 1))
            targets.append(
                Target(
                    "load-vs-ceiling-big-artifacts",
                    "same ratio on the JSON-heavy release of section 3 (few, big artifacts)",
                    ratio,
                    ">=",
                    JSON_HEAVY_TARGET,
                    note=f"{fmt(vmb / ew)} vs {fmt(vmb / cw)} MB/s of JSON",
                )
            )
            call_cpu = median(
                [float(r["result"]["call_cpu_s"]) for r in ok_runs(vr["etl-w1-lz4"])
                 if "call_cpu_s" in (r.get("result") or {})]
            )  # fmt: skip
            targets.append(
                Target(
                    "load-cpu-per-gb-json",
                    "client CPU-s per GB of JSON loaded (the JSON-heavy release, in the call)",
                    call_cpu / (vmb / 1000),
                    "<=",
                    CPU_PER_GB_TARGET,
                    unit="CPU-s/GB",
                    note=f"{fmt(call_cpu, 2)} CPU-s for {fmt(vmb, 0)} MB",
                )
            )
            body += [
                f"The load-vs-ceiling comparison of section 2 repeated on the small file"
                f" ({fmt(vmb, 0)} MB of JSON in {files.get('small', {}).get('artifacts')}"
                f" artifacts of about {fmt(vmb / n_small, 1)}"
                f" MB, {vc['drops']:,} drops), `etl.load.load_spool` against server COPY of the"
                f" same rows, lz4 tables, alternating order:",
                "",
                table(
                    ["method", "wall s (median)", "each run", "JSON MB/s", "client + server CPU s"],
                    [
                        [
                            LOAD_LABELS[k],
                            fmt(med(v, "wall_s"), 2),
                            " / ".join(fmt(r["wall_s"], 2) for r in v),
                            fmt(vmb / med(v, "wall_s")),
                            fmt(median([r["cpu_s"] + r["server_cpu_s"] for r in ok_runs(v)])),
                        ]
                        for k, v in vr.items()
                    ],
                ),
                "",
            ]
    elif bl:
        body += ["## 3. Load memory", "", f"Section failed: `{bl.get('error')}`", ""]
    return Rendered(targets, body, target_metrics(targets))


SECTION = Section(name="bigload", order=30, measure=measure, render=render)
