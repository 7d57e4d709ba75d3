"""Section 2: load throughput vs the server ceiling, executemany, and the choices
(lz4 vs pglz, workers, COPY text vs binary, Parquet codec)."""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import benchdb, ceiling, plots, spoolfiles
from benchmarks.harness import ETL, Bench, generate, log
from benchmarks.mdtable import MB, Target, fmt, med, median, ok_runs, ratios, table
from benchmarks.measure import Measurement
from benchmarks.profiling import profile_md
from benchmarks.sections import Rendered, Section, target_metrics

LOAD_LABELS = {
    "ceiling-lz4": "server COPY FROM file (ceiling), jsonb lz4",
    "etl-cmd-lz4": "`wheels-etl load` command, whole process, 1 worker, lz4",
    "etl-w1-lz4": "wheels-etl load, 1 worker, lz4 (in-call: load_spool)",
    "etl-w2-lz4": "wheels-etl load, 2 workers, lz4",
    "executemany-lz4": "naive executemany INSERT, lz4",
    "ceiling-pglz": "server COPY FROM file (ceiling), jsonb pglz",
    "etl-w1-pglz": "wheels-etl load, 1 worker, pglz",
    "etl-w2-pglz": "wheels-etl load, 2 workers, pglz",
    "copy-text-lz4": "psycopg COPY text format, lz4",
    "copy-binary-lz4": "psycopg COPY binary format, lz4",
    "copy-fast-lz4": "binary COPY, drops via Arrow CSV, one decode, lz4",
    "etl-w1-lz4-parquet-zstd": "wheels-etl load, spool Parquet zstd",
    "etl-w1-lz4-parquet-none": "wheels-etl load, spool Parquet uncompressed",
}
#: Issue 11: one connection at >= 0.90 of the server's own COPY.
LOAD_TARGET = 0.90
CEILING_OF = {k: ("ceiling-pglz" if "pglz" in k else "ceiling-lz4") for k in LOAD_LABELS}


def measure(bench: Bench) -> dict[str, Any]:
    cfg = bench.cfg
    tree = bench.work / "src-load"
    gen = generate(tree, cfg.load_releases, cfg.load_shape, seed=2)
    log(f"  load source: {cfg.load_releases} releases, {gen['bytes'] / MB:.1f} MB")
    base = bench.work / "spool-load-base"
    totals = bench.extract_spool(tree, base, "load dataset")
    copy_dir = Path("/tmp") / f"wetl-bench-copy-{os.getpid()}"
    # codec variants of the same spool (encode and decode measured in own processes)
    codecs: dict[str, Any] = {}
    none_dir = bench.work / "spool-codec-none"
    shutil.rmtree(none_dir, ignore_errors=True)
    bench.m_py(
        "benchmarks.spoolfiles:rewrite_codec",
        {"src_dir": str(base), "dst_dir": str(none_dir), "codec": "none"},
    )
    for codec in ("lz4", "zstd", "none"):
        d = bench.work / f"spool-codec-{codec}"
        if codec != "none":
            shutil.rmtree(d, ignore_errors=True)
        enc = []
        for _ in range(max(1, cfg.load_rounds)):
            out = bench.work / "spool-codec-tmp"
            shutil.rmtree(out, ignore_errors=True)
            m = bench.m_py(
                "benchmarks.spoolfiles:rewrite_codec",
                {"src_dir": str(none_dir), "dst_dir": str(out), "codec": codec},
            )
            enc.append(m.result.get("seconds", float("nan")))
            if codec != "none":
                shutil.rmtree(d, ignore_errors=True)
                out.rename(d)
            else:
                shutil.rmtree(out, ignore_errors=True)
        dec = [
            bench.m_py("benchmarks.spoolfiles:read_spool", {"spool_dir": str(d)}).result.get(
                "seconds", float("nan")
            )
            for _ in range(max(1, cfg.load_rounds))
        ]
        codecs[codec] = {
            "bytes": sum(p.stat().st_size for p in spoolfiles.spool_files(d)),
            "encode_s": enc,
            "decode_s": dec,
            "dir": str(d),
        }
    # the original files (lz4, the default) came from extract itself: the main runs use them
    url = {"lz4": bench.db("lz4", "lz4"), "pglz": bench.db("pglz", "pglz")}
    dbn = {"lz4": bench.dbname("lz4"), "pglz": bench.dbname("pglz")}
    spool_run = bench.work / "spool-run"
    # the ceiling's files: the server's own COPY TO output of the rows the loader stores
    rendered = ceiling.render_copy_files(base, copy_dir, url["lz4"], spool_run)

    def etl(comp: str, workers: int, src: Path) -> Callable[[], Measurement]:
        def go() -> Measurement:
            fresh = spoolfiles.fresh_spool(src / "ready", spool_run)
            return bench.m_py(
                "benchmarks.ceiling:etl_load",
                {"url": url[comp], "spool_dir": str(fresh), "workers": workers},
                db=dbn[comp],
            )

        return go

    def command(comp: str, src: Path) -> Callable[[], Measurement]:
        def go() -> Measurement:  # as a user runs it: interpreter, imports, exit included
            fresh = spoolfiles.fresh_spool(src / "ready", spool_run)
            argv = [ETL, "load", "--spool", str(fresh)]
            return bench.m_cmd(argv, db=dbn[comp], env={"DATABASE_URL": url[comp]})

        return go

    def server(comp: str) -> Callable[[], Measurement]:
        return lambda: bench.m_py(
            "benchmarks.ceiling:server_copy",
            {"url": url[comp], "paths": rendered["paths"]},
            db=dbn[comp],
        )

    def client(kind: str) -> Callable[[], Measurement]:
        if kind == "executemany":
            return lambda: bench.m_py(
                "benchmarks.ceiling:executemany_load",
                {"url": url["lz4"], "spool_dir": str(base)},
                db=dbn["lz4"],
            )
        return lambda: bench.m_py(
            "benchmarks.ceiling:client_copy",
            {"url": url["lz4"], "spool_dir": str(base), "format": kind},
            db=dbn["lz4"],
        )

    variants: dict[str, tuple[str, Callable[[], Measurement]]] = {
        "ceiling-lz4": ("lz4", server("lz4")),
        "etl-w1-lz4": ("lz4", etl("lz4", 1, base)),
        "etl-cmd-lz4": ("lz4", command("lz4", base)),
        "executemany-lz4": ("lz4", client("executemany")),
        "ceiling-pglz": ("pglz", server("pglz")),
        "etl-w1-pglz": ("pglz", etl("pglz", 1, base)),
        "etl-w2-lz4": ("lz4", etl("lz4", 2, base)),
        "etl-w2-pglz": ("pglz", etl("pglz", 2, base)),
        "copy-text-lz4": ("lz4", client("text")),
        "copy-binary-lz4": ("lz4", client("binary")),
        "copy-fast-lz4": ("lz4", client("fast")),
        "etl-w1-lz4-parquet-zstd": ("lz4", etl("lz4", 1, Path(codecs["zstd"]["dir"]))),
        "etl-w1-lz4-parquet-none": ("lz4", etl("lz4", 1, Path(codecs["none"]["dir"]))),
    }
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in variants}
    checks: dict[str, str] = {}
    names = list(variants)
    for r in range(cfg.load_rounds):
        order = list(names)
        random.Random(r).shuffle(order)  # no variant always follows the same one
        for name in order:
            comp, go = variants[name]
            benchdb.reset_tables(url[comp], checkpoint=True)
            os.sync()  # the previous run's dirty pages are not this run's cost
            m = go()
            rec = m.to_dict()
            counts = benchdb.table_counts(url[comp])
            rec["counts"] = counts
            if counts["artifacts"] != totals["artifacts"] or counts["drops"] != totals["drops"]:
                rec["error"] = (rec["error"] or "") + f" wrong row counts {counts}"
            if r == 0:
                checks[name] = benchdb.json_checksum(url[comp])
            runs[name].append(rec)
            log(
                f"  {name:<24} wall={m.wall_s:6.2f}s "
                f"{totals['json_bytes'] / MB / max(m.wall_s, 1e-9):6.1f} MB/s "
                f"cpu={m.cpu_s:5.1f} srv={m.server_cpu_s:5.1f} rss={m.peak_rss_mb:5.0f}"
                f"{'' if not rec['error'] else ' ERROR ' + rec['error'][:200]}"
            )
    for comp in url:
        benchdb.reset_tables(url[comp], checkpoint=False)
    profile = None
    ratio = ratios(runs, "ceiling-lz4", "etl-w1-lz4")
    if cfg.profile_always or (ratio and median(ratio) < LOAD_TARGET):
        benchdb.reset_tables(url["lz4"], checkpoint=True)
        profile = _profile_load(bench, url["lz4"], base, spool_run)
        benchdb.reset_tables(url["lz4"], checkpoint=False)
    shutil.rmtree(copy_dir, ignore_errors=True)
    shutil.rmtree(spool_run, ignore_errors=True)
    for c in codecs.values():
        shutil.rmtree(c.pop("dir"), ignore_errors=True)
    shutil.rmtree(none_dir, ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(tree, ignore_errors=True)
    return {
        "totals": totals,
        "copy_file_bytes": rendered["bytes"],
        "source": gen,
        "runs": runs,
        "checksums": checks,
        "codecs": codecs,
        "profile": profile,
    }


def _profile_load(bench: Bench, url: str, base: Path, spool_run: Path) -> dict[str, Any]:
    fresh = spoolfiles.fresh_spool(base / "ready", spool_run)
    kw = {"url": url, "spool_dir": str(fresh), "workers": 1}
    argv = [sys.executable, "-m", "benchmarks.measure", "call"]
    return bench.profile([*argv, "benchmarks.ceiling:etl_load", json.dumps(kw)], "load")


def render(data: dict[str, Any], out_dir: Path) -> Rendered:
    targets: list[Target] = []
    body: list[str] = []
    nan = float("nan")
    ld = data
    if "runs" in ld:
        runs = ld["runs"]
        tot = ld["totals"]
        jmb = tot["json_bytes"] / MB
        nrows = tot["artifacts"] + tot["drops"]
        rows = []
        bars = []
        for name, recs in runs.items():
            if not recs:
                continue
            w = med(recs, "wall_s")
            ratio = median(ratios(runs, CEILING_OF[name], name))
            rows.append(
                [
                    LOAD_LABELS.get(name, name),
                    fmt(w, 2),
                    fmt(jmb / w),
                    fmt(nrows / w / 1000),
                    fmt(ratio, 2),
                    fmt(1 / ratio if ratio else nan, 2),
                    fmt(med(recs, "cpu_s")),
                    fmt(med(recs, "server_cpu_s")),
                    fmt(median([r["cpu_s"] + r["server_cpu_s"] for r in ok_runs(recs)])),
                    fmt(med(recs, "peak_rss_mb"), 0),
                    str(len(ok_runs(recs))) + "/" + str(len(recs)),
                ]
            )
            bars.append((LOAD_LABELS.get(name, name), jmb / w))
        ceil = {
            "ceiling lz4": jmb / med(runs.get("ceiling-lz4", []), "wall_s"),
            "ceiling pglz": jmb / med(runs.get("ceiling-pglz", []), "wall_s"),
        }
        png = plots.load_throughput(bars, ceil, out_dir / "load_throughput.png")
        r_main = median(ratios(runs, "ceiling-lz4", "etl-cmd-lz4"))
        r_call = median(ratios(runs, "ceiling-lz4", "etl-w1-lz4"))
        cmd_w = med(runs.get("etl-cmd-lz4", []), "wall_s")
        call_w = med(runs["etl-w1-lz4"], "wall_s")
        targets.append(
            Target(
                "load-vs-ceiling",
                "`wheels-etl load` (whole command) / server-COPY ceiling (same lz4 tables)",
                r_main,
                ">=",
                LOAD_TARGET,
                note=f"command {fmt(cmd_w, 2)} s, in-call {fmt(call_w, 2)} s (ratio"
                f" {fmt(r_call, 2)}), ceiling {fmt(med(runs['ceiling-lz4'], 'wall_s'), 2)} s",
            )
        )
        w1_cpu, drops_k = med(runs.get("etl-w1-lz4", []), "cpu_s"), tot["drops"] / 1000
        r_exm = median(ratios(runs, "executemany-lz4", "etl-w1-lz4"))
        r_w2 = median(ratios(runs, "ceiling-pglz", "etl-w2-lz4"))
        targets.append(
            Target(
                "workers-lz4-vs-pglz",
                "load --workers 2 into lz4 vs single-connection server COPY into pglz (speed-up)",
                r_w2, ">=", 2.0,
            )
        )  # fmt: skip
        codecs = ld.get("codecs", {})
        crow = []
        z = codecs.get("lz4", {})
        for c, info in codecs.items():
            lname = "etl-w1-lz4" + ("" if c == "lz4" else f"-parquet-{c}")
            lw = median(ratios(runs, lname, "etl-w1-lz4")) if c != "lz4" else 1.0
            crow.append(
                [
                    c,
                    fmt(info["bytes"] / MB),
                    fmt(info["bytes"] / z.get("bytes", nan), 2),
                    fmt(median(info["encode_s"]), 2),
                    fmt(median(info["decode_s"]), 2),
                    fmt(med(runs.get(lname, []), "wall_s"), 2),
                    fmt(lw, 2),
                ]
            )
        text_bin = median(ratios(runs, "copy-text-lz4", "copy-binary-lz4"))
        pg_vs_lz = median(ratios(runs, "ceiling-pglz", "ceiling-lz4"))
        etl_pg_vs_lz = median(ratios(runs, "etl-w1-pglz", "etl-w1-lz4"))
        w1_w2 = median(ratios(runs, "etl-w1-lz4", "etl-w2-lz4"))
        w1_w2_pg = median(ratios(runs, "etl-w1-pglz", "etl-w2-pglz"))
        sums = set(ld.get("checksums", {}).values())
        same = "yes" if len(sums) == 1 else "NO: " + str(ld.get("checksums"))
        art_copy_mb = ld.get("copy_file_bytes", {}).get("artifacts", 0) / MB
        body += [
            "## 2. Load throughput vs the server ceiling",
            "",
            f"Data: {tot['files']} spool files (one per release) extracted by `wheels-etl"
            f" extract` from a generated source: {tot['artifacts']:,} artifacts with"
            f" {jmb:,.1f} MB of JSON and {tot['drops']:,} drops ({nrows:,} rows), spool"
            f" {tot['file_bytes'] / MB:,.1f} MB (lz4). Tables, keys, indexes and foreign keys"
            " are exactly those of `etl.schema.migrate`, emptied (TRUNCATE) and CHECKPOINTed"
            " before every run. The **ceiling** is `COPY … FROM '<file>'` of the server's own"
            " `COPY … TO` output of the very rows the loader stores (made once, outside"
            " timing), read by the server itself: one connection, one"
            f" transaction, no client work ({art_copy_mb:,.0f}"
            " MB artifacts file); its time is that of the connection and the COPY statements"
            " (releases, artifacts, drops and the domain tables load fills). `wheels-etl load`"
            " is measured twice: as the whole command a user"
            " runs (`wheels-etl load --spool …`: interpreter start, imports, load, exit) and"
            " in-call as `etl.load.load_spool` (what the CLI calls: ledger, one transaction"
            " per file, binary COPY, claims and moves). Ratios are taken per round against the"
            " ceiling of the same round (same compression), then the median over"
            f" {len(runs.get('ceiling-lz4', []))} round(s).",
            "",
            table(
                [
                    "method",
                    "wall s",
                    "JSON MB/s",
                    "k rows/s",
                    "/ ceiling (speed)",
                    "x ceiling (time)",
                    "client CPU s",
                    "server CPU s",
                    "client + server CPU s",
                    "peak RSS MB",
                    "ok",
                ],
                rows,
            ),
            "",
            f"`wheels-etl load` as a user runs it: {fmt(cmd_w, 2)} s for the whole command"
            f" against {fmt(call_w, 2)} s in the call, so {fmt(cmd_w - call_w, 2)} s of"
            " interpreter start, imports and exit; whole command / ceiling"
            f" {fmt(r_main, 2)} (in-call {fmt(r_call, 2)}).",
            "",
            f"Client CPU of `wheels-etl load`, 1 worker: {fmt(w1_cpu / drops_k * 1000, 1)} CPU-ms"
            f" per 1,000 drops with their releases' JSON, {fmt(w1_cpu / jmb * 1000, 1)} CPU-s"
            " per GB of JSON on this drop-heavy shape (JSON-heavy: section 3).",
            "",
            "Server CPU is the CPU time of the Postgres backends serving the benchmark"
            " database, sampled every 100 ms (short-lived connections are undercounted).",
            f"Every method stored identical data: {same}"
            " (md5 over `jsonb::text` of every document and over every drop, first round).",
            "",
            "![load throughput](load_throughput.png)" if png else "(matplotlib missing: no plot)",
            "",
            "### Choices",
            "",
            table(
                ["choice", "ratio (median of per-round ratios)", "meaning"],
                [
                    [
                        "jsonb compression: server COPY pglz / lz4 (time)",
                        fmt(pg_vs_lz, 2),
                        "how much longer the server alone needs with pglz",
                    ],
                    [
                        "jsonb compression: wheels-etl load pglz / lz4 (time)",
                        fmt(etl_pg_vs_lz, 2),
                        "same, end to end through the loader",
                    ],
                    [
                        "load --workers 1 / --workers 2, lz4 (time)",
                        fmt(w1_w2, 2),
                        "speed-up of a second connection (2 cores shared by client and server)",
                    ],
                    ["load --workers 1 / --workers 2, pglz (time)", fmt(w1_w2_pg, 2), ""],
                    [
                        "server COPY pglz, 1 conn / load --workers 2 lz4 (time)",
                        fmt(r_w2, 2),
                        "target ≥ 2",
                    ],
                    [
                        "COPY text / binary (time, same client code)",
                        fmt(text_bin, 2),
                        "> 1 means binary is faster",
                    ],
                    [
                        "executemany / wheels-etl load (time)",
                        fmt(r_exm, 2),
                        "the naive client against ours",
                    ],
                    [
                        "COPY binary (as the loader) / binary + Arrow-CSV drops + one decode",
                        fmt(median(ratios(runs, "copy-binary-lz4", "copy-fast-lz4")), 2),
                        "what the suggested loader changes would buy (> 1 = faster)",
                    ],
                ],
            ),
            "",
            "Parquet codec of the spool (same files rewritten; encode = writing all files"
            " from uncompressed ones, decode = reading every column of every file, each in"
            " its own process; load = `wheels-etl load`, lz4 tables):",
            "",
            table(
                [
                    "codec",
                    "spool MB",
                    "size / lz4",
                    "encode s",
                    "decode s",
                    "load wall s",
                    "load time / lz4",
                ],
                crow,
            ),
            "",
        ]
        body += profile_md("Where the loader's Python time goes", ld.get("profile"))
    elif ld:
        body += ["## 2. Load", "", f"Section failed: `{ld.get('error')}`", ""]
    return Rendered(targets, body, target_metrics(targets))


SECTION = Section(name="load", order=20, measure=measure, render=render)
