"""Hostile input, round three (issue 23, items 1 and 5): crafted spool files.

A spool file is input like any other: whoever can write to ``ready/`` can put any bytes
there.  Against real files, real Postgres and real ``wheels-etl load`` processes, some in
a cgroup limited like the worker pod (512 MiB, one CPU): a file that decodes to far more
than it weighs is refused before decoding; a file that kills its loader anyway goes to
``failed/`` after three deaths, so the files behind it are loaded; types, ranges, the
content hash and ``updated_at`` are checked, not trusted.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl.config import Settings, sample_source
from etl.extract import extract
from etl.load import load_spool
from etl.spool import Spool, SpoolName
from etl.spooling.format import SCHEMA, ArtifactRow, Drop
from tests.support.bombs import drops_bomb, evasive_bomb, json_bomb
from tests.support.cli import cli_env, run_cli
from tests.support.pod import PodResult, run_in_pod
from tests.support.sourcetree import write_source_tree

GOOD = {"rhai/3.0.0", "rhai/3.0.1"}


def _names(spool_dir: Path, state: str) -> set[str]:
    folder = spool_dir / state
    return {p.name for p in folder.glob("*.parquet")} if folder.is_dir() else set()


def _keys(spool_dir: Path, state: str) -> set[str]:
    return {SpoolName.parse(n).release_key for n in _names(spool_dir, state)}


def _extracted(tmp_path: Path) -> Path:
    """A spool whose ready/ holds the two genuine releases of a small source."""
    tree = write_source_tree(tmp_path / "src")
    spool_dir = tmp_path / "spool"
    report = extract(Settings(source_url=str(tree), spool_dir=spool_dir), Spool(spool_dir))
    assert report.failed == [] and _keys(spool_dir, "ready") == GOOD
    return spool_dir


def _load_in_pod(spool_dir: Path, db_url: str) -> PodResult:
    env = cli_env(spool=spool_dir, database_url=db_url)
    return run_in_pod([sys.executable, "-m", "etl", "load"], env, cwd=spool_dir.parent)


def _db_releases(db_url: str) -> set[str]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT product, release FROM releases").fetchall()
    return {f"{p}/{r}" for p, r in rows}


def _lines_naming(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if name in line and "replay with" not in line]


# --- 1. decoded-size bound ------------------------------------------------------------------


def test_bombs_are_refused_before_decoding_inside_the_pod(tmp_path: Path, db_url: str) -> None:
    """An 8 kB file with 2,000,000 identical drops and a 13 kB file with a 200 MB JSON
    document: before the fix the loader took 1.4 GB and 0.64 GB and, in the pod, was
    OOM-killed with the file left in loading/.  Now both are refused from the footer alone,
    one line each naming the file, and the genuine files are loaded."""
    spool_dir = _extracted(tmp_path)
    bombs = [drops_bomb(spool_dir / "ready"), json_bomb(spool_dir / "ready")]
    result = _load_in_pod(spool_dir, db_url)
    print(f"bombs in the pod: cgroup peak {result.peak_mb:.0f} MB")
    assert not result.oom_killed, result
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert _names(spool_dir, "failed") == {b.name for b in bombs}
    assert _keys(spool_dir, "loaded") == GOOD and _db_releases(db_url) == GOOD
    for bomb in bombs:  # the progress line and the summary's: one reason, on one line
        reasons = {line.split(": ", 1)[1] for line in _lines_naming(result.stderr, bomb.name)}
        assert len(reasons) == 1, result.stderr
        reason = reasons.pop()
        assert "refused before decoding" in reason and "128 MiB" in reason, reason
    assert not _names(spool_dir, "loading")


def test_a_file_that_kills_its_loader_three_times_goes_to_failed(
    tmp_path: Path, db_url: str
) -> None:
    """A file the estimate cannot see through (100,000 drops sharing one 10 kB name: a few
    MB by the footer's counts, over a GB decoded) kills the loader in the pod.  Each run
    adopts the orphan first; its death is noted before it starts; at the third death in a
    row it goes to failed/ instead, and the genuine files behind it are loaded."""
    spool_dir = _extracted(tmp_path)
    killer = evasive_bomb(spool_dir / "ready")
    os.utime(killer, (1, 1))  # the oldest ready file: claimed first
    runs = []
    for i in range(3):
        runs.append(run := _load_in_pod(spool_dir, db_url))
        assert run.oom_killed and run.returncode == -9, (i, run)
        assert _names(spool_dir, "loading") == {killer.name}, i
        assert _db_releases(db_url) == set(), i
    runs.append(_load_in_pod(spool_dir, db_url))
    print("kill loop: cgroup peaks " + ", ".join(f"{r.peak_mb:.0f} MB" for r in runs))
    # the fourth run finds the third death in a row: failed/ without loading it again
    last = runs[3]
    assert not last.oom_killed and last.returncode == 1, last
    assert _names(spool_dir, "failed") == {killer.name}
    assert _keys(spool_dir, "loaded") == GOOD and _db_releases(db_url) == GOOD
    reasons = {line.split(": ", 1)[1] for line in _lines_naming(last.stderr, killer.name)}
    assert len(reasons) == 1 and "died 3 times in a row" in reasons.pop(), last.stderr
    sidecar = json.loads((spool_dir / "failed" / f"{killer.name}.error.json").read_text())
    classes = [a["error_class"] for a in sidecar["attempts"]]
    assert classes == ["LoaderDied"] * 3 + ["LoaderKilledError"], classes


# --- 5. the loader trusts nothing -----------------------------------------------------------

WHEN = datetime(2026, 10, 1, 12, tzinfo=UTC)


def _drop(**changes: Any) -> Drop:
    drop = Drop(
        "a-1.0-py3-none-any.whl", "a", "1.0", None, "py3", "none", "any", "0" * 64, 10, WHEN
    )
    return drop._replace(**changes)


def _write(
    spool_dir: Path, release: str, drops: tuple[Drop, ...], updated_at: datetime = WHEN
) -> str:
    """A file written by the spool's own writer (name, footer and hash consistent)."""
    row = ArtifactRow("x86_64", "cpu", "b1", WHEN, "{}", "[]", "[]", drops)
    with Spool(spool_dir).writer("crafted", release, updated_at, "http://x.invalid/") as w:
        w.add(row)
        return w.commit().name


def _failed_reason(spool_dir: Path, name: str) -> str:
    side = json.loads((spool_dir / "failed" / f"{name}.error.json").read_text())
    return str(side["last"]["message"])


@pytest.mark.parametrize(
    ("drop", "needle"),
    [
        (_drop(size=-5), "a drop's size is negative (-5)"),
        (_drop(sha256="not-a-hash"), "sha256 is not 64 hex digits"),
        (_drop(filename=""), "a drop's filename is empty"),
    ],
    ids=["negative-size", "bad-sha256", "empty-filename"],
)
def test_values_out_of_range_fail_the_file(
    tmp_path: Path, db_url: str, drop: Drop, needle: str
) -> None:
    spool_dir = tmp_path / "spool"
    name = _write(spool_dir, "1.0", (drop,))
    report = load_spool(Spool(spool_dir), db_url)
    assert [n for n, _ in report.failed] == [name]
    assert needle in _failed_reason(spool_dir, name)
    assert _db_releases(db_url) == set()


def _rewrite(path: Path, change: Any, schema: pa.Schema = SCHEMA) -> None:
    """Rewrite a spool file's rows through ``change`` (a list of row dicts), keeping its
    footer metadata (so its name and hash still say what they said)."""
    pf = pq.ParquetFile(path)
    kv = pf.metadata.metadata
    rows = change(pf.read().to_pylist())
    table = pa.Table.from_pylist(rows, schema=schema)
    with pq.ParquetWriter(path, table.schema) as writer:
        writer.add_key_value_metadata({k.decode(): v.decode() for k, v in kv.items()})
        writer.write_table(table, row_group_size=1)


def test_a_json_column_of_type_int64_fails_the_file_naming_it(tmp_path: Path, db_url: str) -> None:
    spool_dir = tmp_path / "spool"
    name = _write(spool_dir, "1.0", (_drop(),))
    index = SCHEMA.get_field_index("dependency_graph")
    schema = SCHEMA.set(index, pa.field("dependency_graph", pa.int64()))

    def to_int(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**r, "dependency_graph": 1} for r in rows]

    _rewrite(spool_dir / "ready" / name, to_int, schema)
    report = load_spool(Spool(spool_dir), db_url)
    assert [n for n, _ in report.failed] == [name]
    reason = _failed_reason(spool_dir, name)
    assert "column dependency_graph is of type int64" in reason, reason
    assert _db_releases(db_url) == set()


def _forge(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One drop fewer in the first artifact: what a forger (or a bit flip) would do."""
    first = rows[0]
    return [{**first, "drops": first["drops"][:-1]}, *rows[1:]]


def test_a_forged_file_fails_its_hash_and_the_genuine_one_stays(
    tmp_path: Path, db_url: str
) -> None:
    """The genuine file is loaded; a forged file of the same name (the genuine footer,
    one drop fewer, counts fixed) then arrives in ready/.  Before the fix the loader saw
    the same hash in its database, called it unchanged and moved it over the genuine file
    in loaded/.  Now its rows are hashed while read: it fails, the genuine file stays."""
    spool_dir = _extracted(tmp_path)
    assert load_spool(Spool(spool_dir), db_url).failed == []
    genuine = sorted(_names(spool_dir, "loaded"))[0]
    genuine_bytes = (spool_dir / "loaded" / genuine).read_bytes()
    forged = spool_dir / "ready" / genuine
    forged.write_bytes(genuine_bytes)
    _rewrite(forged, _forge)
    meta = pq.read_metadata(forged).metadata
    fixed = {k.decode(): v.decode() for k, v in meta.items()}
    fixed["wheels_etl.drops"] = str(int(fixed["wheels_etl.drops"]) - 1)
    table = pq.read_table(forged)
    with pq.ParquetWriter(forged, table.schema) as writer:
        writer.add_key_value_metadata(fixed)
        writer.write_table(table, row_group_size=1)
    forged_bytes = forged.read_bytes()
    report = load_spool(Spool(spool_dir), db_url)
    assert [n for n, _ in report.failed] == [genuine]
    assert "does not match its hash" in _failed_reason(spool_dir, genuine)
    assert (spool_dir / "loaded" / genuine).read_bytes() == genuine_bytes

    # on an empty database the forged file would be applied: it fails before the commit
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("TRUNCATE releases, artifacts, drops, spool_files CASCADE")
    for path in spool_dir.glob("*/*"):
        path.unlink()
    forged.write_bytes(forged_bytes)
    report = load_spool(Spool(spool_dir), db_url)
    assert [n for n, _ in report.failed] == [genuine]
    assert "does not match its hash" in _failed_reason(spool_dir, genuine)
    assert _db_releases(db_url) == set()


def test_updated_at_far_in_the_future_is_refused_at_load(tmp_path: Path, db_url: str) -> None:
    """A file stamped in year 9999 would supersede every real update after it, for good
    (newer data wins by updated_at): it fails, and the real release loads."""
    spool_dir = tmp_path / "spool"
    future = _write(spool_dir, "1.0", (_drop(),), datetime(9999, 1, 1, tzinfo=UTC))
    real = _write(spool_dir, "1.0", (_drop(size=11),))
    report = load_spool(Spool(spool_dir), db_url)
    assert [n for n, _ in report.failed] == [future]
    assert "in the future" in _failed_reason(spool_dir, future)
    assert report.applied == [real]


def _edit(path: Path, change: Any) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("where", ["listing", "release.json"])
def test_updated_at_far_in_the_future_fails_its_release_at_extract(
    tmp_path: Path, where: str
) -> None:
    """A source typo of 2999 fails that release only, with one line saying why."""
    tree = write_source_tree(tmp_path / "src")
    typo = "2999-10-02T12:00:00Z"
    if where == "listing":
        _edit(tree / "rhai/releases.json", lambda d: d["releases"][1].update(updated_at=typo))
    _edit(tree / "rhai/3.0.1/release.json", lambda d: d.update(updated_at=typo))
    spool_dir = tmp_path / "spool"
    report = extract(Settings(source_url=str(tree), spool_dir=spool_dir), Spool(spool_dir))
    assert [k for k, _ in report.failed] == ["rhai/3.0.1"]
    reason = report.failed[0][1]
    assert "in the future" in reason and "2999" in reason and "\n" not in reason
    assert _keys(spool_dir, "ready") == {"rhai/3.0.0"}


def test_files_written_by_extract_pass_every_check(tmp_path: Path, db_url: str) -> None:
    """The checks refuse nothing extract writes: the shipped sample collection loads whole,
    twice (the second time every file is unchanged, and hashed all the same)."""
    spool_dir = tmp_path / "spool"
    extract(Settings(source_url=str(sample_source()), spool_dir=spool_dir), Spool(spool_dir))
    first = load_spool(Spool(spool_dir), db_url)
    assert first.failed == [] and len(first.applied) == 7
    Spool(spool_dir).requeue(sorted(_names(spool_dir, "loaded")))
    again = load_spool(Spool(spool_dir), db_url)
    assert again.failed == [] and len(again.unchanged) == 7


# --- 7. inspect: one bad file never breaks the views of the others --------------------------


def test_inspect_skips_a_wrongly_typed_file_and_a_bomb_naming_each(tmp_path: Path) -> None:
    """Before: a file with a JSON column of type int64 made every `inspect --sql` fail with
    a misleading "read-only, refused" message naming no file, and the drops bomb took
    `inspect` to 0.9 GB.  Now each is skipped with one warning naming it."""
    spool_dir = tmp_path / "spool"
    good = _write(spool_dir, "1.0", (_drop(),))
    typed = _write(spool_dir, "2.0", (_drop(),))
    index = SCHEMA.get_field_index("dependency_graph")
    schema = SCHEMA.set(index, pa.field("dependency_graph", pa.int64()))
    _rewrite(
        spool_dir / "ready" / typed,
        lambda rows: [{**r, "dependency_graph": 1} for r in rows],
        schema,
    )
    bomb = drops_bomb(spool_dir / "ready").name
    env = cli_env(spool=spool_dir)
    sql = ["--json", "--sql", "select file, count(*) as n from drops group by 1"]
    out = run_cli("inspect", *sql, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out
    assert "Traceback" not in out.stderr and "read-only" not in out.stderr, out
    for name, why in ((typed, "column dependency_graph is of type int64"), (bomb, "MiB")):
        warned = [line for line in out.stderr.splitlines() if name in line]
        assert len(warned) == 1 and "skipped" in warned[0] and why in warned[0], out
    assert json.loads(out.stdout) == [{"file": good, "n": 1}], out
    # the summary reads footers only: the wrongly typed file is counted as unreadable
    summary = run_cli("inspect", env=env, cwd=tmp_path, timeout=120)
    assert summary.returncode == 0 and "Traceback" not in summary.stderr, summary
    ready = next(line.split() for line in summary.stdout.splitlines() if line.startswith("ready"))
    assert (ready[1], ready[-1]) == ("3", "1"), summary.stdout


def test_reconcile_sends_a_file_that_kills_its_loaders_to_failed(tmp_path: Path) -> None:
    """The kill count also holds when `reconcile` (not the next loader) finds the orphans:
    each time it notes the death and puts the file back in ready/, and at the third death
    in a row the file goes to failed/ instead.  (The loader "dies" by letting its lock go
    without moving the file: what a SIGKILL leaves.)"""
    spool_dir = tmp_path / "spool"
    name = _write(spool_dir, "1.0", (_drop(),))
    spool = Spool(spool_dir)
    for death in range(1, 4):
        claim = spool.claim(name)
        assert claim is not None, death
        claim.close()  # the loader died holding it
        report = spool.reconcile(lease_seconds=0)
        if death < 3:
            assert report.requeued == [name] and _names(spool_dir, "ready") == {name}, death
    assert report.requeued == [] and _names(spool_dir, "failed") == {name}
    record = spool.failure(name)
    assert record is not None and record.last is not None
    assert [a.error_class for a in record.attempts] == ["LoaderDied"] * 3 + ["LoaderKilledError"]
    assert "died 3 times in a row" in record.last.message
