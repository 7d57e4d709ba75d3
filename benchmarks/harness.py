"""The harness every section measures with: configurations, databases, measured runs.

A section (``benchmarks/sections/*.py``) gets one :class:`Bench` and calls ``bench.db()``
for a database of its own, ``bench.m_cmd()`` / ``bench.m_py()`` for a measured process
(``benchmarks.measure``), ``bench.profile()`` for py-spy, ``bench.work`` for scratch.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import benchdb, measure
from benchmarks.measure import Measurement
from benchmarks.profiling import summarize_profile

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ETL = str(Path(sys.executable).with_name("wheels-etl"))
DEFAULT_SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


@dataclass(frozen=True)
class Config:
    name: str
    extract_sizes: tuple[int, ...]
    extract_repeats: tuple[int, ...]  # per size
    extract_shape: dict[str, int]  # GenSpec artifacts/packages/drops per release
    load_releases: int
    load_shape: dict[str, int]
    load_rounds: int
    big_json_bytes: tuple[int, int]  # (small, big) single-release files
    big_repeats: int
    big_packages: int
    dlt_releases: int
    dlt_shape: dict[str, int]
    dlt_variants: tuple[str, ...]
    dlt_repeats: int
    profile_always: bool
    workers_releases: int = 20  # section 5, issue 12: Celery workers vs the CLI
    workers_counts: tuple[int, ...] = (1, 2, 4)
    workers_rounds: int = 1


QUICK = Config(
    name="quick",
    extract_sizes=(10, 30, 120),
    extract_repeats=(1, 1, 1),
    extract_shape={"artifacts": 4, "packages": 60, "drops": 60},
    load_releases=16,
    load_shape={"artifacts": 4, "packages": 150, "drops": 150},
    load_rounds=1,
    big_json_bytes=(12_000_000, 100_000_000),
    big_repeats=1,
    big_packages=1500,
    dlt_releases=4,
    dlt_shape={"artifacts": 4, "packages": 600, "drops": 50},
    dlt_variants=("defaults", "tuned"),
    dlt_repeats=1,
    profile_always=False,
)
FULL = Config(
    name="full",
    extract_sizes=(10, 100, 1000),
    extract_repeats=(3, 2, 1),
    extract_shape={"artifacts": 4, "packages": 150, "drops": 150},
    load_releases=100,
    load_shape={"artifacts": 4, "packages": 150, "drops": 150},
    load_rounds=5,
    big_json_bytes=(130_000_000, 1_050_000_000),
    big_repeats=2,
    big_packages=3000,
    dlt_releases=60,
    dlt_shape={"artifacts": 4, "packages": 600, "drops": 50},
    dlt_variants=("defaults", "tuned"),
    dlt_repeats=2,
    profile_always=True,
    workers_releases=40,
    workers_counts=(1, 2, 4),
    workers_rounds=2,
)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def generate(root: Path, releases: int, shape: dict[str, int], seed: int = 1) -> dict[str, Any]:
    from tests.support.gen import GenSpec
    from tests.support.gen import generate as gen

    if root.exists():
        shutil.rmtree(root)
    spec = GenSpec(products=1, releases=releases, seed=seed, **shape)
    return gen(root, spec).as_dict()


class Bench:
    def __init__(self, cfg: Config, server_url: str, workdir: Path) -> None:
        self.cfg = cfg
        self.server_url = server_url
        self.work = workdir
        self.dbs: list[str] = []
        # per run: two harness runs on one server (two worktrees) must not drop each
        # other's databases
        self.db_prefix = f"wetl_bench_{os.getpid()}_"
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    # databases
    def dbname(self, name: str) -> str:
        """The database :meth:`db` makes for ``name`` (what ``m_py(db=...)`` samples)."""
        return self.db_prefix + name

    def db(self, name: str, compression: str = "auto") -> str:
        full = self.dbname(name)
        url = benchdb.create_db(self.server_url, full, compression)
        if full not in self.dbs:
            self.dbs.append(full)
        return url

    def drop_dbs(self) -> None:
        for name in self.dbs:
            with contextlib.suppress(Exception):
                benchdb.drop_db(self.server_url, name)

    def m_py(
        self, target: str, kw: dict[str, Any], db: str | None = None, **extra: Any
    ) -> Measurement:
        m = measure.run_python(target, kw, pg_database=db, log_path=self.logs / "runs.log", **extra)
        if not m.ok:
            log(f"  FAILED {target}: {m.error[:300]}")
        return m

    def m_cmd(self, argv: list[str], db: str | None = None, **extra: Any) -> Measurement:
        m = measure.run_command(
            argv, pg_database=db, log_path=self.logs / "runs.log", cwd=str(REPO), **extra
        )
        if not m.ok:
            log(f"  FAILED {' '.join(argv[:3])}: {m.error[:300]}")
        return m

    def extract_spool(self, tree: Path, spool: Path, what: str) -> dict[str, Any]:
        """``wheels-etl extract --full`` of ``tree`` into a fresh ``spool``; its totals."""
        from benchmarks import spoolfiles

        shutil.rmtree(spool, ignore_errors=True)
        ext = self.m_cmd([ETL, "extract", "--source", str(tree), "--spool", str(spool), "--full"])
        if not ext.ok:
            raise RuntimeError(f"extract of the {what} failed: {ext.error}")
        return spoolfiles.spool_totals(spoolfiles.spool_files(spool))

    def vs_ceiling(self, url: str, db: str, spool: Path, rounds: int, what: str) -> dict[str, Any]:
        """The server's own COPY of ``spool``'s rows (``ceiling-lz4``) against
        ``load_spool`` (``etl-w1-lz4``) on a fresh copy, alternating order each round."""
        from benchmarks import ceiling, spoolfiles

        copy_dir = Path("/tmp") / f"wetl-bench-copy-{what.replace(' ', '-')}-{os.getpid()}"
        run_dir = self.work / "spool-vs-ceiling-run"
        rendered = ceiling.render_copy_files(spool, copy_dir, url, run_dir)
        runs: dict[str, list[dict[str, Any]]] = {"ceiling-lz4": [], "etl-w1-lz4": []}
        for r in range(rounds):
            for name in sorted(runs, reverse=bool(r % 2)):
                benchdb.reset_tables(url, checkpoint=True)
                os.sync()
                if name == "ceiling-lz4":
                    kw: dict[str, Any] = {"url": url, "paths": rendered["paths"]}
                    m = self.m_py("benchmarks.ceiling:server_copy", kw, db=db)
                else:
                    fresh = spoolfiles.fresh_spool(spool / "ready", run_dir)
                    kw = {"url": url, "spool_dir": str(fresh), "workers": 1}
                    m = self.m_py("benchmarks.ceiling:etl_load", kw, db=db)
                runs[name].append(m.to_dict())
                log(f"  {name} ({what}): wall={m.wall_s:.2f}s cpu={m.cpu_s:.2f} ok={m.ok}")
        shutil.rmtree(copy_dir, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)
        return {"runs": runs, "json_bytes": rendered["json_bytes"], "drops": rendered["drops"]}

    def profile(self, argv: list[str], name: str) -> dict[str, Any]:
        """py-spy (``--gil``: only the thread holding the GIL, i.e. Python CPU) on argv."""
        pyspy = Path(sys.executable).with_name("py-spy")
        if not pyspy.exists():
            return {"error": "py-spy not installed (.venv/bin/pip install py-spy)"}
        out = self.work / f"pyspy-{name}.txt"
        cmd = [str(pyspy), "record", "--gil", "-r", "100", "-f", "raw", "-o", str(out), "--"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd + argv, cwd=str(REPO), capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0 or not out.exists():
            return {"error": f"py-spy failed: {proc.stderr[-500:]}"}
        summary = summarize_profile(out.read_text())
        summary["wall_s"] = wall
        summary["command"] = " ".join(Path(a).name if a.startswith("/") else a for a in argv)
        return summary
