"""Every command has help (as sqlite-utils' test_docs), and the DB-free commands work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from etl.cli import EXIT_USAGE, build_parser, main
from etl.config import parse_duration as parse_age
from etl.errors import ConfigError

COMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]


def test_the_documented_commands_exist() -> None:
    assert set(COMMANDS) >= {"extract", "load", "migrate", "status", "inspect", "replay", "prune"}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "etl", command, "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert f"usage: wheels-etl {command}" in out.stdout
    assert len(out.stdout.splitlines()) > 3


def test_every_command_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for command in COMMANDS:
        assert f"wheels-etl {command}" in readme, command


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("12h", 43200), ("7d", 604800), ("2w", 1209600)],
)
def test_parse_age(text: str, seconds: float) -> None:
    assert parse_age(text) == seconds


@pytest.mark.parametrize("bad", ["7x", "d7", "-1d", "7 days", "", "nan", "inf"])
def test_parse_age_rejects(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_age(bad)


def test_inspect_and_prune_on_an_empty_spool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", "--spool", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ready" in out and "failed" in out
    assert (
        main(["inspect", "--spool", str(tmp_path), "--sql", "select count(*) as n from drops"]) == 0
    )
    assert main(["prune", "--spool", str(tmp_path), "--older-than", "7d"]) == 0
    assert "deleted 0" in capsys.readouterr().out


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    assert main(["prune", "--spool", str(tmp_path), "--older-than", "soon"]) == EXIT_USAGE
    assert main(["replay", "--spool", str(tmp_path)]) == EXIT_USAGE
    assert main(["extract", "--spool", str(tmp_path), "--workers", "0"]) == EXIT_USAGE
