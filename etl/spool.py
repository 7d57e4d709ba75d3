"""The spool: Parquet files on disk, each in exactly one state, moved only by atomic rename.

Layout (all under one root, one filesystem, so every move is a ``rename(2)``)::

    spool/
      tmp/       files being written (never read by anyone; cleaned when their writer died)
      ready/     complete files waiting for ``load``
      loading/   claimed by a loader (held with an flock while it works)
      loaded/    committed to Postgres (kept until ``prune``)
      failed/    rejected; ``<name>.error.json`` beside it says what, when, how often
      state.sqlite   incremental-extract memory (updated_at, ETags per release)

A file is written to ``tmp/``, fsynced, renamed into ``ready/`` and the folder fsynced: no
reader ever sees half a file.  An error sidecar travels with its file from state to state,
so a replay that fails again keeps the whole history of attempts.
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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pyarrow.parquet as pq

from etl import spoolformat as fmt
from etl.crashpoint import crash_point as crash_point  # re-exported for load.py
from etl.errors import SpoolError, SpoolFileError, SpoolFullError
from etl.spoolformat import SUFFIX, SpoolName, spool_name

STATES = ("ready", "loading", "loaded", "failed")
__all__ = ["STATES", "Claim", "ReleaseWriter", "Spool", "SpoolFile", "SpoolName", "spool_name"]
SIDECAR = ".error.json"


@dataclass(frozen=True)
class SpoolFile:
    state: str
    path: Path
    size: int
    mtime: float

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def parsed(self) -> SpoolName:
        return SpoolName.parse(self.path.name)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class Spool:
    """Owner of every file under the spool root."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        try:
            for sub in ("tmp", *STATES):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(f"cannot create spool folders: {exc}", path=str(self.root)) from exc

    # --- listing -------------------------------------------------------------------

    def dir(self, state: str) -> Path:
        if state not in STATES:
            raise ValueError(f"unknown spool state {state!r}")
        return self.root / state

    def files(self, state: str) -> list[SpoolFile]:
        """Files in one state, oldest first (by when they were written, then by name)."""
        out: list[SpoolFile] = []
        with os.scandir(self.dir(state)) as it:
            for entry in it:
                if not entry.name.endswith(SUFFIX) or not entry.is_file():
                    continue
                try:
                    st = entry.stat()
                except FileNotFoundError:  # moved by someone else meanwhile
                    continue
                out.append(SpoolFile(state, Path(entry.path), st.st_size, st.st_mtime))
        out.sort(key=lambda f: (f.mtime, f.name))
        return out

    def all_files(self) -> Iterator[SpoolFile]:
        for state in STATES:
            yield from self.files(state)

    def find(self, name: str) -> SpoolFile | None:
        """Where a file is now (by its bare name or a path to it)."""
        bare = Path(name).name
        for state in STATES:
            p = self.dir(state) / bare
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            return SpoolFile(state, p, st.st_size, st.st_mtime)
        return None

    def spooled_versions(self) -> dict[str, set[datetime]]:
        """``product/release`` → the ``updated_at`` values present in any state."""
        seen: dict[str, set[datetime]] = {}
        for f in self.all_files():
            try:
                n = f.parsed
            except SpoolFileError:
                continue
            seen.setdefault(n.release_key, set()).add(n.updated_at)
        return seen

    # --- writing -------------------------------------------------------------------

    def writer(
        self, product: str, release: str, updated_at: datetime, source_url: str
    ) -> ReleaseWriter:
        return ReleaseWriter(self, product, release, updated_at, source_url)

    def clean_tmp(self, grace_seconds: float = 60.0) -> int:
        """Delete temporary files whose writer is gone.

        A live writer holds an flock on its file.  A writer that has just created its file
        but not yet locked it is recognised by the pid in the name (still alive) and the
        file's age (under ``grace_seconds``), so a concurrent extractor never deletes it.
        """
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

    # --- claiming and moving -------------------------------------------------------

    def claim(self, f: SpoolFile) -> Claim | None:
        """Take a ready file for loading; None if another loader got it first."""
        return self._claim(self.dir("ready") / f.name, move=True)

    def adopt_orphans(self) -> list[Claim]:
        """Files left in ``loading/`` by a loader that died (nobody holds their lock)."""
        claims = []
        for f in self.files("loading"):
            c = self._claim(f.path, move=False)
            if c is not None:
                claims.append(c)
        return claims

    def _claim(self, src: Path, *, move: bool) -> Claim | None:
        try:
            fd = os.open(src, os.O_RDONLY)
        except FileNotFoundError:
            return None
        if not _try_lock(fd):
            os.close(fd)
            return None
        dst = self.dir("loading") / src.name
        try:
            if move:
                os.rename(src, dst)
                self._move_sidecar(src, dst)
                _fsync_dir(dst.parent)
            elif not src.exists():  # finished by its owner between listing and locking
                os.close(fd)
                return None
        except FileNotFoundError:  # another loader renamed it between open and rename
            os.close(fd)
            return None
        return Claim(self, dst, fd)

    def _sidecar_path(self, path: Path) -> Path | None:
        """Where the file's sidecar is: beside it, or (after a kill between the two renames
        of a move) in the folder it came from."""
        own = path.with_name(path.name + SIDECAR)
        if own.exists():
            return own
        for state in STATES:
            other = self.dir(state) / own.name
            if other.exists():
                return other
        return None

    def _move_sidecar(self, src: Path, dst: Path) -> None:
        side = self._sidecar_path(src)
        if side is not None:
            os.replace(side, dst.with_name(dst.name + SIDECAR))

    def move(self, path: Path, state: str) -> Path:
        dst = self.dir(state) / path.name
        os.replace(path, dst)
        self._move_sidecar(path, dst)
        _fsync_dir(dst.parent)
        if path.parent != dst.parent:
            _fsync_dir(path.parent)
        return dst

    def sidecar(self, path: Path) -> dict[str, Any] | None:
        side = self._sidecar_path(path)
        if side is None:
            return None
        try:
            data: dict[str, Any] = json.loads(side.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {"attempts": [], "corrupt": True}
        return data

    def record_failure(self, path: Path, attempt: dict[str, Any]) -> None:
        """Append one attempt to the file's error sidecar (written atomically)."""
        data = self.sidecar(path) or {"attempts": []}
        data["attempts"].append(attempt)
        data["count"] = len(data["attempts"])
        data["last"] = attempt
        old = self._sidecar_path(path)
        side = path.with_name(path.name + SIDECAR)
        # the temp file sits beside the sidecar (not in tmp/, which extract cleans)
        tmp = side.with_name(f".{side.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, side)
        if old is not None and old != side:
            old.unlink(missing_ok=True)

    def requeue(self, names: list[str] | None = None, *, failed: bool = False) -> list[Path]:
        """Move named files (any state but ready) or every failed file back to ``ready``."""
        targets: list[SpoolFile] = []
        if failed:
            targets.extend(self.files("failed"))
        for name in names or []:
            found = self.find(name)
            if found is None:
                raise SpoolError("no such spool file in any state", path=name)
            if found.state == "loading":
                raise SpoolError("file is being loaded right now", path=str(found.path))
            targets.append(found)
        return [self.move(t.path, "ready") for t in targets if t.state != "ready"] + [
            t.path for t in targets if t.state == "ready"
        ]

    def prune(self, older_than_seconds: float, now: float | None = None) -> tuple[int, int]:
        """Delete loaded files older than the given age; returns (files, bytes)."""
        cutoff = (time.time() if now is None else now) - older_than_seconds
        count = freed = 0
        for f in self.files("loaded"):
            if f.mtime <= cutoff:
                side = self._sidecar_path(f.path)
                freed += f.size + (side.stat().st_size if side is not None else 0)
                f.path.unlink(missing_ok=True)
                if side is not None:
                    side.unlink(missing_ok=True)
                count += 1
        return count, freed

    def sqlite_path(self) -> Path:
        return self.root / "state.sqlite"

    # --- for etl.workers: one orphan by name, and run notes ---------------------------

    def adopt(self, name: str) -> Claim | None:
        """The file ``name`` in ``loading/`` if it is an orphan (nobody holds its lock)."""
        return self._claim(self.dir("loading") / Path(name).name, move=False)

    def put_note(self, key: str, data: bytes) -> None:
        """Write a small document under ``notes/`` (``key`` like ``run/what.json``),
        atomically: a reader sees the old one, or the whole new one."""
        path = self._note_path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError as exc:
            raise SpoolError(f"cannot write note: {exc}", path=key) from exc

    def notes(self, prefix: str) -> dict[str, bytes]:
        """Every note under ``notes/<prefix>/``, by key."""
        folder = self._note_path(prefix)
        out: dict[str, bytes] = {}
        try:
            entries = sorted(folder.iterdir()) if folder.is_dir() else []
            for p in entries:
                if p.is_file() and not p.name.startswith("."):
                    with contextlib.suppress(FileNotFoundError):
                        out[f"{prefix}/{p.name}"] = p.read_bytes()
        except OSError as exc:
            raise SpoolError(f"cannot read notes: {exc}", path=prefix) from exc
        return out

    def _note_path(self, key: str) -> Path:
        parts = [p for p in key.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise SpoolError("bad note key", path=key)
        return self.root.joinpath("notes", *parts)


class Claim:
    """A file in ``loading/`` held (flock) by this process until it is moved on."""

    def __init__(self, spool: Spool, path: Path, fd: int) -> None:
        self.spool = spool
        self.path = path
        self._fd: int | None = fd

    @property
    def name(self) -> str:
        return self.path.name

    def finish(self, state: str, failure: dict[str, Any] | None = None) -> Path:
        """Move the file on (``loaded``, ``failed`` or back to ``ready``) and let go."""
        if failure is not None:
            self.spool.record_failure(self.path, failure)
        try:
            dst = self.spool.move(self.path, state)
        finally:
            self.close()
        return dst

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


class ReleaseWriter:
    """Writes one release's artifacts, each as its own row group, then publishes the file.

    Use as a context manager; call :meth:`commit` to publish.  Leaving the block without a
    commit (an exception, a kill) leaves nothing but a temp file that ``clean_tmp`` removes.
    """

    def __init__(
        self, spool: Spool, product: str, release: str, updated_at: datetime, source_url: str
    ) -> None:
        self.spool = spool
        self.product = product
        self.release = release
        self.updated_at = updated_at
        self.source_url = source_url
        self.hasher = fmt.ContentHasher(product, release, updated_at)
        self.artifacts = 0
        self.drops = 0
        self.json_bytes = 0
        self._pending = 0  # in-memory bytes of the artifact being written
        self.tmp = spool.root / "tmp" / f"{product}~{release}.{os.getpid()}.{time.time_ns()}.part"
        self._file: IO[bytes] | None = None
        self._writer: pq.ParquetWriter | None = None
        self.path: Path | None = None

    def __enter__(self) -> ReleaseWriter:
        try:
            self._file = open(self.tmp, "wb")  # closed in commit/abort
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._writer = pq.ParquetWriter(
                self._file, fmt.SCHEMA, compression="zstd", compression_level=3
            )
        except OSError as exc:
            error = self._os_error(exc)
            self.abort()
            raise error from exc
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.path is None:
            self.abort()

    def add(self, row: fmt.ArtifactRow) -> None:
        assert self._writer is not None, "use ReleaseWriter as a context manager"
        table = fmt.artifact_table(self.product, self.release, self.updated_at, row)
        self._pending = table.nbytes
        try:
            self._writer.write_table(table, row_group_size=1)
        except OSError as exc:
            raise self._os_error(exc) from exc
        self._pending = 0
        self.hasher.add(row)
        self.artifacts += 1
        self.drops += len(row.drops)
        self.json_bytes += sum(
            len(v.encode()) if v else 0
            for v in (row.dependency_graph, row.constraints_file, row.build_sequence_summary)
        )

    def commit(self) -> Path:
        """Footer, fsync, rename into ``ready/``, fsync the folder; returns the final path."""
        assert self._writer is not None and self._file is not None
        digest = self.hasher.hexdigest()
        meta = fmt.FileMeta(
            schema_version=fmt.SPOOL_SCHEMA_VERSION,
            product=self.product,
            release=self.release,
            updated_at=self.updated_at,
            extracted_at=datetime.now(UTC),
            source_url=self.source_url,
            content_sha256=digest,
            artifacts=self.artifacts,
            drops=self.drops,
            json_bytes=self.json_bytes,
        )
        dst = self.spool.dir("ready") / spool_name(
            self.product, self.release, self.updated_at, digest
        )
        try:
            self._writer.add_key_value_metadata(meta.to_kv())
            self._writer.close()
            self._writer = None
            self._file.flush()
            os.fsync(self._file.fileno())
            crash_point("extract-before-rename")
            os.rename(self.tmp, dst)
            _fsync_dir(dst.parent)
        except OSError as exc:
            error = self._os_error(exc)
            self.abort()
            raise error from exc
        finally:
            if self._file is not None:
                self._file.close()
                self._file = None
        self.path = dst
        return dst

    def abort(self) -> None:
        """Close and delete the temp file, whatever happens (a full disk fails the close)."""
        try:
            if self._writer is not None:
                with contextlib.suppress(Exception):  # best effort on the way out
                    self._writer.close()
                self._writer = None
            if self._file is not None:
                with contextlib.suppress(OSError):  # flushing the buffer fails on a full disk
                    self._file.close()
                self._file = None
        finally:
            self.tmp.unlink(missing_ok=True)

    def _os_error(self, exc: OSError) -> SpoolError:
        key = f"{self.product}/{self.release}"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            free = shutil.disk_usage(self.spool.root).free
            return SpoolFullError(
                f"no space left in spool folder {self.spool.root.resolve()} "
                f"({free} bytes free; this release needs about {self._needed()} bytes): "
                "free some space (e.g. `wheels-etl prune`) and run again",
                release=key,
                path=str(self.tmp),
            )
        return SpoolError(f"cannot write spool file: {exc}", release=key, path=str(self.tmp))

    def _needed(self) -> int:
        """Space this release takes: its temp file so far plus the artifact being written
        (uncompressed, so rather more than it will take)."""
        written = 0
        with contextlib.suppress(OSError, ValueError):
            written = os.fstat(self._file.fileno()).st_size if self._file else 0
        return max(written + self._pending, 1)
