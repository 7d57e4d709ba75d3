"""Every command has help (as sqlite-utils' test_docs), and the DB-free commands work."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.cli import build_cli
from etl.errors import EXIT_USAGE, ConfigError
from etl.spool import Spool
from etl.units import parse_duration as parse_age
from tests.support.cli import run_cli

COMMANDS = sorted(build_cli().commands)


def test_the_documented_commands_exist() -> None:
    assert set(COMMANDS) >= {"extract", "load", "migrate", "status", "inspect", "replay", "prune"}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    out = run_cli(command, "--help", in_process=True)
    assert out.returncode == 0, out.stderr
    assert f"Usage: wheels-etl {command}" in out.stdout
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


# --- settings through click (etl/config.py, etl/cliparser.py) ----------------------------


def test_spool_states_in_the_parser_are_the_spools() -> None:
    from etl import cliparser
    from etl.spool import STATES

    assert tuple(cliparser.STATES) == tuple(STATES)


@pytest.mark.parametrize("where", ["flag", "env"])
def test_an_unknown_spool_scheme_is_refused_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"ETL_SPOOL_DIR": "gs://bucket/prefix"} if where == "env" else {}
    args = ["--spool", "gs://bucket/prefix"] if where == "flag" else []
    result = run_cli("extract", *args, env=env, in_process=True)
    assert result.returncode == EXIT_USAGE, result
    assert "unknown spool URL scheme 'gs'" in result.stderr and "ETL_SPOOL_DIR" in result.stderr
    assert result.stderr.count("\n") == 1 and not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        ({"ETL_MAX_FILE_BYTES": "1048576"}, "max_file_bytes", 1048576),
        ({"ETL_MAX_FILE_BYTES": "512KiB"}, "max_file_bytes", 512 * 1024),
        ({"ETL_MAX_INFLIGHT_BYTES": "64MB"}, "max_inflight_bytes", 64_000_000),
        ({"ETL_MAX_FILE_BYTES": "1GiB"}, "max_file_bytes", 1024**3),
        ({"ETL_DOCUMENT_TIMEOUT": "30"}, "document_timeout", 30.0),
        ({"ETL_DOCUMENT_TIMEOUT": "90s"}, "document_timeout", 90.0),
        ({"ETL_READ_TIMEOUT": "15m"}, "read_timeout", 900.0),
        ({"ETL_RETRY_MAX_SECONDS": "12h"}, "retry_max_seconds", 43200.0),
        ({"ETL_LOAD_RETRY_SECONDS": "7d"}, "load_retry_seconds", 604800.0),
        ({"ETL_PRODUCTS": "rhai, webstack"}, "products", ("rhai", "webstack")),
        ({"ETL_FULL": "yes"}, "full", True),
        ({"ETL_INSECURE": "1"}, "verify_tls", False),
        ({"ETL_SPOOL_DIR": "s3://b/p"}, "spool_dir", "s3://b/p"),
        ({}, "spool_dir", Path("spool")),
        ({}, "max_file_bytes", 128 * 1024**2),
    ],
)
def test_variables_parse_as_their_flags_declare(
    env: dict[str, str], field: str, value: object
) -> None:
    from etl.config import Settings

    assert getattr(Settings.from_env(env), field) == value


@pytest.mark.parametrize(
    ("variable", "text"),
    [("ETL_MAX_FILE_BYTES", "12XB"), ("ETL_WORKERS", "0"), ("ETL_DOCUMENT_TIMEOUT", "soon"),
     ("ETL_SPOOL_COMPRESSION", "gzip"), ("ETL_FULL", "maybe")],
)  # fmt: skip
def test_bad_variables_are_config_errors_naming_the_variable(variable: str, text: str) -> None:
    from etl.config import Settings

    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: text})


def test_a_flag_beats_its_variable(tmp_path: Path) -> None:
    env = {"ETL_SPOOL_DIR": str(tmp_path / "not-a-spool")}
    assert run_cli("status", env=env, in_process=True).returncode == EXIT_USAGE
    spool = tmp_path / "spool"
    Spool(spool)
    ok = run_cli("prune", "--spool", spool, "--older-than", "90m", env=env, in_process=True)
    assert ok.returncode == 0 and "deleted 0" in ok.stdout, ok
    assert not (tmp_path / "not-a-spool").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("-q", "prune", "--older-than", "7d"),
        ("prune", "--older-than", "7d", "-q"),
        ("-vv", "prune", "--older-than", "7d"),
        ("prune", "-v", "--log-format", "json", "--older-than", "7d"),
        ("--log-format", "json", "prune", "--older-than", "7d"),
    ],
)
def test_global_options_before_or_after_the_command(tmp_path: Path, args: tuple[str, ...]) -> None:
    Spool(tmp_path)
    result = run_cli(*args, "--spool", tmp_path, in_process=True)
    assert result.returncode == 0 and "deleted 0" in result.stdout, result


@pytest.mark.parametrize("args", [("--version",), ("status", "--version")])
def test_version_before_or_after_the_command(args: tuple[str, ...]) -> None:
    from etl import __version__

    result = run_cli(*args, in_process=True)
    assert result.returncode == 0 and result.stdout.strip() == f"wheels-etl {__version__}"


def test_help_shows_each_flags_variable_and_default() -> None:
    out = " ".join(run_cli("extract", "--help", in_process=True).stdout.split())
    assert "--max-file-bytes SIZE" in out and "env var: ETL_MAX_FILE_BYTES; default: 128MiB" in out
    assert "env var: ETL_SPOOL_DIR; default: ./spool" in out and "exit codes:" in out
    assert "examples:" in out and "ETL_CRASH_AT" not in out


def test_python_dash_m_etl_is_wheels_etl(tmp_path: Path) -> None:
    Spool(tmp_path)
    for in_process in (True, False):  # False: `python -m etl` in a child process
        result = run_cli("prune", "--spool", tmp_path, "--older-than", "1d", in_process=in_process)
        assert result.returncode == 0 and "deleted 0" in result.stdout, result
    bad = run_cli("extract", "--spool", "gs://b/p", in_process=False)
    assert bad.returncode == EXIT_USAGE and "unknown spool URL scheme" in bad.stderr


def test_worker_passes_unknown_options_to_celery_and_flags_as_variables() -> None:
    from etl.cli import build_cli
    from etl.workers.worker import flags_as_env

    cli = build_cli()
    worker = cli.commands["worker"]
    with worker.make_context(
        "worker", ["-c", "1", "--spool", "s3://b/p", "-l", "info", "--full", "-n", "w1@%h"]
    ) as ctx:
        assert ctx.args == ["-c", "1", "-l", "info", "-n", "w1@%h"]
        given = {k: v for k, v in ctx.params.items() if k in ("spool_dir", "full")}
    assert flags_as_env(given) == {"ETL_SPOOL_DIR": "s3://b/p", "ETL_FULL": "1"}
    assert flags_as_env({}) == {}


#: Every command that takes --database-url (README's settings table), with what else it
#: needs to get as far as the database.
DB_COMMANDS = [
    ("load",), ("migrate",), ("status",), ("replay", "--failed"), ("db", "url"),
    ("enqueue", "--wait"), ("search", "x"), ("diff", "p", "a", "b"),
    ("why", "x", "--product", "p", "--release", "1"), ("worker", "--healthcheck"),
]  # fmt: skip


@pytest.mark.parametrize("args", DB_COMMANDS, ids=lambda a: a[0])
def test_a_database_url_of_another_scheme_is_a_bad_setting_everywhere(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """``status --database-url mysql://x`` exited 3 (shown as the database being
    unreachable), ``db url`` printed it and exited 0, the others exited 2 on libpq's
    'missing "=" after "mysql://x"': now each refuses the scheme, exit 2."""
    Spool(tmp_path)
    spool = {"ETL_SPOOL_DIR": str(tmp_path)}
    for env, flag in (({}, ("--database-url", "mysql://x")), ({"DATABASE_URL": "mysql://x"}, ())):
        result = run_cli(*args, *flag, env={**spool, **env}, in_process=True)
        assert result.returncode == EXIT_USAGE, result
        assert "unknown database URL scheme 'mysql'" in result.stderr, result


def test_status_with_a_bad_database_setting_exits_2_not_3(tmp_path: Path) -> None:
    """A bad setting found only when connecting (a port that is no port) is exit 2 from
    ``status`` too, as from ``load`` (it exited 3, "database unreachable")."""
    Spool(tmp_path)
    url = "postgresql://127.0.0.1:99999/x"
    for command in ("status", "load"):
        result = run_cli(command, "--spool", tmp_path, "--database-url", url, in_process=True)
        assert result.returncode == EXIT_USAGE, result
        assert "invalid port number" in result.stderr, result
