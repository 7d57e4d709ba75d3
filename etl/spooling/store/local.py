"""A spool in a local folder: every move a ``rename(2)``, claims held with ``flock``.

Layout (one root, one filesystem)::

    <root>/tmp/       uploads being written (an flock held by the writer)
    <root>/<state>/   one folder per spool state; sidecars sit beside their file
    <root>/state/     incremental-extract memory (small JSON objects)

An upload is a temp file, fsynced, renamed into its folder and the folder fsynced: no
reader ever sees half a file.  A claim is an ``flock`` on the file's inode, so it follows
the file through renames and lapses when its holder dies.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa

from etl.crashpoint import crash_point
from etl.errors import ConfigError, SpoolError, SpoolFullError
from etl.spooling.store.base import FOLDERS, STATE_FOLDERS, ObjectInfo

if TYPE_CHECKING:
    import pyarrow.fs as pafs

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_NOT_A_PLACE = (errno.ENOTDIR, errno.ENOENT, errno.EEXIST, errno.EACCES, errno.EPERM, errno.EROFS)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _maybe_opening(path: Path, grace_seconds: float) -> bool:
    """A temp file so young, of a live process, that its writer may not have locked it yet."""
    parts = path.name.split(".")
    try:
        pid = int(parts[-3])
        young = time.time() - path.stat().st_mtime < grace_seconds
    except (IndexError, ValueError, FileNotFoundError):
        return False
    if not young or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FlockLock:
    """An flock on an open descriptor; closing the descriptor drops it."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def renew(self) -> None:
        """An flock lasts as long as its holder: nothing to renew."""

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class LocalUpload:
    """A temp file under ``tmp/`` (flocked while written), renamed into place on publish."""

    def __init__(self, store: LocalStore, hint: str) -> None:
        self.store = store
        self.tmp = store.root / "tmp" / f"{hint}.{os.getpid()}.{time.time_ns()}.part"
        self._file: IO[bytes] | None = None
        try:
            self._file = open(self.tmp, "wb")  # noqa: SIM115 (closed in publish/discard)
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self.discard()
            raise store.error(exc, self.tmp, "cannot write spool file") from exc

    @property
    def stream(self) -> IO[bytes]:
        assert self._file is not None, "upload already published or discarded"
        return self._file

    def written(self) -> int:
        with contextlib.suppress(OSError, ValueError):
            return os.fstat(self._file.fileno()).st_size if self._file else 0
        return 0

    def error(self, exc: OSError) -> SpoolError:
        return self.store.error(exc, self.tmp, "cannot write spool file")

    def publish(self, folder: str, name: str) -> None:
        """fsync, rename into ``folder``, fsync the folder (the caller closed the writer)."""
        assert self._file is not None
        dst = self.store.root / folder / name
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            crash_point("extract-before-rename")
            os.rename(self.tmp, dst)
            fsync_dir(dst.parent)
        except OSError as exc:
            self.discard()
            raise self.store.error(exc, self.tmp, "cannot write spool file") from exc
        finally:
            if self._file is not None:
                self._file.close()
                self._file = None

    def discard(self) -> None:
        """Close and delete the temp file, whatever happens (a full disk fails the close)."""
        try:
            if self._file is not None:
                with contextlib.suppress(OSError):  # flushing the buffer fails on a full disk
                    self._file.close()
                self._file = None
        finally:
            self.tmp.unlink(missing_ok=True)


class LocalStore:
    def __init__(self, root: Path, *, create: bool = True) -> None:
        """``create=False`` opens only an existing spool (for ``status`` and ``inspect``: a
        mistyped path is a :class:`ConfigError`, and nothing is created there)."""
        self.root = Path(root)
        if not create:
            missing = [sub for sub in STATE_FOLDERS if not (self.root / sub).is_dir()]
            if missing:
                raise ConfigError(
                    f"no spool at {self.root} (missing {', '.join(m + '/' for m in missing)}):"
                    " check --spool / ETL_SPOOL_DIR"
                )
            return
        try:
            for sub in FOLDERS:
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno in _FULL:
                raise SpoolFullError(
                    f"cannot create spool folders: {exc}", path=str(self.root)
                ) from exc
            if exc.errno in _NOT_A_PLACE:  # a mistyped or unusable --spool: a setting (exit 2)
                raise ConfigError(
                    f"cannot create spool folders at {self.root}: {exc.strerror}: "
                    "check --spool / ETL_SPOOL_DIR"
                ) from exc
            raise SpoolError(f"cannot create spool folders: {exc}", path=str(self.root)) from exc

    @property
    def location(self) -> str:
        return str(self.root.resolve())

    def error(self, exc: OSError, path: Path, what: str) -> SpoolError:
        if exc.errno in _FULL:
            free = shutil.disk_usage(self.root).free
            return SpoolFullError(
                f"no space left in spool folder {self.location} ({free} bytes free): {exc}",
                path=str(path),
            )
        return SpoolError(f"{what}: {exc}", path=str(path))

    def space_hint(self) -> str:
        with contextlib.suppress(OSError):
            return f"{shutil.disk_usage(self.root).free} bytes free"
        return "free space unknown"

    def list_folder(self, folder: str) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        try:
            with os.scandir(self.root / folder) as it:
                for entry in it:
                    if entry.name.startswith(".") or not entry.is_file():
                        continue
                    try:
                        st = entry.stat()
                    except FileNotFoundError:  # moved by someone else meanwhile
                        continue
                    out.append(ObjectInfo(entry.name, st.st_size, st.st_mtime))
        except OSError as exc:
            raise self.error(exc, self.root / folder, "cannot list spool folder") from exc
        return out

    def info(self, folder: str, name: str) -> ObjectInfo | None:
        try:
            st = (self.root / folder / name).stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self.error(exc, self.root / folder / name, "cannot stat spool file") from exc
        return ObjectInfo(name, st.st_size, st.st_mtime)

    def lookup(self, folder: str, name: str, suffixes: tuple[str, ...] = ()) -> list[ObjectInfo]:
        found = (self.info(folder, n) for n in (name, *(name + s for s in suffixes)))
        return [i for i in found if i is not None]

    def now(self) -> float:
        """File times are this machine's: so is the clock they are judged on."""
        return time.time()

    def open_read(self, folder: str, name: str) -> pa.NativeFile:
        path = self.root / folder / name
        try:
            return pa.OSFile(str(path), "rb")
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise self.error(exc, path, "cannot open spool file") from exc

    def upload(self, hint: str) -> LocalUpload:
        return LocalUpload(self, hint)

    def move(self, name: str, src: str, dst: str, *, durable: bool = True) -> None:
        """Atomic ``rename(2)`` (replacing any file of that name), then, if ``durable``,
        fsync both folders (without: a power loss may undo the move, never half do it)."""
        a, b = self.root / src / name, self.root / dst / name
        try:
            os.replace(a, b)
            if durable:
                fsync_dir(b.parent)
                if a.parent != b.parent:
                    fsync_dir(a.parent)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise self.error(exc, a, f"cannot move spool file to {dst}/") from exc

    def delete(self, folder: str, name: str) -> None:
        path = self.root / folder / name
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise self.error(exc, path, "cannot delete spool file") from exc

    def read_json(self, folder: str, name: str) -> Any:
        """The object's JSON, or None when absent; ValueError when it does not parse."""
        try:
            return json.loads((self.root / folder / name).read_text())
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ValueError(f"unreadable: {exc}") from exc

    def write_json(self, folder: str, name: str, data: Any) -> None:
        """Written to a hidden temp file beside it, then renamed over it (never half)."""
        path = self.root / folder / name
        tmp = path.with_name(f".{name}.{os.getpid()}.{threading.get_ident()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, indent=2))
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise self.error(exc, path, "cannot write spool record") from exc

    def lock(self, folder: str, name: str, lease_seconds: float) -> FlockLock | None:
        """An flock on the file (it follows the inode through moves); None if held."""
        try:
            fd = os.open(self.root / folder / name, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self.error(exc, self.root / folder / name, "cannot open spool file") from exc
        if not _try_lock(fd):
            os.close(fd)
            return None
        return FlockLock(fd)

    def clean_tmp(self, grace_seconds: float) -> int:
        """Delete temp files whose writer is gone (a live writer holds an flock on its
        file; one that has not locked it yet is known by its live pid and young age)."""
        removed = 0
        for p in (self.root / "tmp").iterdir():
            try:
                fd = os.open(p, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                if _try_lock(fd) and not _maybe_opening(p, grace_seconds):
                    p.unlink(missing_ok=True)
                    removed += 1
            finally:
                os.close(fd)
        return removed

    def reconcile(self, lease_seconds: float) -> list[str]:
        """Nothing to repair locally: renames are atomic and flocks die with their holder."""
        return []

    def arrow_paths(self, refs: list[tuple[str, str]]) -> tuple[pafs.FileSystem, list[str]]:
        import pyarrow.fs as pafs  # only inspect needs it

        return pafs.LocalFileSystem(), [str(self.root / f / n) for f, n in refs]
