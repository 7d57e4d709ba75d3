"""Two reads of one release at the same ``updated_at`` (issue 23, item 2): the later READ
wins, whichever extraction finished first.

A publisher updating files in place without a new ``updated_at``, and two extractions
overlapping (duplicate extract tasks are routine with a short broker visibility timeout):
the slower one read the source first.  Its file used to be stamped when it was finished,
later than the faster one's, so the older snapshot won at load and one content hash was
applied twice (A, B, A).  The race is reproduced deterministically: the test HTTP server
holds one document of the slow extraction until the fast one is done.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg

from tests.support.cli import cli_env, run_cli, start_cli, wait_cli
from tests.support.httpserver import SourceServer
from tests.support.sourcetree import write_source_tree

ART = "rhai/3.0.0/aarch64/cpu"
HELD = f"/{ART}/graph.json"  # the slow extraction waits here...
WHEELS = f"/{ART}/wheels.json"  # ...after it has read this


def _until(what: str, ok: object) -> None:
    """Poll real state (a process, the server's records) until ``ok()``; fail naming it."""
    assert callable(ok)
    end = time.monotonic() + 120
    while not ok():
        assert time.monotonic() < end, f"never saw {what}"
        time.sleep(0.05)


def _attempts(db_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT content_sha256, outcome FROM load_attempts ORDER BY id"
        ).fetchall()
    return [(str(sha), str(outcome)) for sha, outcome in rows]


def test_the_later_read_wins_whichever_extraction_finishes_first(
    tmp_path: Path, db_url: str
) -> None:
    tree = write_source_tree(tmp_path / "src", {"rhai": ["3.0.0"]})
    wheels = tree / ART / "wheels.json"
    doc = json.loads(wheels.read_text())
    removed = doc["files"][-1]["filename"]
    spool_dir = tmp_path / "spool"
    with SourceServer(tree) as server:
        env = cli_env(spool=spool_dir, source=server.url, database_url=db_url)
        first = run_cli("extract", env=env, timeout=120)
        assert first.returncode == 0, first
        assert run_cli("load", env=env, timeout=120).returncode == 0  # A applied

        gate = server.hold(HELD)
        slow = start_cli("extract", "--full", env=env)
        try:
            _until("the slow extraction read wheels.json", lambda: server.served(WHEELS) == 2)
            _until("the slow extraction held", lambda: server.held(HELD) == 1)
            doc["files"] = doc["files"][:-1]  # the publisher removes a wheel in place
            wheels.write_text(json.dumps(doc))
            fast = run_cli("extract", "--full", env=env, timeout=120)  # reads B, done first
            assert fast.returncode == 0, fast
        finally:
            gate.set()
        slow_result = wait_cli(slow, timeout=120)  # finishes last, with what it read: A
        assert slow_result.returncode == 0, slow_result

    loaded = run_cli("load", env=env, timeout=120)
    assert loaded.returncode == 0, loaded
    attempts = _attempts(db_url)
    a, b = attempts[0][0], attempts[1][0]
    assert a != b
    assert [o for _, o in attempts] == ["applied", "applied", "superseded"], attempts
    assert attempts[2][0] == a  # the slow, older read of A changed nothing
    applied = [sha for sha, outcome in attempts if outcome == "applied"]
    assert len(applied) == len(set(applied)), "a content hash applied twice"
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM drops WHERE architecture = 'aarch64' AND filename = %s",
            (removed,),
        ).fetchone()
        current = conn.execute("SELECT content_sha256 FROM releases").fetchone()
    assert row is not None and row[0] == 0, "the removed wheel came back"
    assert current is not None and current[0] == b
