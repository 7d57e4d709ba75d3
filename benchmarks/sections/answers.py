"""Section 9: search, diff and why (issue 22) — index use, diff cost, load cost of the
domain tables.

* **scale**: one database with 10 releases x 8 builds loaded by ``wheels-etl load``, one
  with the same 10 plus 990 copies made server-side (``INSERT … SELECT``, release names
  suffixed): 1,000 releases x 8 builds.  A package (``needle-pkg``) is given one wheel in
  each build of one release in both, so ``search`` returns the same 8 rows in both; ``why``
  asks for a package of that release's graphs.  Targets: time(1,000) / time(10) <= 1.5.
* **diff**: two releases of 8 builds with 3,000 wheels each (the generator's
  ``--packages 3000 --drops 3000``), loaded; ``diff`` of the two against the time of
  loading one of the files, one diff between the two loads of each round.  Target: the
  median of the rounds' diff / load <= 1.
* **load cost**: ``load_spool`` of one of those files with ``build_origins`` filled (as
  shipped) and with the fill switched off, alternating, on emptied tables; the fill's
  call is timed inside each run with it.  Target: 1 / (1 - the fill's median share of a
  load) <= 1.10 (the wall ratio of the alternated runs is reported too: on a shared
  machine its noise is larger than the effect).
* the ``EXPLAIN (ANALYZE)`` plans of the queries behind each command, on the big database.

Timings are medians of in-process calls of the library functions the commands call
(connection included), measured in the same run.
"""

from __future__ import annotations

import functools
import math
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from benchmarks import benchdb
from benchmarks.harness import Bench, generate, log
from benchmarks.mdtable import Target, fmt, table
from benchmarks.sections import Rendered, Section, target_metrics

NEEDLE = "needle-pkg"
SCALE_RATIO, DIFF_RATIO, LOAD_RATIO = 1.5, 1.0, 1.10
NAN = math.nan
COPIES = 99  # 10 releases + 99 x 10 copies = 1,000


def _median_seconds(fn: Callable[[], Any], n: int) -> float:
    fn()  # warm: connection set-up paths, plan caches
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _load(url: str, spool: Path, work: Path, *, fill: bool) -> tuple[float, float]:
    """Seconds of ``load_spool`` of every file of ``spool`` into emptied tables, and the
    seconds spent in the ``build_origins`` fill within it (0 without the fill)."""
    from benchmarks import spoolfiles
    from etl.db import domain
    from etl.load import load_spool
    from etl.spool import Spool

    benchdb.reset_tables(url, checkpoint=True)
    fresh = spoolfiles.fresh_spool(spool / "ready", work / "spool-answers-run")
    original = domain.fill_release
    in_fill = [0.0]

    def timed(conn: Any, product: str, release: str) -> None:
        if not fill:  # the load as before issue 22
            return
        t = time.perf_counter()
        original(conn, product, release)
        in_fill[0] += time.perf_counter() - t

    domain.fill_release = timed
    try:
        t0 = time.perf_counter()
        report = load_spool(Spool(fresh), url)
        seconds = time.perf_counter() - t0
    finally:
        domain.fill_release = original
    assert report.ok and report.applied, report
    return seconds, in_fill[0]


def _interleaved(calls: dict[str, Callable[[], Any]], n: int) -> dict[str, float]:
    """Median seconds of each call, the calls taking turns (drift of a shared machine hits
    all of them alike)."""
    for fn in calls.values():
        fn()  # warm
    times: dict[str, list[float]] = {k: [] for k in calls}
    for i in range(n):
        for key in sorted(calls, reverse=bool(i % 2)):
            t0 = time.perf_counter()
            calls[key]()
            times[key].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def _replicate(url: str, copies: int) -> None:
    """Every release ``copies`` more times (``<release>.c<k>``), rows copied server-side."""
    with psycopg.connect(url, autocommit=True) as conn:
        for table_name in ("releases", "artifacts", "drops", "build_origins"):
            cols = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                    " ORDER BY ordinal_position",
                    [table_name],
                )
            ]
            picked = [
                sql.SQL("t.release || '.c' || k") if c == "release" else sql.Identifier("t", c)
                for c in cols
            ]
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} ({}) SELECT {} FROM {} AS t, generate_series(1, %s) AS k"
                ).format(
                    sql.Identifier(table_name),
                    sql.SQL(", ").join(map(sql.Identifier, cols)),
                    sql.SQL(", ").join(picked),
                    sql.Identifier(table_name),
                ),
                [copies],
            )
        conn.execute("VACUUM ANALYZE")


def _needle(url: str, product: str, release: str) -> None:
    """One wheel of ``needle-pkg`` in each build of one release."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO drops (product, release, architecture, variant, filename, name,
                   version, python_tag, abi_tag, platform_tag, sha256, size)
               SELECT product, release, architecture, variant,
                      'needle_pkg-1.0-py3-none-any.whl', %s, '1.0', 'py3', 'none', 'any',
                      repeat('ab', 32), 1
               FROM artifacts WHERE product = %s AND release = %s""",
            [NEEDLE, product, release],
        )
        conn.execute("ANALYZE")


def _explain(url: str, query: str, params: dict[str, Any]) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            sql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + sql.SQL(query),
            params,
        ).fetchall()
    return "\n".join(r[0] for r in rows)


def _fill_plan(url: str, product: str, release: str) -> str:
    """``EXPLAIN ANALYZE`` of the fill for one loaded release, rolled back (its server time
    is what the fill adds to that file's load)."""
    from etl.db import domain

    with psycopg.connect(url) as conn:  # not autocommit: everything here is rolled back
        conn.execute(
            "DELETE FROM build_origins WHERE product = %s AND release = %s", [product, release]
        )
        statement = domain.fill_statement(conn.info.server_version)
        rows = conn.execute(
            sql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + sql.SQL(statement),
            {"product": product, "release": release},
        ).fetchall()
        conn.rollback()
    return "\n".join(r[0] for r in rows)


def _scale(bench: Bench, quick: bool) -> dict[str, Any]:
    from etl.answers import search, why

    tree = bench.work / "src-answers-scale"
    generate(tree, 10, {"artifacts": 8, "packages": 60, "drops": 60}, seed=22)
    spool = bench.work / "spool-answers-scale"
    bench.extract_spool(tree, spool, "answers scale")
    urls = {"10": bench.db("answers-10"), "1000": bench.db("answers-1000")}
    for url in urls.values():
        _load(url, spool, bench.work, fill=True)
    log("  answers: copying to 1,000 releases")
    _replicate(urls["1000"], COPIES)
    with psycopg.connect(urls["10"]) as conn:
        product, release = conn.execute(
            "SELECT product, release FROM releases ORDER BY release LIMIT 1"
        ).fetchone() or ("", "")
        name = conn.execute(
            "SELECT child_name FROM graph_edges WHERE product = %s AND release = %s"
            " AND parent_name <> '' ORDER BY child_name LIMIT 1",
            [product, release],
        ).fetchone()[0]  # type: ignore[index]
    for url in urls.values():
        _needle(url, product, release)
    n = 5 if quick else 25
    out: dict[str, Any] = {"why_name": name, "release": release, "counts": {}}
    calls: dict[str, Callable[[], Any]] = {}
    for size, url in urls.items():
        calls[f"search_{size}"] = functools.partial(search.search, url, NEEDLE)
        calls[f"why_{size}"] = functools.partial(
            why.why, url, name, product=product, release=release
        )
        out["counts"][size] = benchdb.table_counts(url)
    out |= _interleaved(calls, n)
    for size in urls:
        log(f"  answers {size} releases: search {out[f'search_{size}']:.4f}s"
            f" why {out[f'why_{size}']:.4f}s")  # fmt: skip
    big = urls["1000"]
    out["matches"] = len(search.search(big, NEEDLE)["matches"])
    out["plans"] = {
        "search": _explain(big, search.QUERY, {"name": NEEDLE, "product": None}),
        "why": _explain(
            big,
            why.EDGES_QUERY,
            {"product": product, "release": release, "arch": None, "variant": None},
        ),
    }
    shutil.rmtree(tree, ignore_errors=True)
    shutil.rmtree(spool, ignore_errors=True)
    return out


def _diff(bench: Bench, quick: bool) -> dict[str, Any]:
    from etl.answers import diff

    size = 600 if quick else 3000
    tree = bench.work / "src-answers-diff"
    generate(tree, 2, {"artifacts": 8, "packages": size, "drops": size}, seed=23)
    spool = bench.work / "spool-answers-diff"
    bench.extract_spool(tree, spool, "answers diff")
    one = bench.work / "spool-answers-one"
    shutil.rmtree(one, ignore_errors=True)
    (one / "ready").mkdir(parents=True)
    first = sorted((spool / "ready").glob("*.parquet"))[0]
    shutil.copy(first, one / "ready" / first.name)
    url = bench.db("answers-diff")  # both releases, for diff
    _load(url, spool, bench.work, fill=True)
    with psycopg.connect(url) as conn:
        rels = [r[0] for r in conn.execute("SELECT release FROM releases ORDER BY updated_at")]
        product = conn.execute("SELECT product FROM releases LIMIT 1").fetchone()[0]  # type: ignore[index]
        wheels = conn.execute("SELECT count(*) FROM drops").fetchone()[0]  # type: ignore[index]
    doc = diff.diff(url, product, rels[0], rels[1])
    load_url = bench.db("answers-load")  # one file, loaded again and again
    loads: dict[str, list[float]] = {"with": [], "without": []}
    fill_share: list[float] = []  # of each run with the fill, the part spent filling
    diffs: list[float] = []  # one diff per round, between the round's two loads
    for r in range(2 if quick else 7):
        first_mode, second_mode = sorted(loads, reverse=bool(r % 2))
        for mode in (first_mode, "diff", second_mode):
            if mode == "diff":
                t0 = time.perf_counter()
                diff.diff(url, product, rels[0], rels[1])
                diffs.append(time.perf_counter() - t0)
                continue
            seconds, filling = _load(load_url, one, bench.work, fill=mode == "with")
            loads[mode].append(seconds)
            if filling:
                fill_share.append(filling / seconds)
        log(
            f"  answers round {r}: load with {loads['with'][-1]:.2f}s"
            f" without {loads['without'][-1]:.2f}s, diff {diffs[-1]:.2f}s"
        )
    seconds = statistics.median(diffs)
    params = {"product": product, "a": rels[0], "b": rels[1]}
    out = {
        "loads": loads,
        "fill_share": fill_share,
        "diff_s": seconds,
        "diffs": diffs,
        "wheels": wheels,
        "per_build": size,
        "file_mb": first.stat().st_size / 1e6,
        "changes": {
            k: sum(len(b[k]) for b in doc["builds"])
            for k in ("added", "removed", "changed", "rebuilt", "origin_changed")
        },
        "plans": {
            "load's build_origins fill (one file)": _fill_plan(url, product, rels[0]),
            "diff drops": _explain(url, diff.DROPS_QUERY, params),
            "diff origins": _explain(url, diff.ORIGINS_QUERY, params),
            "diff constraints": _explain(url, diff.CONSTRAINTS_QUERY, params),
        },
    }
    for d in (tree, spool, one):
        shutil.rmtree(d, ignore_errors=True)
    return out


def measure(bench: Bench) -> dict[str, Any]:
    quick = bench.cfg.name == "quick"
    return {"scale": _scale(bench, quick), "diff": _diff(bench, quick)}


def render(data: dict[str, Any], out_dir: Path) -> Rendered:
    s, d = data.get("scale"), data.get("diff")
    if not s or not d:
        return Rendered(body=["## 9. search, diff, why", "", f"Section failed: `{data}`", ""])
    with_s, without_s = (
        statistics.median(d["loads"]["with"]),
        statistics.median(d["loads"]["without"]),
    )
    # rounds alternate the order: each round's pair ran back to back under the same load
    paired = statistics.median(
        w / o for w, o in zip(d["loads"]["with"], d["loads"]["without"], strict=True)
    )
    share = statistics.median(d["fill_share"])  # the fill's part of each load with it
    diff_ratio = statistics.median(
        x / w for x, w in zip(d["diffs"], d["loads"]["with"], strict=True)
    )
    targets = [
        Target(
            "search-1000-vs-10",
            "search, 1,000 releases x 8 builds / 10 releases",
            s["search_1000"] / s["search_10"],
            "<=",
            SCALE_RATIO,
            note=f"{s['search_1000'] * 1e3:.1f} vs {s['search_10'] * 1e3:.1f} ms",
        ),
        Target(
            "why-1000-vs-10",
            "why, 1,000 releases x 8 builds / 10 releases",
            s["why_1000"] / s["why_10"],
            "<=",
            SCALE_RATIO,
            note=f"{s['why_1000'] * 1e3:.1f} vs {s['why_10'] * 1e3:.1f} ms",
        ),
        Target(
            "diff-vs-load",
            f"diff of two 8-build releases ({d['per_build']:,} wheels per"
            " build) / loading one of them (median of the rounds' ratios)",
            diff_ratio,
            "<=",
            DIFF_RATIO,
            note=f"{d['diff_s']:.2f} vs {with_s:.2f} s",
        ),
        Target(
            "load-with-domain",
            "load of one such file with build_origins filled / without, from the fill's"
            " share of each load (1 / (1 - share))",
            1 / (1 - share),
            "<=",
            LOAD_RATIO,
            note=f"fill {share * 100:.1f} % of the load (median); alternated walls"
            f" {with_s:.2f} vs {without_s:.2f} s, median ratio {paired:.2f}",
        ),
    ]
    rows = [[t.what, fmt(t.measured, 2), f"{t.op} {t.limit}", t.note] for t in targets]
    fill = d["plans"].get("load's build_origins fill (one file)", "")
    fill_ms = float(fill.rpartition("Execution Time: ")[2].split()[0] or "nan") if fill else NAN
    body = [
        "## 9. search, diff, why (issue 22)",
        "",
        f"Scale: 10 releases x 8 builds loaded by `wheels-etl load` ({s['counts']['10']}), and"
        f" the same plus 990 server-side copies ({s['counts']['1000']}); `search {NEEDLE}`"
        f" returns {s['matches']} rows in both, `why {s['why_name']}` reads one release's 8"
        f" graphs. Diff: two releases x 8 builds x {d['per_build']:,} wheels"
        f" ({d['wheels']:,} drops, {d['file_mb']:.1f} MB per spool file); changes found:"
        f" {d['changes']}. Load: each run `load_spool` of one file on emptied tables,"
        f" alternating with and without the `build_origins` fill; with"
        f" {' / '.join(fmt(x, 2) for x in d['loads']['with'])} s, without"
        f" {' / '.join(fmt(x, 2) for x in d['loads']['without'])} s (a shared machine: the"
        " fill's share of the same runs, timed around its call, is the steadier figure);"
        f" diff between each round's two loads: {' / '.join(fmt(x, 2) for x in d['diffs'])}"
        " s. The fill's own server"
        f" time on that file (its `EXPLAIN ANALYZE` below): {fmt(fill_ms, 0)} ms, i.e."
        f" {fmt(fill_ms / 10 / with_s, 1)} % of the median load.",
        "",
        table(["what", "measured", "target", "seconds"], rows),
        "",
    ]
    for name, plan in {**s["plans"], **d["plans"]}.items():
        body += [
            f"`EXPLAIN (ANALYZE, BUFFERS)` of the {name} query:",
            "",
            "```text",
            plan,
            "```",
            "",
        ]
    return Rendered(targets, body, target_metrics(targets))


SECTION = Section(name="answers", order=90, measure=measure, render=render)
