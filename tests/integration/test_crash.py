"""Real processes, really killed: ``python -m etl extract`` and ``python -m etl load`` are
SIGKILLed at each injected crash point and at random moments, then run again to the end;
the database (a full dump, JSON as ``jsonb::text``) and the spool (files per state, no
leftovers, every file readable) must equal those of a run that was never interrupted.

Run with ``-s`` to see the kill-loop summary lines.
"""

from __future__ import annotations

import contextlib
import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from etl.load import load_spool
from etl.spool import STATES, Spool, SpoolName, SpoolState
from tests.support.cli import cli_env as env_for
from tests.support.cli import kill_after, run_cli, start_cli, wait_cli
from tests.support.gen import GenSpec, generate
from tests.support.httpserver import SourceServer
from tests.support.oracle import db_snapshot, diff, expected_snapshot, iter_expected
from tests.support.procs import (
    EXTRACT_TIMES,
    LOAD_TIMES,
    Dump,
    copy_spool,
    dump_db,
    dump_diff,
    fresh_database,
    spool_snapshot,
)

KILLS = 30
SEED = 1234
#: Injected-point tests go over HTTP: a small tree (2 products x 4 releases x 2 artifacts).
SMALL = GenSpec(products=2, releases=4, artifacts=2, packages=20, drops=20, seed=11, page_size=2)
#: Kill loops: 2 products x 8 releases x 4 artifacts, small graphs, read via file://.
LOOP = GenSpec(products=2, releases=8, artifacts=4, packages=20, drops=20, seed=5, page_size=3)
_SUMMARY = re.compile(r"extract: (\d+) spooled, (\d+) unchanged, (\d+) failed")


@dataclass(frozen=True)
class Reference:
    """What an uninterrupted extract, then load, of a source leaves behind."""

    source: Path
    spool: Path  # the uninterrupted extract's spool, every file in ready/
    names: frozenset[str]
    dump: Dump  # after loading ``spool`` into an empty database (extract times left out)
    extract_seconds: float


def _reference(root: Path, work: Path, server_url: str, source_url: str) -> Reference:
    spool = work / "reference-spool"
    result = run_cli("extract", env=env_for(spool=spool, source=source_url))
    assert result.returncode == 0, result
    snap = spool_snapshot(spool)
    assert not snap.problems(), snap.problems()
    names = snap.in_state("ready")
    assert len(names) == sum(1 for _ in iter_expected(root)) and not snap.in_state("failed")
    loaded = work / "reference-loaded"
    copy_spool(spool, loaded)
    with fresh_database(server_url) as db:
        assert load_spool(Spool(loaded), db, retry_seconds=10).ok
        # the reference itself is right: equal to an independent reading of the source
        problems = diff(expected_snapshot(root), db_snapshot(db))
        assert not problems, problems
        dump = dump_db(db, EXTRACT_TIMES)
    return Reference(root, spool, names, dump, result.seconds)


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SourceServer]:
    """One server for the module: the source URL (its port) is part of what is loaded."""
    root = tmp_path_factory.mktemp("crash-small") / "src"
    generate(root, SMALL)
    with SourceServer(root) as server:
        yield server


@pytest.fixture(scope="module")
def small(small_server: SourceServer, pg_server_url: str) -> Reference:
    assert small_server.root is not None
    root = Path(small_server.root)
    return _reference(root, root.parent, pg_server_url, small_server.url)


@pytest.fixture(scope="module")
def looped(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str) -> Reference:
    work = tmp_path_factory.mktemp("crash-loop")
    generate(work / "src", LOOP)
    return _reference(work / "src", work, pg_server_url, str(work / "src"))


def _all_to_ready(root: Path) -> None:
    """Put every file back in ready/ (what ``replay`` does), to load the whole spool."""
    spool = Spool(root)
    for state in ("loading", "loaded", "failed"):
        for f in spool.files(state):
            spool.move(f, "ready")


def _db_after_loading(root: Path, server_url: str, db: str | None = None) -> Dump:
    """Load the whole spool into an empty database (a new one, or ``db`` emptied)."""
    _all_to_ready(root)
    if db is None:
        with fresh_database(server_url) as new:
            return _db_after_loading(root, server_url, new)
    with psycopg.connect(db, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('spool_files')").fetchone() != (None,):
            conn.execute("TRUNCATE releases, artifacts, drops, spool_files")
    report = load_spool(Spool(root), db, retry_seconds=10)
    assert report.ok, report
    return dump_db(db, EXTRACT_TIMES)


def _assert_complete(root: Path, ref: Reference) -> None:
    """The spool holds exactly the reference's files, all readable, nothing else."""
    snap = spool_snapshot(root)
    assert not snap.problems(), snap.problems()
    assert snap.all_files == ref.names, (sorted(snap.all_files ^ ref.names), snap.states)


def _identity(root: Path) -> dict[str, tuple[int, int]]:
    """name -> (inode, mtime): unchanged when a file was neither rewritten nor re-fetched."""
    out = {}
    for state in STATES:
        for f in Spool(root).files(state):
            st = (root / state / f.name).stat()
            out[f.name] = (st.st_ino, st.st_mtime_ns)
    return out


def _release_json_path(root: Path, key: str) -> str:
    for rel in iter_expected(root):
        if f"{rel.product}/{rel.version}" == key:
            return "/" + rel.url
    raise KeyError(key)


def _counts(stdout: str) -> tuple[int, int, int]:
    m = _SUMMARY.search(stdout)
    assert m, stdout
    return int(m[1]), int(m[2]), int(m[3])


# --- extract: injected points (over HTTP) --------------------------------------------------


@pytest.mark.parametrize(
    "point",
    ["extract-mid-download:50", "extract-mid-release:5", "extract-before-rename:4"],
)
def test_extract_killed_at_point_resumes_without_refetching(
    small: Reference, small_server: SourceServer, tmp_path: Path, pg_server_url: str, point: str
) -> None:
    root = tmp_path / "spool"
    server = small_server
    env = env_for(spool=root, source=server.url)
    killed = run_cli("extract", "--workers", "2", env={**env, "ETL_CRASH_AT": point})
    assert killed.killed, killed

    after = spool_snapshot(root)
    # no half file in any state folder, whatever the instant
    assert not after.unreadable and not any(after.other.values()), after
    if point.startswith("extract-before-rename"):
        assert any(n.endswith(".part") for n in after.tmp), after.tmp  # complete, unpublished
    spooled = sorted(after.in_state("ready"))
    # with 2 releases in flight, the n-th hit comes after at least n-2 releases finished
    assert len(spooled) >= 2, spooled
    # the files already spooled sit in every state a loader can put them in
    spool = Spool(root)
    for i, name in enumerate(spooled):
        state: SpoolState = ("ready", "loaded", "failed", "loading")[i % 4]
        if state != "ready":
            spool.move(name, state)
    before = _identity(root)

    server.clear()
    again = run_cli("extract", "--workers", "2", env=env)
    assert again.returncode == 0, again
    for name in spooled:  # their release.json (the first thing fetched) not asked again
        key = SpoolName.parse(name).release_key
        assert server.count(_release_json_path(small.source, key)) == 0, key
    n_spooled, n_unchanged, n_failed = _counts(again.stdout)
    assert (n_unchanged, n_failed) == (len(spooled), 0), again.stdout
    assert n_spooled == len(small.names) - len(spooled)

    after_all = _identity(root)
    assert {n: after_all[n] for n in before} == before  # not rewritten
    _assert_complete(root, small)
    problems = dump_diff(small.dump, _db_after_loading(root, pg_server_url))
    assert not problems, problems


# --- load: injected points --------------------------------------------------------------


@dataclass(frozen=True)
class LoadReference:
    spool: Path  # every file in ready/
    names: frozenset[str]
    dump: Dump  # after an uninterrupted load (load times left out; ledger included)
    seconds: float


@pytest.fixture(scope="module")
def load_ref(
    looped: Reference, tmp_path_factory: pytest.TempPathFactory, pg_server_url: str
) -> LoadReference:
    work = tmp_path_factory.mktemp("load-ref")
    copy_spool(looped.spool, work / "spool")
    with fresh_database(pg_server_url) as db:
        result = run_cli("load", env=env_for(spool=work / "spool", database_url=db))
        assert result.returncode == 0, result
        dump = dump_db(db, LOAD_TIMES)
    snap = spool_snapshot(work / "spool")
    assert snap.in_state("loaded") == looped.names and not snap.problems()
    ledger = dump["spool_files"]
    assert len(ledger) == len(looped.names)
    return LoadReference(looped.spool, looped.names, dump, result.seconds)


def _assert_loaded_like_reference(root: Path, db: str, ref: LoadReference) -> None:
    snap = spool_snapshot(root)
    assert not snap.problems(), snap.problems()
    assert snap.in_state("loaded") == ref.names, snap.states
    assert not (snap.in_state("ready") | snap.in_state("loading") | snap.in_state("failed"))
    problems = dump_diff(ref.dump, dump_db(db, LOAD_TIMES))  # ledger: each file once, applied
    assert not problems, problems


@pytest.mark.parametrize(
    "point",
    [
        "load-before-copy",
        "load-mid-copy",
        "load-after-commit",
        "load-before-copy:6",
        "load-mid-copy:6",
        "load-after-commit:6",
    ],
)
def test_load_killed_at_point_ends_like_an_uninterrupted_run(
    load_ref: LoadReference, tmp_path: Path, pg_server_url: str, point: str
) -> None:
    root = tmp_path / "spool"
    copy_spool(load_ref.spool, root)
    with fresh_database(pg_server_url) as db:
        env = env_for(spool=root, database_url=db)
        killed = run_cli("load", env={**env, "ETL_CRASH_AT": point})
        assert killed.killed, killed
        snap = spool_snapshot(root)
        # the file being loaded, and the next one if the read-ahead had claimed it already
        loading = sorted(snap.in_state("loading"))
        assert 1 <= len(loading) <= 2 and not snap.problems(), snap.states
        nth = int(point.partition(":")[2] or 1)
        committed = nth - (0 if point.startswith("load-after-commit") else 1)
        assert len(snap.in_state("loaded")) == nth - 1
        with psycopg.connect(db) as conn:
            ledger = {r[0] for r in conn.execute("SELECT file_name FROM spool_files")}
        assert len(ledger) == committed
        again = run_cli("load", env=env)
        assert again.returncode == 0, again
        # the killed file is recovered from the ledger if it had committed; any other file
        # in loading/ (the killed one before its commit, or the one claimed ahead) applies
        assert (len(set(loading) & ledger) == 1) is point.startswith("load-after-commit")
        for orphan in loading:
            outcome = "recovered" if orphan in ledger else "applied"
            assert re.search(rf"^{outcome}\s+{re.escape(orphan)}", again.stderr, re.M), again
        _assert_loaded_like_reference(root, db, load_ref)


def test_load_survives_backends_terminated_mid_load(
    load_ref: LoadReference, tmp_path: Path, pg_server_url: str
) -> None:
    """``pg_terminate_backend`` of the loader's connection in the middle of a file's COPY,
    three times: each file goes back to ready and is retried; nothing fails, nothing is lost
    or doubled."""
    root = tmp_path / "spool"
    copy_spool(load_ref.spool, root)
    with fresh_database(pg_server_url) as db:
        proc = start_cli("load", "--retry-seconds", "120", env=env_for(spool=root, database_url=db))
        terminated = 0
        with psycopg.connect(db, autocommit=True) as admin:
            while proc.poll() is None and terminated < 3:
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND state IN ('idle in transaction', 'active') AND query ILIKE 'COPY%'"
                ).fetchall()
                terminated += sum(1 for r in rows if r[0])
                _pause(proc)
        result = wait_cli(proc)
        assert result.returncode == 0, result
        assert terminated >= 1
        assert re.search(r"^requeued ", result.stderr, re.M), result  # one line per event
        assert not re.search(r"^failed ", result.stderr, re.M), result
        _assert_loaded_like_reference(root, db, load_ref)


def test_connection_dropped_with_no_retry_sends_files_back_to_ready(
    load_ref: LoadReference, tmp_path: Path, pg_server_url: str
) -> None:
    """With no retry budget the loader gives up (exit 3): the file it held goes back to
    ready, never to failed, with no error sidecar; the next run finishes the job."""
    root = tmp_path / "spool"
    copy_spool(load_ref.spool, root)
    with fresh_database(pg_server_url) as db:
        env = env_for(spool=root, database_url=db)
        proc = start_cli("load", "--retry-seconds", "0", env=env)
        terminated = 0
        with psycopg.connect(db, autocommit=True) as admin:
            while proc.poll() is None and not terminated:
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND state IN ('idle in transaction', 'active') AND query ILIKE 'COPY%'"
                ).fetchall()
                terminated += sum(1 for r in rows if r[0])
                _pause(proc)
        result = wait_cli(proc)
        assert terminated == 1
        assert result.returncode == 3, result
        assert "went back to ready" in result.stderr, result
        snap = spool_snapshot(root)
        assert not snap.in_state("failed") and not snap.in_state("loading")
        assert snap.in_state("ready") and not any(snap.sidecars.values())
        again = run_cli("load", env=env)
        assert again.returncode == 0, again
        _assert_loaded_like_reference(root, db, load_ref)


def test_load_survives_a_postgres_restart_mid_copy(load_ref: LoadReference, tmp_path: Path) -> None:
    """A PostgreSQL server of the test's own (the embedded one wheels-etl ships) is stopped
    while the loader is inside a COPY, then started again: the loader retries, the file it
    held goes back to ready and is loaded again; nothing fails, nothing is lost or doubled."""
    from etl.db.embedded import db_start, db_stop

    # under /tmp itself: as root, the server's own account must be able to enter the folders
    parent = Path(tempfile.mkdtemp(prefix="wheels-etl-restart-"))
    data_dir = parent / "pg"
    url = db_start(data_dir)
    try:
        root = tmp_path / "spool"
        copy_spool(load_ref.spool, root)
        proc = start_cli(
            "load", "--retry-seconds", "120", env=env_for(spool=root, database_url=url)
        )
        copying = False
        with psycopg.connect(url, autocommit=True) as admin:
            while proc.poll() is None and not copying:
                copying = bool(
                    admin.execute(
                        "SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                        " AND state IN ('idle in transaction', 'active') AND query ILIKE 'COPY%'"
                    ).fetchall()
                )
                _pause(proc)
        assert copying, "the load ended before a COPY was seen"
        assert db_stop(data_dir)
        assert db_start(data_dir) == url
        result = wait_cli(proc)
        assert result.returncode == 0, result
        assert re.search(r"^requeued ", result.stderr, re.M), result
        assert re.search(r"^retry", result.stderr, re.M), result
        assert not re.search(r"^failed ", result.stderr, re.M), result
        _assert_loaded_like_reference(root, url, load_ref)
    finally:
        db_stop(data_dir)
        shutil.rmtree(parent, ignore_errors=True)


def _pause(proc: subprocess.Popen[str]) -> None:
    """Between two looks at pg_stat_activity: wait on the loader's exit (wakes at once when
    it ends), for at most 5 ms.  Postgres has no event another session receives when a COPY
    starts (NOTIFY is delivered at commit), so the look itself stays a poll."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=0.005)


# --- random kills ---------------------------------------------------------------------------


def _delays(rng: random.Random, seconds: float) -> Iterator[float]:
    while True:
        yield rng.uniform(0.0, seconds)


@pytest.mark.slow
def test_extract_random_kill_loop(looped: Reference, tmp_path: Path, pg_server_url: str) -> None:
    with fresh_database(pg_server_url) as db:  # emptied before each comparison
        _extract_kill_loop(looped, tmp_path, pg_server_url, db)


def _extract_kill_loop(looped: Reference, tmp_path: Path, pg_server_url: str, db: str) -> None:
    rng = random.Random(SEED)
    kills = finished_first = mid_work = 0
    for attempt, delay in enumerate(_delays(rng, looped.extract_seconds)):
        if kills == KILLS:
            break
        assert attempt < 3 * KILLS, "the command kept finishing before the kill"
        root = tmp_path / f"spool-{attempt}"
        env = env_for(spool=root, source=looped.source)
        killed = kill_after(start_cli("extract", env=env), delay)
        if not killed.killed:
            assert killed.returncode == 0, killed
            finished_first += 1
            continue
        kills += 1
        after = spool_snapshot(root) if root.exists() else None
        spooled: frozenset[str] = frozenset()
        if after is not None:
            assert not after.unreadable and not any(after.other.values()), (delay, after)
            spooled = after.in_state("ready")
            mid_work += bool(spooled or after.tmp)
        before = _identity(root) if root.exists() else {}

        again = run_cli("extract", env=env)
        assert again.returncode == 0, (delay, again)
        assert _counts(again.stdout) == (len(looped.names) - len(spooled), len(spooled), 0)
        assert {n: v for n, v in _identity(root).items() if n in before} == before
        _assert_complete(root, looped)
        problems = dump_diff(looped.dump, _db_after_loading(root, pg_server_url, db))
        assert not problems, (delay, problems)
    print(
        f"\nextract kill loop: {kills} kills survived, database identical each time"
        f" ({mid_work} after files were spooled or being written; {finished_first} runs"
        f" finished before their kill; uninterrupted run {looped.extract_seconds:.2f} s)"
    )


@pytest.mark.slow
def test_load_random_kill_loop(load_ref: LoadReference, tmp_path: Path, pg_server_url: str) -> None:
    rng = random.Random(SEED)
    kills = finished_first = mid_work = 0
    for attempt, delay in enumerate(_delays(rng, load_ref.seconds)):
        if kills == KILLS:
            break
        assert attempt < 3 * KILLS, "the command kept finishing before the kill"
        root = tmp_path / f"spool-{attempt}"
        copy_spool(load_ref.spool, root)
        with fresh_database(pg_server_url) as db:
            env = env_for(spool=root, database_url=db)
            killed = kill_after(start_cli("load", env=env), delay)
            if not killed.killed:
                assert killed.returncode == 0, killed
                finished_first += 1
                continue
            kills += 1
            after = spool_snapshot(root)
            assert not after.problems(), (delay, after.problems())
            mid_work += len(after.in_state("ready")) < len(load_ref.names)
            again = run_cli("load", env=env)
            assert again.returncode == 0, (delay, again)
            _assert_loaded_like_reference(root, db, load_ref)
    print(
        f"\nload kill loop: {kills} kills survived, database identical each time"
        f" ({mid_work} after files were claimed; {finished_first} runs finished before"
        f" their kill; uninterrupted run {load_ref.seconds:.2f} s)"
    )
