"""``--help`` shows what a user may set: test-only hooks stay out; ``worker --help`` names
the variables a worker reads and says that other options go to ``celery worker``."""

from __future__ import annotations

from tests.support.cli import run_cli


def test_test_only_settings_are_not_in_help() -> None:
    for args in (["--help"], ["worker", "--help"], ["extract", "--help"], ["load", "--help"]):
        out = run_cli(*args, in_process=True).stdout
        assert "ETL_CRASH_AT" not in out and "tests only" not in out, args


def test_worker_help_names_what_it_reads_and_passes_the_rest_to_celery() -> None:
    out = " ".join(run_cli("worker", "--help", in_process=True).stdout.split())
    for name in ("ETL_BROKER_URL", "ETL_QUEUE", "ETL_SPOOL_LEASE_SECONDS", "ETL_WORKERS",
                 "ETL_SPOOL_DIR", "DATABASE_URL", "AWS_ACCESS_KEY_ID"):  # fmt: skip
        assert name in out, name
    assert "every other option is passed to `celery worker`" in out
    assert "--healthcheck" in out and "--readiness" in out
