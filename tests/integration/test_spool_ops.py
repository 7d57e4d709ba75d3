"""Operating the spool through the real CLI (subprocesses, real Postgres): replay in its
three forms (FILE, --failed, ``make replay``), status (text and --json, with warnings),
prune, bad files in ready/, a full disk, and two extractors or two loaders at once."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl.load import load_spool
from etl.progress import human_bytes
from etl.spool import Spool, SpoolName, SpoolState
from etl.spooling import format as fmt
from tests.support.cli import CliResult, cli_env, run_cli, start_cli, wait_cli
from tests.support.env import REPO
from tests.support.gen import GenSpec, generate
from tests.support.oracle import db_snapshot, diff, expected_snapshot, iter_expected
from tests.support.procs import dump_db, spool_snapshot

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


# --- helpers ------------------------------------------------------------------------------


def _row(arch: str, *, graph: Any = None, wheel: str = "a-1.0-py3-none-any.whl") -> fmt.ArtifactRow:
    drop = fmt.Drop(wheel, "a", "1.0", None, "py3", "none", "any", "ab" * 32, 10, T0)
    return fmt.ArtifactRow(
        architecture=arch,
        variant="cpu",
        build_id="b1",
        built_at=T0,
        dependency_graph=json.dumps({"": [], "arch": arch} if graph is None else graph),
        constraints_file=json.dumps([{"name": "a", "specifier": "==1.0", "marker": None}]),
        build_sequence_summary=json.dumps([{"step": 1}]),
        drops=(drop,),
    )


def _write(
    spool: Spool,
    release: str,
    *,
    updated_at: datetime = T0,
    graph: Any = None,
    product: str = "rhai",
) -> str:
    with spool.writer(product, release, updated_at, f"http://src/{product}/{release}") as w:
        w.add(_row("x86_64", graph=graph))
        w.add(_row("aarch64"))
        return w.commit().name


def _dir(spool: Spool, state: str) -> Path:
    """A local spool's state folder (these tests poke files on disk)."""
    return Path(spool.location) / state


def _side(spool: Spool, name: str) -> dict[str, Any] | None:
    """The file's error sidecar, as its JSON document."""
    record = spool.failure(name)
    return None if record is None else record.to_json()


def _cli(spool: Spool, db: str | None, *args: str, **kw: Any) -> CliResult:
    return run_cli(*args, env=cli_env(spool=Path(spool.location), database_url=db), **kw)


def _data(db: str) -> dict[str, list[tuple[Any, ...]]]:
    """The data tables in full, loaded_at included (the ledger left out)."""
    d = dump_db(db, {})
    del d["spool_files"]
    return d


def _ledger(db: str) -> dict[str, tuple[str, int]]:
    """(outcome of the latest load, number of loads) per file."""
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT file_name, last_outcome, load_count FROM spool_files"
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def _names(spool: Spool, state: SpoolState) -> set[str]:
    return {f.name for f in spool.files(state)}


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool")


# --- replay ---------------------------------------------------------------------------------


def test_replay_of_loaded_files_is_idempotent_and_keeps_newer_data(
    spool: Spool, db_url: str
) -> None:
    old = _write(spool, "3.0", graph={"": [], "old": True})
    new = _write(spool, "3.0", updated_at=T0 + timedelta(days=1), graph={"": [], "new": True})
    other = _write(spool, "4.0")
    first = _cli(spool, db_url, "load")
    assert first.returncode == 0, first
    before = _data(db_url)

    again = _cli(spool, db_url, "replay", old)  # the stale version, by bare name
    assert again.returncode == 0, again
    assert "replay: 1 file(s) back in ready/" in again.stdout
    assert _data(db_url) == before  # the newer data stays, not a row touched
    assert _ledger(db_url)[old] == ("superseded", 2)
    with psycopg.connect(db_url) as conn:  # what applied the data stays on record
        assert conn.execute(
            "SELECT outcome FROM spool_files WHERE file_name = %s", [old]
        ).fetchone() == ("applied",)

    path = _dir(spool, "loaded") / new  # by path, two at once
    again = _cli(spool, db_url, "replay", str(path), other)
    assert again.returncode == 0, again
    assert _data(db_url) == before
    ledger = _ledger(db_url)
    assert ledger[new] == ("unchanged", 2) and ledger[other] == ("unchanged", 2)
    assert _names(spool, "loaded") == {old, new, other} and not _names(spool, "ready")
    with psycopg.connect(db_url) as conn:
        graph = conn.execute(
            "SELECT dependency_graph FROM artifacts WHERE release = '3.0' AND architecture ="
            " 'x86_64'"
        ).fetchone()
    assert graph == ({"": [], "new": True},)


def test_replay_failed_that_fails_again_keeps_the_history(spool: Spool, db_url: str) -> None:
    good = _write(spool, "1.0")
    bad = _write(spool, "2.0", graph={"": [], "text": "a\u0000b"})  # jsonb refuses \u0000
    first = _cli(spool, db_url, "load")
    assert first.returncode == 1, first
    assert f"replay with: wheels-etl replay {bad}" in first.stderr
    assert _names(spool, "failed") == {bad} and _names(spool, "loaded") == {good}

    again = _cli(spool, db_url, "replay", "--failed")
    assert again.returncode == 1, again
    assert _names(spool, "failed") == {bad}
    side = _side(spool, bad)
    assert side is not None and side["count"] == 2 and len(side["attempts"]) == 2
    for attempt in side["attempts"]:
        assert attempt["sqlstate"] == "22P05" and "rhai/2.0" in attempt["message"]
    assert side["attempts"][0]["at"] <= side["attempts"][1]["at"]

    third = _cli(spool, db_url, "replay", bad)
    assert third.returncode == 1
    side = _side(spool, bad)
    assert side is not None and side["count"] == 3
    assert _ledger(db_url) == {good: ("applied", 1)}


def test_make_replay_loads_failed_files_once_the_cause_is_fixed(spool: Spool, db_url: str) -> None:
    """``make replay`` (= ``wheels-etl replay --failed``) from the repository's Makefile.

    The venv stamp is older than pyproject.toml here, so plain ``make replay`` would
    reinstall the package into the shared venv first; ``-o <stamp>`` tells make to treat
    the stamp as up to date and leaves the venv alone.  The replay itself is the real one.
    """
    names = [_write(spool, "1.0"), _write(spool, "2.0")]
    assert _cli(spool, db_url, "migrate").returncode == 0
    with psycopg.connect(db_url, autocommit=True) as conn:  # the database refuses drops
        conn.execute(
            "CREATE FUNCTION no_drops() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'drops are frozen today'; END $$;"
            " CREATE TRIGGER no_drops BEFORE INSERT ON drops FOR EACH ROW"
            " EXECUTE FUNCTION no_drops()"
        )
    first = _cli(spool, db_url, "load")
    assert first.returncode == 1 and _names(spool, "failed") == set(names), first
    assert "drops are frozen today" in first.stderr
    with psycopg.connect(db_url, autocommit=True) as conn:  # the fix
        conn.execute("DROP TRIGGER no_drops ON drops")

    env = cli_env(spool=Path(spool.location), database_url=db_url)
    make = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "-o", ".venv/.installed-dev", "replay"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert make.returncode == 0, make.stdout + make.stderr
    assert "pip install" not in make.stdout
    assert "replay: 2 file(s) back in ready/" in make.stdout
    assert _names(spool, "loaded") == set(names) and not _names(spool, "failed")
    assert _ledger(db_url) == {n: ("applied", 1) for n in names}
    side = _side(spool, names[0])  # the history travels with the file
    assert side is not None and side["count"] == 1


def test_foreign_and_broken_files_in_ready_fail_and_the_loader_goes_on(
    spool: Spool, db_url: str
) -> None:
    good = [_write(spool, "1.0"), _write(spool, "2.0")]
    ready = _dir(spool, "ready")
    (ready / "notes.parquet").write_text("meeting notes, not Parquet\n")
    pq.write_table(pa.table({"x": [1, 2]}), ready / "export-2024.parquet")  # valid, foreign
    truncated = _write(spool, "3.0")
    data = (ready / truncated).read_bytes()
    (ready / truncated).write_bytes(data[: len(data) // 2])
    (ready / "README.txt").write_text("not a spool file at all\n")  # ignored: not .parquet

    result = _cli(spool, db_url, "load")
    assert result.returncode == 1, result
    bad = {"notes.parquet", "export-2024.parquet", truncated}
    assert _names(spool, "failed") == bad and _names(spool, "loaded") == set(good)
    for name in bad:
        assert re.search(rf"^  failed {re.escape(name)}: ", result.stderr, re.M), result
        assert f"replay with: wheels-etl replay {name}" in result.stderr
        side = _side(spool, name)
        assert side is not None and side["count"] == 1
        assert side["last"]["error_class"] == "CorruptSpoolFileError", side
    notes = _side(spool, "notes.parquet")
    assert notes is not None and "not a wheels-etl spool name" in notes["last"]["message"]
    assert (ready / "README.txt").exists()
    assert set(_ledger(db_url)) == set(good)


# --- status -----------------------------------------------------------------------------------


def test_status_text_and_json(spool: Spool, db_url: str) -> None:
    loaded = [_write(spool, "1.0"), _write(spool, "2.0")]
    bad = _write(spool, "3.0", graph={"": [], "t": "\u0000"})
    assert _cli(spool, db_url, "load").returncode == 1
    waiting = [_write(spool, "4.0"), _write(spool, "5.0", product="webstack")]
    three_hours_ago = time.time() - 3 * 3600
    os.utime(_dir(spool, "ready") / waiting[0], (three_hours_ago, three_hours_ago))

    text = _cli(spool, db_url, "status")
    assert text.returncode == 1, text  # failed files make status non-zero
    out = text.stdout
    size = {s: sum(f.size for f in spool.files(s)) for s in ("ready", "loaded", "failed")}
    assert re.search(rf"ready\s+2\s+2\s+{re.escape(human_bytes(size['ready']))}", out), out
    assert re.search(rf"loaded\s+2\s+2\s+{re.escape(human_bytes(size['loaded']))}", out), out
    assert re.search(r"failed\s+1\s+1\s", out) and re.search(r"loading\s+0\s+0\s", out)
    assert re.search(r"oldest ready file: 3\.\dh old", out), out
    assert f"  failed/{bad}: " in out and f"replay: wheels-etl replay {bad}" in out
    reason = next(line for line in out.splitlines() if line.startswith(f"  failed/{bad}: "))
    assert "22P05" in reason and "attempts: 1" in reason
    assert re.search(r"database ledger: 2 file\(s\); last rhai~[12]\.0~", out), out
    assert "WARNING" not in out

    js = _cli(spool, db_url, "status", "--json")
    info = json.loads(js.stdout)
    assert info["states"]["ready"] == {"files": 2, "releases": 2, "bytes": size["ready"]}
    assert info["states"]["loaded"] == {"files": 2, "releases": 2, "bytes": size["loaded"]}
    assert info["states"]["failed"]["files"] == 1 and info["states"]["loading"]["files"] == 0
    assert 3 * 3600 <= info["oldest_ready_age_seconds"] < 4 * 3600
    [failed] = info["failed"]
    assert failed["file"] == bad and failed["attempts"] == 1 and failed["sqlstate"] == "22P05"
    assert "\n" not in failed["reason"] and failed["replay"] == f"wheels-etl replay {bad}"
    assert info["database"]["files"] == 2 and info["database"]["last_file"] in loaded
    assert info["warnings"] == []

    # disagreement both ways: a loaded file the ledger never saw, a ledger file back in ready
    stray = _write(spool, "6.0")
    spool.move(stray, "loaded")
    spool.requeue([loaded[0]])
    shown = _cli(spool, db_url, "status").stdout
    js_warn = json.loads(_cli(spool, db_url, "status", "--json").stdout)["warnings"]
    assert len(js_warn) == 2
    assert "unknown to the database ledger" in js_warn[0] and stray in js_warn[0]
    assert "ledger has loaded sit in ready/" in js_warn[1] and loaded[0] in js_warn[1]
    for w in js_warn:
        assert f"WARNING: {w}" in shown


def test_status_without_a_database_still_shows_the_spool(spool: Spool) -> None:
    _write(spool, "1.0")
    result = _cli(spool, "host=127.0.0.1 port=1 dbname=x user=postgres connect_timeout=2", "status")
    assert result.returncode == 3, result  # the database is unavailable: exit 3
    assert re.search(r"ready\s+1\s+1\s", result.stdout)
    said = (result.stdout + result.stderr).count("Connection refused")
    assert "database:" in result.stdout and said == 1, result  # said once


# --- prune ------------------------------------------------------------------------------------


def test_prune_deletes_only_old_loaded_files_and_says_what_it_freed(
    spool: Spool, db_url: str
) -> None:
    names = [_write(spool, f"{i}.0") for i in range(4)]
    assert _cli(spool, db_url, "load").returncode == 0
    old_ready = _write(spool, "9.0")
    old_failed = _write(spool, "8.0")
    spool.move(old_failed, "failed")
    eight_days = time.time() - 8 * 86400
    aged = [_dir(spool, "loaded") / names[0], _dir(spool, "loaded") / names[1]]
    aged += [_dir(spool, "ready") / old_ready, _dir(spool, "failed") / old_failed]
    for p in aged:
        os.utime(p, (eight_days, eight_days))
    freed = sum(p.stat().st_size for p in aged[:2])

    result = _cli(spool, None, "prune", "--older-than", "7d")
    assert result.returncode == 0, result
    assert f"prune: deleted 2 loaded file(s), freed {human_bytes(freed)}" in result.stdout
    assert _names(spool, "loaded") == set(names[2:])
    assert _names(spool, "ready") == {old_ready} and _names(spool, "failed") == {old_failed}
    again = _cli(spool, None, "prune", "--older-than", "7d")
    assert "deleted 0 loaded file(s), freed 0 B" in again.stdout
    assert _cli(spool, None, "prune", "--older-than", "soon").returncode == 2


# --- disk full ---------------------------------------------------------------------------------

BIG = GenSpec(products=1, releases=12, artifacts=4, packages=150, drops=150, seed=2)


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True,
            check=False,
        )
    except OSError:
        return False
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[tuple[Path, Callable[[], None] | None]]:
    """A spool folder on a 2 MiB tmpfs when mounting works (root), with a function that
    grows it ("space freed"); else a plain folder and None (then a file-size limit in the
    child plays the full disk)."""
    where = tmp_path / "disk"
    if not _mount_tmpfs(where, "2m"):
        yield where, None
        return

    def grow() -> None:
        subprocess.run(["mount", "-o", "remount,size=64m", str(where)], check=True)

    try:
        yield where, grow
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))


def test_disk_full_stops_extract_with_a_clear_message_and_next_run_goes_on(
    tmp_path: Path, small_disk: tuple[Path, Callable[[], None] | None], db_url: str
) -> None:
    source = tmp_path / "src"
    generate(source, BIG)
    disk, grow = small_disk
    root = disk / "spool"
    env = cli_env(spool=root, source=source)
    limit: dict[str, Any] = {} if grow else {"preexec_fn": _limit_file_size}
    full = run_cli("extract", "--workers", "2", env=env, **limit)
    stopped = [line for line in full.stderr.splitlines() if line.startswith("extract stopped")]
    print(f"\ndisk full via {'a 2 MiB tmpfs' if grow else 'RLIMIT_FSIZE'}: {stopped}")
    assert full.returncode == 4, full
    message = full.stderr
    assert f"no space left in spool folder {root.resolve()}" in message, message
    assert re.search(r"needs about \d+ bytes", message), message
    assert "extract stopped:" in message
    snap = spool_snapshot(root)
    assert not snap.problems(), snap.problems()  # no partial file, nothing left in tmp/
    total = sum(1 for _ in iter_expected(source))
    assert len(snap.in_state("ready")) < total

    if grow:
        grow()  # space freed
        again = run_cli("extract", "--workers", "2", env=env)
    else:
        again = run_cli("extract", "--workers", "2", env=env)  # the limit lifted
    assert again.returncode == 0, again
    snap = spool_snapshot(root)
    assert not snap.problems() and len(snap.in_state("ready")) == total
    report = load_spool(Spool(root), db_url, retry_seconds=10)
    assert report.ok
    assert not diff(expected_snapshot(source), db_snapshot(db_url))


# --- two at once ------------------------------------------------------------------------------

PAIR = GenSpec(products=2, releases=6, artifacts=3, packages=30, drops=30, seed=9, page_size=4)


@pytest.fixture
def pair_source(tmp_path: Path) -> Path:
    generate(tmp_path / "src", PAIR)
    return tmp_path / "src"


def test_two_extractors_on_one_spool_never_corrupt_a_file(
    pair_source: Path, tmp_path: Path, db_url: str
) -> None:
    root = tmp_path / "spool"
    env = cli_env(spool=root, source=pair_source)
    procs = [start_cli("extract", env=env) for _ in range(2)]
    results = [wait_cli(p) for p in procs]
    for r in results:
        assert r.returncode == 0, r
    snap = spool_snapshot(root)
    assert not snap.problems(), snap.problems()
    expected = {f"{r.product}/{r.version}" for r in iter_expected(pair_source)}
    keys = [SpoolName.parse(n).release_key for n in snap.in_state("ready")]
    assert sorted(keys) == sorted(expected)  # one file per release, every one readable
    report = load_spool(Spool(root), db_url, retry_seconds=10)
    assert report.ok and len(report.applied) == len(expected)
    assert not diff(expected_snapshot(pair_source), db_snapshot(db_url))


def test_two_loaders_at_once_load_each_file_once(
    pair_source: Path, tmp_path: Path, db_url: str
) -> None:
    root = tmp_path / "spool"
    assert run_cli("extract", env=cli_env(spool=root, source=pair_source)).returncode == 0
    names = {f.name for f in Spool(root).files("ready")}
    env = cli_env(spool=root, database_url=db_url)
    procs = [start_cli("load", "--workers", "2", env=env) for _ in range(2)]
    results = [wait_cli(p) for p in procs]
    for r in results:
        assert r.returncode == 0, r
    applied = [
        m[1] for r in results for m in re.finditer(r"^applied (\S+\.parquet)", r.stderr, re.M)
    ]
    assert sorted(applied) == sorted(names)  # each file applied once, by one of the two
    spool = Spool(root)
    assert _names(spool, "loaded") == names
    assert not (_names(spool, "ready") | _names(spool, "loading") | _names(spool, "failed"))
    assert _ledger(db_url) == {n: ("applied", 1) for n in names}
    assert not diff(expected_snapshot(pair_source), db_snapshot(db_url))
