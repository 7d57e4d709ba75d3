"""Bad object-store settings end every command with one line and exit 2 (credentials
refused, bucket missing) or 3 (the endpoint unreachable), never a traceback; no command
but ``wheels-etl spool init`` creates a bucket (issue 23, item 6)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from tests.support.cli import CliResult, cli_env, run_cli
from tests.support.s3server import S3Server, free_ports

COMMANDS: tuple[tuple[str, ...], ...] = (
    ("extract",),
    ("load",),
    ("status",),
    ("status", "--json"),
    ("inspect",),
    ("replay", "--failed"),
    ("prune", "--older-than", "1d"),
    ("reconcile",),
)


def _one_line(result: CliResult, code: int, *words: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result
    assert len(lines) == 1 and "Traceback" not in result.stderr, result
    assert all(w in lines[0] for w in words), result


def _bucket_exists(server: S3Server, bucket: str) -> bool:
    info = server.filesystem().get_file_info(bucket)
    return bool(info.type != pafs.FileType.NotFound)


def _env(server: S3Server, spool: str, db_url: str, **aws: str) -> dict[str, str]:
    env = cli_env(spool=spool, database_url=db_url, ETL_BROKER_URL="redis://127.0.0.1:1/0")
    return env | server.env() | aws


def test_refused_credentials_are_one_line_and_exit_2(
    s3_server: S3Server, s3_spool: str, db_url: str
) -> None:
    secret = "wrong-secret-" + uuid.uuid4().hex
    env = _env(s3_server, s3_spool, db_url, AWS_SECRET_ACCESS_KEY=secret)
    for args in (*COMMANDS, ("spool", "init")):
        result = run_cli(*args, env=env)
        _one_line(result, 2, "refused", "AWS_SECRET_ACCESS_KEY")
        assert secret not in result.stdout + result.stderr


def test_a_missing_bucket_is_one_line_exit_2_and_never_created(
    s3_server: S3Server, db_url: str
) -> None:
    bucket = f"typo-bucket-{uuid.uuid4().hex[:8]}"
    spool = f"s3://{bucket}/p"
    env = _env(s3_server, spool, db_url)
    for args in COMMANDS:
        _one_line(run_cli(*args, env=env), 2, bucket, "does not exist", "spool init")
        assert not _bucket_exists(s3_server, bucket), args
    init = run_cli("spool", "init", env=env)  # the one command that creates it
    assert init.returncode == 0 and "created" in init.stdout, init
    assert _bucket_exists(s3_server, bucket)
    again = run_cli("spool", "init", env=env)
    assert again.returncode == 0 and "exists" in again.stdout, again
    status = run_cli("status", env=env)
    assert status.returncode == 0 and "Traceback" not in status.stderr, status


def test_an_unreachable_endpoint_is_one_line_and_exit_3(s3_server: S3Server, db_url: str) -> None:
    [port] = free_ports(1)  # nothing listens there
    spool = f"s3://bucket-{uuid.uuid4().hex[:8]}/p"
    env = _env(s3_server, spool, db_url, AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
    bucket = spool.removeprefix("s3://").split("/")[0]
    for args in (*COMMANDS, ("spool", "init")):
        result = run_cli(*args, env=env)
        _one_line(result, 3, "unavailable", f"cannot reach bucket in s3://{bucket}")
        # the bucket is named as the bucket, never as a file (it said "file bucket-...")
        assert f"file {bucket}" not in result.stderr, result


@pytest.mark.parametrize("where", ["folder", "s3"])
def test_spool_init_makes_a_spool_any_command_can_use(
    where: str, s3_server: S3Server, tmp_path: Path, db_url: str
) -> None:
    spool = f"{s3_server.new_spool_url()}/spool" if where == "s3" else str(tmp_path / "sp")
    env = _env(s3_server, spool, db_url)
    init = run_cli("spool", "init", env=env)
    assert init.returncode == 0, init
    status = run_cli("status", "--json", env=env)
    assert status.returncode == 0, status
