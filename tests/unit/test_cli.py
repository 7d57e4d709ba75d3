"""Every command has help (as sqlite-utils' test_docs), and the DB-free commands work."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from etl.cli import EXIT_USAGE, build_parser
from etl.errors import ConfigError
from etl.spool import Spool
from etl.units import parse_duration as parse_age
from tests.support.cli import run_cli


def _commands() -> list[str]:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return sorted(action.choices)
    raise AssertionError("the CLI has no sub-commands")


COMMANDS = _commands()


def test_the_documented_commands_exist() -> None:
    assert set(COMMANDS) >= {"extract", "load", "migrate", "status", "inspect", "replay", "prune"}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    out = run_cli(command, "--help", in_process=True)
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


def test_inspect_and_prune_on_an_empty_spool(tmp_path: Path) -> None:
    Spool(tmp_path)  # inspect opens an existing spool only
    shown = run_cli("inspect", "--spool", tmp_path, in_process=True)
    assert shown.returncode == 0, shown
    assert "ready" in shown.stdout and "failed" in shown.stdout
    query = "select count(*) as n from drops"
    assert run_cli("inspect", "--spool", tmp_path, "--sql", query, in_process=True).returncode == 0
    pruned = run_cli("prune", "--spool", tmp_path, "--older-than", "7d", in_process=True)
    assert pruned.returncode == 0 and "deleted 0" in pruned.stdout, pruned


@pytest.mark.parametrize(
    "args",
    [
        ("prune", "--older-than", "soon"),
        ("replay",),
        ("extract", "--workers", "0"),
    ],
)
def test_bad_usage_exits_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    cmd, *rest = args
    result = run_cli(cmd, "--spool", tmp_path, *rest, in_process=True)
    assert result.returncode == EXIT_USAGE, result
