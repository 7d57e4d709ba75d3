"""Hostile input, round two (issue 10): no escape, no hang, no traceback, no stuck release.

Against real files, a real HTTP server, real subprocesses and real Postgres.  Product
``rhai`` has releases 1.0.0, 1.0.1 and 1.0.2 (two artifacts each); every fault is aimed at
1.0.1, which must fail alone with a one-line reason while 1.0.0 and 1.0.2 are spooled
complete and nothing half-written is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from etl.config import Settings
from etl.extract import ExtractReport, extract
from etl.load import load_spool
from etl.spool import STATES, Spool, SpoolName
from tests.support.cli import cli_env, run_cli, start_cli
from tests.support.httpserver import Fault, SourceServer
from tests.support.sourcetree import write_source_tree

VERSIONS = ["1.0.0", "1.0.1", "1.0.2"]
BAD = "rhai/1.0.1"
GOOD = {"rhai/1.0.0", "rhai/1.0.2"}
ART = "rhai/1.0.1/x86_64/cpu"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return write_source_tree(tmp_path / "src", {"rhai": VERSIONS})


def run(source: str | Path, spool_dir: Path, **overrides: Any) -> ExtractReport:
    values: dict[str, Any] = {
        "source_url": str(source),
        "spool_dir": spool_dir,
        "workers": 4,
        "retries": 2,
        "retry_max_seconds": 10.0,
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
    }
    values.update(overrides)
    return extract(Settings(**values), Spool(spool_dir))


def ready_keys(spool_dir: Path) -> set[str]:
    return {SpoolName.parse(f.name).release_key for f in Spool(spool_dir).files("ready")}


def assert_only_bad_failed(report: ExtractReport, spool_dir: Path, *needles: str) -> str:
    """1.0.1 failed alone with a one-line reason holding every needle; the others are
    complete in ready/; nothing of 1.0.1 anywhere, tmp/ empty.  Returns the reason."""
    assert [k for k, _ in report.failed] == [BAD], report.failed
    reason = report.failed[0][1]
    assert "\n" not in reason and "Traceback" not in reason
    assert "internal error" not in reason
    for needle in needles:
        assert needle in reason, (needle, reason)
    assert ready_keys(spool_dir) == GOOD
    spool = Spool(spool_dir)
    assert not any(spool.files(s) for s in STATES if s != "ready")
    assert not list((spool_dir / "tmp").iterdir()), "half-written file left in tmp/"
    return reason


# --- 1. a folder source: symbolic links and special files --------------------------------


def test_symlink_to_a_json_file_outside_the_folder_is_refused(tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text('{"secret": "OUTSIDE-7f3a"}')
    graph = tree / ART / "graph.json"
    graph.unlink()
    graph.symlink_to(outside)
    spool_dir = tmp_path / "spool"
    report = run(tree, spool_dir)
    reason = assert_only_bad_failed(
        report, spool_dir, "graph.json", "symbolic link", str(outside), "outside the source"
    )
    assert "x86_64/cpu/graph.json" in reason  # the URL names the file
    for f in spool_dir.rglob("*"):
        assert not f.is_file() or b"OUTSIDE-7f3a" not in f.read_bytes()


def test_symlink_to_etc_passwd_is_never_opened(tree: Path, tmp_path: Path) -> None:
    wheels = tree / "rhai/1.0.1/aarch64/cpu/wheels.json"
    wheels.unlink()
    wheels.symlink_to("/etc/passwd")
    spool_dir = tmp_path / "spool"
    assert_only_bad_failed(run(tree, spool_dir), spool_dir, "wheels.json", "/etc/passwd")


def test_a_symlinked_directory_leading_outside_is_refused(tree: Path, tmp_path: Path) -> None:
    """The link is a directory above the file: the check resolves every component."""
    elsewhere = tmp_path / "elsewhere"
    (tree / ART).rename(elsewhere)
    (tree / ART).symlink_to(elsewhere, target_is_directory=True)
    spool_dir = tmp_path / "spool"
    assert_only_bad_failed(run(tree, spool_dir), spool_dir, "outside the source", str(elsewhere))


def test_a_symlink_inside_the_folder_is_followed(tree: Path, tmp_path: Path) -> None:
    graph = tree / ART / "graph.json"
    graph.unlink()
    graph.symlink_to(os.path.relpath(tree / "rhai/1.0.0/x86_64/cpu/graph.json", graph.parent))
    report = run(tree, tmp_path / "spool")
    assert report.failed == [] and ready_keys(tmp_path / "spool") == GOOD | {BAD}


def test_a_fifo_is_refused_without_opening_it(tree: Path, tmp_path: Path) -> None:
    """A FIFO blocks open() until a writer comes: it must be refused after a stat, never
    opened.  Run as a real process so that a regression hangs only the subprocess."""
    wheels = tree / "rhai/1.0.1/aarch64/cpu/wheels.json"
    wheels.unlink()
    os.mkfifo(wheels)
    spool_dir = tmp_path / "spool"
    out = run_cli(*["extract"], env=cli_env(spool=spool_dir, source=tree), timeout=120)
    assert out.returncode == 1, out.stderr
    assert "FIFO" in out.stderr and "wheels.json" in out.stderr and "Traceback" not in out.stderr
    assert ready_keys(spool_dir) == GOOD


def test_a_directory_where_a_document_should_be_is_refused(tree: Path, tmp_path: Path) -> None:
    graph = tree / ART / "graph.json"
    graph.unlink()
    graph.mkdir()
    spool_dir = tmp_path / "spool"
    assert_only_bad_failed(run(tree, spool_dir), spool_dir, "graph.json", "a directory")


# --- 3. an overall deadline per document ----------------------------------------------


@pytest.mark.parametrize(
    ("path", "fault"),
    [
        (f"/{ART}/graph.json", Fault.drip(0.2)),  # the body, a byte at a time
        ("/rhai/1.0.1/release.json", Fault.drip(0.2, head=True)),  # even the status line
    ],
    ids=["body", "headers"],
)
def test_a_slow_drip_server_meets_the_document_deadline(
    tree: Path, tmp_path: Path, path: str, fault: Fault
) -> None:
    """One byte every 0.2 s never trips the 5 s read timeout; the 2 s document deadline
    ends the fetch, and only its release fails."""
    spool_dir = tmp_path / "spool"
    with SourceServer(tree) as server:
        server.always(path, fault)
        report = run(server.url, spool_dir, document_timeout=2.0)
        assert server.sent(path) > 0  # it really was dripping when it was cut
    reason = assert_only_bad_failed(report, spool_dir, "2s document deadline", path)
    assert "--document-timeout" in reason


def test_document_timeout_is_a_setting_with_a_variable(tmp_path: Path) -> None:
    assert Settings.from_env({"ETL_DOCUMENT_TIMEOUT": "90s"}).document_timeout == 90.0
    out = run_cli(
        *["extract", "--document-timeout", "-1"], env=cli_env(spool=tmp_path / "s"), timeout=60
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr


# --- 4. Ctrl-C ------------------------------------------------------------------------------


@contextlib.contextmanager
def _sigint_not_ignored() -> Iterator[None]:
    """Children started inside see SIGINT.  A shell without job control starts a background
    command (``make test &``) with SIGINT ignored, an ignored signal stays ignored across
    exec, and Python then installs no KeyboardInterrupt handler: the child would never see
    the test's Ctrl-C.  A handled signal is reset to its default at exec."""
    previous = signal.getsignal(signal.SIGINT)
    if previous != signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _wait_for(proc: subprocess.Popen[str], what: str, ok: Any, seconds: float = 60.0) -> None:
    """Wait (polling the files a real process writes) until ``ok()``; fail naming ``what``."""
    import time

    end = time.monotonic() + seconds
    while not ok():
        if proc.poll() is not None:
            raise AssertionError(f"extract ended before {what}: {proc.communicate()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError(f"never saw {what}: {proc.communicate()}")
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("fault", "extra"),
    [
        (Fault.stall(3600, after=10), []),  # in-flight read: headers, 10 bytes, silence
        (Fault.status(503, {"Retry-After": "300"}), ["--retry-max-seconds", "1h"]),  # a wait
    ],
    ids=["stalled-read", "retry-wait"],
)
def test_ctrl_c_is_prompt_keeps_complete_files_and_exits_130(
    tree: Path, tmp_path: Path, fault: Fault, extra: list[str]
) -> None:
    spool_dir = tmp_path / "spool"
    path = f"/{ART}/graph.json"
    with SourceServer(tree) as server:
        server.always(path, fault)
        env = cli_env(spool=spool_dir, source=server.url)
        with _sigint_not_ignored():
            proc = start_cli(
                *["extract", "--read-timeout", "1h", "--workers", "4", *extra], env=env
            )
        try:
            _wait_for(proc, "the other releases spooled", lambda: ready_keys(spool_dir) == GOOD)
            _wait_for(proc, "the stalled request", lambda: server.count(path) >= 1)
            proc.send_signal(signal.SIGINT)
            # A correctness bound, not a performance claim: without the fix the run waited
            # out the 300 s Retry-After or the 1 h read.  The interrupt path takes well
            # under 2 s even on a loaded machine; 60 s leaves room for a machine whose load
            # is many times its cores (10 s was once exceeded at load 13 on 2 cores).
            try:
                out, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError(
                    f"still running 60 s after SIGINT: {proc.communicate()}"
                ) from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted" in err
    assert "2 spooled" in out, err  # the summary so far
    assert f"FAILED {BAD}" not in err and "release rhai/1.0.1 failed" not in err
    assert ready_keys(spool_dir) == GOOD  # complete files kept
    assert not list((spool_dir / "tmp").iterdir()), "partial file left in tmp/"


# --- 5. an invalid value fails only its release ------------------------------------------

OVERFLOW = "0001-01-01T00:00:00+14:00"  # before year 1 once in UTC: OverflowError in Python


def _edit(path: Path, change: Any) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _listing(doc: dict[str, Any]) -> None:
    next(r for r in doc["releases"] if r["version"] == "1.0.1")["updated_at"] = OVERFLOW


def _wheel(doc: dict[str, Any]) -> None:
    doc["files"][0]["upload-time"] = OVERFLOW


@pytest.mark.parametrize(
    ("file", "change", "needle"),
    [
        ("rhai/releases.json", _listing, "updated_at"),
        ("rhai/1.0.1/release.json", lambda d: d.update(updated_at=OVERFLOW), "updated_at"),
        (
            "rhai/1.0.1/release.json",
            lambda d: d["artifacts"][0].update(built_at=OVERFLOW),
            "artifacts[0].built_at",
        ),
        ("rhai/1.0.1/aarch64/cpu/wheels.json", _wheel, "upload-time"),
    ],
    ids=["listing", "release.json", "built_at", "upload-time"],
)
def test_a_timestamp_out_of_range_fails_only_its_release(
    tree: Path, tmp_path: Path, file: str, change: Any, needle: str
) -> None:
    _edit(tree / file, change)
    spool_dir = tmp_path / "spool"
    assert_only_bad_failed(run(tree, spool_dir), spool_dir, needle, OVERFLOW)


def test_the_cli_says_it_in_one_line_without_a_traceback(tree: Path, tmp_path: Path) -> None:
    _edit(tree / "rhai/releases.json", _listing)
    out = run_cli(*["extract"], env=cli_env(spool=tmp_path / "spool", source=tree), timeout=120)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and "OverflowError" not in out.stderr
    assert "2 spooled" in out.stdout
    assert [line for line in out.stderr.splitlines() if "1.0.1" in line and OVERFLOW in line]


# --- 9. big integers -------------------------------------------------------------------------


def test_a_5000_digit_integer_is_accepted_end_to_end(
    tree: Path, tmp_path: Path, db_url: str
) -> None:
    digits = "7" * 4999 + "1"
    graph = tree / ART / "graph.json"
    graph.write_text(graph.read_text().replace("{", '{"big": ' + digits + ", ", 1))
    spool_dir = tmp_path / "spool"
    report = run(tree, spool_dir)
    assert report.failed == [] and ready_keys(spool_dir) == GOOD | {BAD}
    assert load_spool(Spool(spool_dir), db_url).failed == []
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT dependency_graph->>'big' FROM artifacts"
            " WHERE release = '1.0.1' AND architecture = 'x86_64'"
        ).fetchone()
    assert row is not None and row[0] == digits


def test_an_integer_over_the_jsonb_limit_is_refused_naming_it(tree: Path, tmp_path: Path) -> None:
    graph = tree / ART / "graph.json"
    graph.write_text('{"big": ' + "9" * 131_073 + "}")
    spool_dir = tmp_path / "spool"
    assert_only_bad_failed(
        run(tree, spool_dir), spool_dir, "131073 digits", "131072-digit limit", "graph.json"
    )


# --- 10, 11. configuration errors: one line, exit 2 ------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--source", "http://[::1"], "bad source URL"),
        (["--source", "http://h.example:99999/"], "bad source URL"),
        (["--max-inflight-bytes", "0"], "--max-inflight-bytes"),
        (["--max-inflight-bytes", "-5"], "-5"),
        (["--product", "nope"], "unknown product nope"),
    ],
)
def test_configuration_errors_exit_2_in_one_line(
    tree: Path, tmp_path: Path, args: list[str], needle: str
) -> None:
    out = run_cli(*["extract", *args], env=cli_env(spool=tmp_path / "s", source=tree), timeout=120)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert needle in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


@pytest.mark.parametrize("command", ["extract", "load"])
def test_a_spool_path_that_cannot_be_a_folder_exits_2_in_one_line(
    tree: Path, tmp_path: Path, command: str
) -> None:
    """--spool naming a file (or a path under one) is a bad setting, not a failed file."""
    (tmp_path / "a-file").write_text("not a folder")
    for spool in (tmp_path / "a-file", tmp_path / "a-file" / "spool"):
        env = cli_env(spool=spool, source=tree, database_url="postgresql://127.0.0.1:1/x")
        out = run_cli(command, env=env, timeout=120)
        assert out.returncode == 2, (out.stdout, out.stderr)
        assert "cannot create spool folders" in out.stderr and "--spool" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_a_missing_source_exits_2(tmp_path: Path, tree: Path) -> None:
    missing = run_cli(
        *["extract"], env=cli_env(spool=tmp_path / "s", source=tmp_path / "nope"), timeout=120
    )
    assert missing.returncode == 2 and "source folder not found" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = run_cli(
        *["extract"], env=cli_env(spool=tmp_path / "s", source=tmp_path / "empty"), timeout=120
    )
    assert empty.returncode == 2 and "no index.json" in empty.stderr
    with SourceServer(tree) as server:
        wrong = run_cli(
            *["extract"],
            env=cli_env(spool=tmp_path / "s", source=server.link("nowhere/")),
            timeout=120,
        )
    assert wrong.returncode == 2 and "HTTP 404" in wrong.stderr and "--source" in wrong.stderr
    for out in (missing, empty, wrong):
        assert "Traceback" not in out.stderr


def test_the_edges_of_the_valid_range_are_spooled_and_loaded(
    tree: Path, tmp_path: Path, db_url: str
) -> None:
    """Year 1 and year 9999 are valid RFC 3339: spool names (zero-padded years), the
    spool's memory and the database must all take them."""
    first, last = "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"
    _edit(tree / "rhai/releases.json", lambda d: d["releases"][1].update(updated_at=first))
    _edit(tree / "rhai/1.0.1/release.json", lambda d: d.update(updated_at=first))
    _edit(tree / "rhai/1.0.1/release.json", lambda d: d["artifacts"][0].update(built_at=last))
    spool_dir = tmp_path / "spool"
    report = run(tree, spool_dir)
    assert report.failed == [] and ready_keys(spool_dir) == GOOD | {BAD}
    assert run(tree, spool_dir).unchanged  # the rerun recognises what it spooled
    assert ready_keys(spool_dir) == GOOD | {BAD}
    assert load_spool(Spool(spool_dir), db_url).failed == []
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT extract(year FROM r.updated_at AT TIME ZONE 'UTC'),"
            " extract(year FROM a.built_at AT TIME ZONE 'UTC')"
            " FROM releases r JOIN artifacts a USING (product, release)"
            " WHERE r.release = '1.0.1' AND a.architecture = 'x86_64'"
        ).fetchone()
    assert row is not None and (int(row[0]), int(row[1])) == (1, 9999)
