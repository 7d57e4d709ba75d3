"""The test environment itself: leaky variables are gone, children get an explicit env,
and the one CLI runner behaves the same in-process and as a subprocess."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import cli_env, run_cli
from tests.support.env import child_env, is_leaky


@pytest.mark.parametrize(
    "name",
    ["ETL_SOURCE_URL", "DATABASE_URL", "AWS_SECRET_ACCESS_KEY", "PGPASSWORD", "https_proxy",
     "HTTP_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"],
)  # fmt: skip
def test_leaky_names(name: str) -> None:
    assert is_leaky(name)


@pytest.mark.parametrize("name", ["PATH", "HOME", "LANG", "PYTHONPATH", "TMPDIR"])
def test_harmless_names(name: str) -> None:
    assert not is_leaky(name)


def test_no_leaky_variable_reaches_a_test() -> None:
    assert [k for k in os.environ if is_leaky(k)] == []


def test_child_env_is_explicit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_SPOOL_DIR", "/elsewhere")
    monkeypatch.setenv("SOMETHING_ELSE", "x")
    env = child_env(ETL_SOURCE_URL="file:///src", HOME=None)
    assert env["ETL_SOURCE_URL"] == "file:///src" and "HOME" not in env
    assert "ETL_SPOOL_DIR" not in env and "SOMETHING_ELSE" not in env
    assert cli_env(spool=None, database_url="postgresql://x")["DATABASE_URL"] == "postgresql://x"


@pytest.mark.parametrize("in_process", [True, False])
def test_runner_reports_exit_code_and_output(in_process: bool) -> None:
    ok = run_cli("status", "--help", in_process=in_process)
    assert ok.returncode == 0 and "Usage: wheels-etl status" in ok.stdout, ok
    bad = run_cli("no-such-command", in_process=in_process)
    assert bad.returncode == 2 and "no-such-command" in bad.stderr, bad


def test_in_process_run_sees_only_the_env_given(tmp_path: Path) -> None:
    before = dict(os.environ)
    result = run_cli("prune", "--older-than", "7d", env=cli_env(spool=tmp_path), in_process=True)
    assert result.returncode == 0 and "deleted 0" in result.stdout, result
    assert dict(os.environ) == before
