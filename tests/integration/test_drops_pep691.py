"""Drops keep what the PEP 691 entry says (issue 9 item 7): ``yanked`` (with its reason)
and ``requires-python``, end to end into Postgres, checked against the independent
oracle (tests/support/oracle)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from etl.config import Settings
from etl.extract import extract
from etl.load import load_spool
from etl.spool import Spool
from tests.support.oracle import db_snapshot, diff, expected_snapshot
from tests.support.sourcetree import write_source_tree


def test_yanked_and_requires_python_reach_the_database(tmp_path: Path, db_url: str) -> None:
    tree = write_source_tree(tmp_path / "src", {"rhai": ["1.0.0", "1.0.1"]})
    wheels = tree / "rhai/1.0.1/x86_64/cpu/wheels.json"
    doc = json.loads(wheels.read_text())
    files = doc["files"]
    assert len(files) >= 3, "the sample wheels list is too short for this test"
    files[0]["yanked"] = True
    files[1]["yanked"] = "broken metadata; use 1.0.2"
    files[2]["yanked"] = False
    files[2]["requires-python"] = ">=3.9, <4"
    wheels.write_text(json.dumps(doc))
    spool_dir = tmp_path / "spool"
    report = extract(Settings(source_url=str(tree), spool_dir=spool_dir), Spool(spool_dir))
    assert report.failed == [] and len(report.spooled) == 2
    assert load_spool(Spool(spool_dir), db_url).failed == []

    assert diff(expected_snapshot(tree), db_snapshot(db_url)) == []
    with psycopg.connect(db_url) as conn:
        got: dict[str, str] = dict(
            conn.execute(
                "SELECT filename, (yanked, yanked_reason, requires_python)::text FROM drops"
                " WHERE release = '1.0.1' AND architecture = 'x86_64'"
            ).fetchall()
        )
    assert got[files[0]["filename"]] == "(t,,)"
    assert got[files[1]["filename"]] == '(t,"broken metadata; use 1.0.2",)'
    assert got[files[2]["filename"]] == '(f,,">=3.9, <4")'
    assert len(got) == len(files)
    other = write_source_tree(tmp_path / "plain", {"rhai": ["1.0.0"]})
    assert "yanked" not in (other / "rhai/1.0.0/x86_64/cpu/wheels.json").read_text()
    with psycopg.connect(db_url) as conn:  # entries without them: null, not false
        assert conn.execute(
            "SELECT count(*) FROM drops WHERE release = '1.0.0'"
            " AND (yanked IS NOT NULL OR yanked_reason IS NOT NULL OR requires_python IS NOT NULL)"
        ).fetchone() == (0,)


def test_a_bad_yanked_value_fails_only_its_release(tmp_path: Path) -> None:
    tree = write_source_tree(tmp_path / "src", {"rhai": ["1.0.0", "1.0.1"]})
    wheels = tree / "rhai/1.0.1/x86_64/cpu/wheels.json"
    doc = json.loads(wheels.read_text())
    doc["files"][0]["yanked"] = 1
    wheels.write_text(json.dumps(doc))
    spool_dir = tmp_path / "spool"
    report = extract(Settings(source_url=str(tree), spool_dir=spool_dir), Spool(spool_dir))
    assert [r for r, _ in report.failed] == ["rhai/1.0.1"]
    assert "'yanked' must be a boolean or a string, got integer" in report.failed[0][1]
    assert len(report.spooled) == 1
