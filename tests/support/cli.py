"""The one way tests run the ``wheels-etl`` CLI: in-process, or as a real subprocess.

* :func:`run_cli` runs one command to its end and returns a :class:`CliResult` (exit code,
  stdout, stderr).  ``in_process=True`` calls ``etl.cli.main`` in this process (fast;
  output captured); otherwise ``python -m etl`` runs as a child with the environment given
  (built by :func:`cli_env` / :func:`tests.support.env.child_env`, never inherited whole).
* :func:`start_cli` starts a child and returns the ``Popen``; :func:`kill_after` and
  :func:`wait_cli` end it and return a :class:`CliResult`.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.env import REPO, child_env


@dataclass(frozen=True)
class CliResult:
    args: tuple[str, ...]
    returncode: int  # the exit code; -N when killed by signal N
    stdout: str
    stderr: str
    seconds: float

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL

    def __str__(self) -> str:
        return (
            f"wheels-etl {' '.join(self.args)} -> {self.returncode}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


def cli_env(
    *,
    spool: str | Path | None = None,
    source: str | Path | None = None,
    database_url: str | None = None,
    crash_at: str | None = None,
    **extra: str | Path | None,
) -> dict[str, str]:
    """The environment of one CLI run: :func:`child_env` plus the ETL settings given.

    An ``s3://`` spool needs credentials: the ``AWS_*`` variables the test's own S3
    fixture set (the autouse cleaning removed any that leaked in) go along with it.
    """
    if str(spool or "").startswith("s3://"):
        extra = {**{k: v for k, v in os.environ.items() if k.startswith("AWS_")}, **extra}
    return child_env(
        ETL_SPOOL_DIR=spool,
        ETL_SOURCE_URL=source,
        DATABASE_URL=database_url,
        ETL_CRASH_AT=crash_at,
        **extra,
    )


def start_cli(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path = REPO, **popen: Any
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "etl", *args],
        env=dict(env) if env is not None else child_env(),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


@contextlib.contextmanager
def _environ(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _run_in_process(args: tuple[str, ...], env: Mapping[str, str] | None) -> CliResult:
    from etl.cli import main

    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with (
        _environ(env) if env is not None else contextlib.nullcontext(),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse errors and --help
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return CliResult(args, code, out.getvalue(), err.getvalue(), time.monotonic() - started)


def run_cli(
    *args: str | Path,
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO,
    timeout: float = 300,
    in_process: bool = False,
    **popen: Any,
) -> CliResult:
    """Run ``wheels-etl ARGS`` to its end (a hang is a test failure, not a wait forever)."""
    argv = tuple(str(a) for a in args)
    if in_process:
        assert not popen, "Popen options need a subprocess"
        return _run_in_process(argv, env)
    started = time.monotonic()
    proc = start_cli(*argv, env=env, cwd=cwd, **popen)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"wheels-etl {' '.join(argv)} hung\n{out}\n{err}") from None
    return CliResult(argv, proc.returncode, out, err, time.monotonic() - started)


def kill_after(proc: subprocess.Popen[str], delay: float, *, timeout: float = 180) -> CliResult:
    """SIGKILL ``proc`` after ``delay`` seconds unless it ends first; wait for it."""
    started = time.monotonic()
    try:
        out, err = proc.communicate(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=timeout)
    argv = proc.args if isinstance(proc.args, list | tuple) else [proc.args]
    args = tuple(str(a) for a in argv[3:])
    return CliResult(args, proc.returncode, out, err, time.monotonic() - started)


def wait_cli(proc: subprocess.Popen[str], *, timeout: float = 300) -> CliResult:
    """Wait for a started command to end by itself (killed only if it hangs: an error)."""
    result = kill_after(proc, timeout)
    assert not result.killed, f"hung and was killed after {timeout:g} s\n{result}"
    return result
