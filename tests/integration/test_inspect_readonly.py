"""``inspect`` is read-only and robust (issue 10 items 2 and 12, issue 9): every statement
that could write, attach, read arbitrary files, install or reconfigure is refused with one
line and exit 2, creating nothing; empty states have the real columns; a corrupt file is
skipped with a warning naming it; a mistyped ``--spool`` exits 2 and creates nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from etl.spool import Spool, spool_name
from etl.spooling import format as fmt
from tests.support.cli import CliResult, cli_env, run_cli

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _row(arch: str) -> fmt.ArtifactRow:
    drop = fmt.Drop("a-1.0-py3-none-any.whl", "a", "1.0", None, "py3", "none", "any",
                    "ab" * 32, 10, T0)  # fmt: skip
    return fmt.ArtifactRow(arch, "cpu", "b1", T0, '{"": []}', "[]", "[]", (drop,))


def _write(spool: Spool, release: str) -> str:
    with spool.writer("rhai", release, T0, f"http://src/rhai/{release}") as w:
        w.add(_row("x86_64"))
        w.add(_row("aarch64"))
        return w.commit().name


def _inspect(spool: Path, cwd: Path, *args: str) -> CliResult:
    return run_cli("inspect", *args, env=cli_env(spool=spool), cwd=cwd)


def _tree(where: Path) -> set[Path]:
    return {p.relative_to(where) for p in where.rglob("*")}


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    spool = Spool(tmp_path / "spool")
    _write(spool, "1.0")
    return tmp_path / "spool"


@pytest.mark.parametrize(
    ("sql", "creates"),
    [
        ("COPY (select 1) TO 'x.csv'", "x.csv"),
        ("COPY (select * from artifacts) TO 'x.parquet' (FORMAT parquet)", "x.parquet"),
        ("ATTACH 'x.db'", "x.db"),
        ("select * from read_text('/etc/hostname')", None),
        ("select * from read_csv('/etc/passwd')", None),
        ("INSTALL httpfs", None),
        ("LOAD httpfs", None),
        ("SET enable_external_access=true", None),
        ("CREATE TABLE t AS SELECT 1", None),
        ("select 1; COPY (select 1) TO 'x.csv'", "x.csv"),
    ],
)
def test_inspect_sql_refuses_anything_but_reading_the_spool(
    spool_dir: Path, tmp_path: Path, sql: str, creates: str | None
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    before = _tree(tmp_path)
    r = _inspect(spool_dir, cwd, "--sql", sql)
    assert r.returncode == 2, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "inspect" in lines[0], r
    assert "read-only" in lines[0] or "one statement" in lines[0], r
    assert "Traceback" not in r.stderr and r.stdout == "", r
    assert _tree(tmp_path) == before, "inspect created or changed files"
    if creates:
        assert not (cwd / creates).exists()


def test_inspect_sql_still_reads_the_spool_after_the_lockdown(
    spool_dir: Path, tmp_path: Path
) -> None:
    r = _inspect(spool_dir, tmp_path, "--json", "--sql",
                 "select architecture, d.filename from drops d order by 1")  # fmt: skip
    assert r.returncode == 0, r
    assert json.loads(r.stdout) == [
        {"architecture": "aarch64", "filename": "a-1.0-py3-none-any.whl"},
        {"architecture": "x86_64", "filename": "a-1.0-py3-none-any.whl"},
    ]


@pytest.mark.parametrize("view", ["artifacts", "drops", "files"])
def test_inspect_on_an_empty_state_has_the_real_columns(spool_dir: Path, tmp_path: Path,
                                                        view: str) -> None:  # fmt: skip
    full = _inspect(spool_dir, tmp_path, "--json", "--sql", f"select * from {view} limit 1")
    empty = _inspect(spool_dir, tmp_path, "--state", "failed", "--json", "--sql",
                     f"select * from {view} limit 1")  # fmt: skip
    assert full.returncode == 0 and empty.returncode == 0, (full, empty)
    assert json.loads(empty.stdout) == []
    sized = _inspect(spool_dir, tmp_path, "--state", "failed", "--sql",
                     "select sum(size) as s, count(*) as n from drops")  # fmt: skip
    assert sized.returncode == 0, sized
    assert "Referenced column" not in sized.stderr


def test_inspect_state_bogus_is_refused(spool_dir: Path, tmp_path: Path) -> None:
    r = _inspect(spool_dir, tmp_path, "--state", "bogus")
    assert r.returncode == 2, r
    assert "bogus" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("command", ["inspect", "status"])
def test_a_mistyped_spool_exits_2_and_creates_nothing(tmp_path: Path, command: str) -> None:
    wrong = tmp_path / "spoool"
    r = run_cli(command, env=cli_env(spool=wrong, database_url=None), cwd=tmp_path)
    assert r.returncode == 2, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no spool at" in lines[0] and str(wrong) in lines[0], r
    assert not wrong.exists()


def test_one_corrupt_file_is_skipped_with_a_warning_not_the_whole_state(
    spool_dir: Path, tmp_path: Path
) -> None:
    spool = Spool(spool_dir)
    good = _write(spool, "2.0")
    bad = spool_dir / "ready" / spool_name("rhai", "3.0", T0, "cd" * 32)
    bad.write_bytes((spool_dir / "ready" / good).read_bytes()[:200])
    r = _inspect(spool_dir, tmp_path, "--json", "--sql",
                 "select release, count(*) as n from artifacts group by 1 order by 1")  # fmt: skip
    assert r.returncode == 0, r
    assert json.loads(r.stdout) == [{"release": "1.0", "n": 2}, {"release": "2.0", "n": 2}]
    warned = [line for line in r.stderr.splitlines() if bad.name in line]
    assert len(warned) == 1 and "skipped" in warned[0], r
    files = _inspect(spool_dir, tmp_path, "--json", "--sql", "select file from files")
    assert files.returncode == 0 and bad.name not in files.stdout, files
