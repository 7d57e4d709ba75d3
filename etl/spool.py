"""The spool: Parquet files, each in exactly one state (``ready``, ``loading`` (claimed,
held by a lock), ``loaded`` (kept until ``prune``), ``failed`` (with an ``.error.json``
sidecar)), over a storage backend.

A file becomes visible in ``ready`` only complete.  A claim moves it to ``loading``; its
named transitions (:meth:`Claim.complete`, :meth:`Claim.fail`, :meth:`Claim.retry`) move
it on, each one move.  The sidecar travels with its file, so a replay that fails again
keeps every attempt.  How a store does it (``rename``/``flock`` in a folder, copy + delete
and leases on object storage) is in :mod:`etl.spooling.store`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa

from etl.errors import SpoolError
from etl.spooling import claiming, sidecar
from etl.spooling import format as fmt
from etl.spooling.names import STATES, SUFFIX, SpoolFile, SpoolName, SpoolState, spool_name
from etl.spooling.sidecar import SIDECAR, FailedAttempt, FailureRecord
from etl.spooling.store import Lock, SpoolStore, open_store
from etl.spooling.writer import ReleaseWriter

if TYPE_CHECKING:
    import pyarrow.dataset as ds

__all__ = ["STATES", "Claim", "FailedAttempt", "FailureRecord", "ReleaseWriter", "Repairs"]
__all__ += ["Spool", "SpoolFile", "SpoolName", "SpoolState", "spool_name"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Repairs:
    """What :meth:`Spool.reconcile` repaired (names, for a log line)."""

    requeued: list[str]  # stuck in loading past the lease, moved back to ready
    repaired: list[str]  # store-level repairs: half-done moves, stale leases and uploads


def _bare(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


class Spool:
    """Owner of every spool file, whatever the store (a folder path or ``s3://...``)."""

    def __init__(
        self, location: str | Path, *, lease_seconds: float = 900.0, create: bool = True
    ) -> None:
        """``create=False``: open an existing spool only (never create one at a mistyped
        path; a :class:`~etl.errors.ConfigError` says so)."""
        self.store: SpoolStore = open_store(location, create=create)
        self.lease_seconds = lease_seconds
        self._pick = threading.Lock()  # guards _next (never held while claiming)
        self._next: deque[claiming.Candidate] = deque()  # claim_next's, in the order to try
        self._held: set[str] = set()  # files this spool's own claims hold: no orphans

    @property
    def location(self) -> str:
        """Where the spool is, for messages (a folder, or ``s3://bucket/prefix``)."""
        return self.store.location

    # --- listing -------------------------------------------------------------------

    def files(self, state: SpoolState) -> list[SpoolFile]:
        """Files in one state, oldest first (by when they were written, then by name)."""
        if state not in STATES:
            raise ValueError(f"unknown spool state {state!r}")
        out = [
            SpoolFile(state, o.name, o.size, o.mtime)
            for o in self.store.list_folder(state)
            if o.name.endswith(SUFFIX)
        ]
        out.sort(key=lambda f: (f.mtime, f.name))
        return out

    def all_files(self) -> Iterator[SpoolFile]:
        return (f for state in STATES for f in self.files(state))

    def find(self, name: str) -> SpoolFile | None:
        """Where a file is now (by its bare name or a path to it)."""
        bare = _bare(name)
        for state in STATES:
            info = self.store.info(state, bare)
            if info is not None:
                return SpoolFile(state, bare, info.size, info.mtime)
        return None

    def failed_as_corrupt(self, f: SpoolFile) -> bool:
        """In ``failed/`` as unreadable (truncated, not Parquet): nothing to replay, its
        release is to be fetched again."""
        last = (self.failure(f) or FailureRecord([])).last if f.state == "failed" else None
        return last is not None and last.corrupt_file

    def holds(self, name: str) -> bool:
        """A usable copy of ``name`` is in some state (not one failed as corrupt)."""
        files = [(s, i) for s in STATES if (i := self.store.info(s, name)) is not None]
        return any(
            not self.failed_as_corrupt(SpoolFile(s, name, i.size, i.mtime)) for s, i in files
        )

    def spooled_versions(self) -> dict[str, set[datetime]]:
        """``product/release`` → the ``updated_at`` values present in any state (a file
        that failed as corrupt does not count: its release is to be fetched again)."""
        seen: dict[str, set[datetime]] = {}
        for f in self.all_files():
            if self.failed_as_corrupt(f):
                continue
            try:
                n = f.parsed
                key = n.release_key
                if n.shortened:  # a long product or release: its full name is in the footer
                    meta = self.read_meta(f)
                    key = SpoolName.key(meta.product, meta.release)
            except SpoolError:
                continue
            seen.setdefault(key, set()).add(n.updated_at)
        return seen

    # --- reading -------------------------------------------------------------------

    def open(self, f: SpoolFile | str) -> pa.NativeFile | IO[bytes]:
        """A random-access stream on the file (Arrow reads it row group by row group)."""
        if isinstance(f, SpoolFile):
            with contextlib.suppress(FileNotFoundError):
                return self.store.open_read(f.state, f.name)
        name = _bare(f.name if isinstance(f, SpoolFile) else f)
        found = self.find(name)  # moved meanwhile (e.g. by another claimant)
        if found is not None:
            with contextlib.suppress(FileNotFoundError):
                return self.store.open_read(found.state, found.name)
        raise SpoolError("no such spool file (moved or deleted meanwhile)", path=name)

    def dataset(self, files: list[SpoolFile]) -> ds.Dataset:
        """The files as one Arrow dataset with ``state`` and ``file`` columns added."""
        import pyarrow.dataset as ds  # only inspect needs it: extract and load stay lean

        fs, paths = self.store.arrow_paths([(f.state, f.name) for f in files])
        schema = fmt.SCHEMA.append(pa.field("state", pa.string())).append(
            pa.field("file", pa.string())
        )
        parts = [(ds.field("state") == f.state) & (ds.field("file") == f.name) for f in files]
        return ds.FileSystemDataset.from_paths(
            paths, schema=schema, format=ds.ParquetFileFormat(), filesystem=fs, partitions=parts
        )

    def read_meta(self, f: SpoolFile, bounded: bool = False) -> fmt.FileMeta:
        with self.open(f) as src:  # bounded: refuse what decodes too big (fmt.read_meta)
            return fmt.read_meta(src, f.name, bounded=bounded)

    # --- writing -------------------------------------------------------------------

    def writer(
        self, product: str, release: str, updated_at: datetime, source_url: str,
        compression: str = "lz4", read_at: datetime | None = None,
    ) -> ReleaseWriter:  # fmt: skip
        """One release's file writer; ``read_at``: when the source was read (its extracted_at)."""
        args = (product, release, updated_at, source_url, compression, read_at)
        return ReleaseWriter(self.store, *args)

    def clean_tmp(self, grace_seconds: float = 60.0) -> int:
        """Delete temporary uploads whose writer is gone; a live writer's are spared."""
        return self.store.clean_tmp(grace_seconds)

    def read_record(self, name: str) -> Any:
        """A small JSON object under ``state/`` (None when absent or unreadable)."""
        try:
            return self.store.read_json("state", name)
        except ValueError:
            return None

    def write_record(self, name: str, data: Any) -> None:
        self.store.write_json("state", name, data)

    def delete_record(self, name: str) -> None:
        self.store.delete("state", name)

    def records(self, prefix: str, older_than: float | None = None) -> list[str]:
        """Record names starting with ``prefix`` (older than ``older_than`` seconds on the
        store's clock, if given)."""
        cutoff = float("inf") if older_than is None else self.store.now() - older_than
        objects = self.store.list_folder("state")
        return sorted(o.name for o in objects if o.name.startswith(prefix) and o.mtime <= cutoff)

    # --- claiming and moving -------------------------------------------------------

    def claim(self, f: SpoolFile | str) -> Claim | None:
        """Take one named file for loading: from ``ready``, or adopted from ``loading`` when
        its loader died (its lock lapsed: :attr:`Claim.orphan`).  None when it is in neither
        (loaded, failed, gone) or another claimant holds it."""
        name = _bare(f.name if isinstance(f, SpoolFile) else f)
        return self._claim(name, "ready") or self._claim(name, "loading")

    def claim_next(self) -> Claim | None:
        """The next file to load, or None when none can be claimed now: first the files
        left in ``loading`` by dead loaders (adopted), then ``ready`` oldest first.  The one
        place that picks what loads next (``load`` and its read-ahead; a worker's task names
        its file: :meth:`claim`).  Thread-safe, no lock held while claiming.  One listing
        serves many calls; the next comes once all were tried (a file put back is found)."""
        listed = False
        while True:
            with self._pick:
                if not self._next:
                    if listed:
                        return None
                    orphans = (f.name for f in self.files("loading") if f.name not in self._held)
                    self._next.extend(("loading", name, None) for name in orphans)
                    self._next.extend(claiming.listed(self.store, "ready"))
                    listed = True
                    continue
                state, name, seen = self._next.popleft()
            claim = self._claim(name, state, listed=seen)
            if claim is not None:
                return claim

    def backlog(self) -> int:
        """Files :meth:`claim_next` has listed and not tried yet (for a progress total)."""
        return len(self._next)

    def adopt_orphans(self, lease_seconds: float | None = None) -> list[Claim]:
        """Files left in ``loading`` by a loader that died (its lock lapsed: locally when
        its process ended, on object storage when its lease is older than the lease)."""
        claims = []
        for f in self.files("loading"):
            c = self._claim(f.name, "loading", lease_seconds)
            if c is not None:
                claims.append(c)
        return claims

    def _claim(
        self, name: str, src: SpoolState, lease: float | None = None, listed: claiming.Listed = None
    ) -> Claim | None:
        lease_seconds = self.lease_seconds if lease is None else lease
        taken = claiming.take(self.store, name, src, lease_seconds, listed)
        if taken is None:
            return None
        self._held.add(name)
        file = SpoolFile("loading", name, taken.info.size, taken.info.mtime)
        return Claim(self, file, taken.lock, orphan=src == "loading", sidecar=taken.sidecar)

    def move(self, f: SpoolFile | str, state: SpoolState) -> SpoolFile:
        """Move a file (and its sidecar) to ``state``; raises :class:`SpoolError`."""
        found = self.find(f.name if isinstance(f, SpoolFile) else f)
        name = _bare(f.name if isinstance(f, SpoolFile) else f)
        if found is None:
            raise SpoolError("no such spool file in any state", path=name)
        try:
            own = sidecar.locate(self.store, name, found.state)  # before a same-named file moves
            if found.state != state:  # see _VOLATILE
                self.store.move(name, found.state, state, durable=state not in _VOLATILE)
            if own is not None and own != state:
                self.store.move(name + SIDECAR, own, state)  # replaces a replaced file's
            elif own is None and found.state != state:
                self.store.delete(state, name + SIDECAR)  # the replaced file's, not ours
        except FileNotFoundError as exc:
            raise SpoolError(f"moved by someone else meanwhile: {exc}", path=name) from exc
        return SpoolFile(state, name, found.size, found.mtime)

    def failure(self, f: SpoolFile | str) -> FailureRecord | None:
        """The file's error sidecar (every attempt), or None when it has none."""
        name = _bare(f.name if isinstance(f, SpoolFile) else f)
        return sidecar.read(self.store, name, f.state if isinstance(f, SpoolFile) else None)

    def record_failure(self, f: SpoolFile, attempt: FailedAttempt) -> None:
        """Append one attempt to the file's error sidecar (written whole, beside the file)."""
        sidecar.append(self.store, f.name, f.state, attempt)

    def requeue(self, names: list[str] | None = None, *, failed: bool = False) -> list[SpoolFile]:
        """Move named files (any state but loading) or every failed file back to ``ready``."""
        targets: list[SpoolFile] = []
        if failed:
            targets.extend(self.files("failed"))
        for name in names or []:
            found = self.find(name)
            if found is None:
                raise SpoolError("no such spool file in any state", path=name)
            if found.state == "loading":
                raise SpoolError("file is being loaded right now", path=found.name)
            targets.append(found)
        return [self.move(t, "ready") if t.state != "ready" else t for t in targets]

    def prune(self, older_than_seconds: float, now: float | None = None) -> tuple[int, int]:
        """Delete loaded files older than the given age (on the store's clock); returns
        (files, bytes)."""
        cutoff = (self.store.now() if now is None else now) - older_than_seconds
        count = freed = 0
        for f in self.files("loaded"):
            if f.mtime <= cutoff:
                at = sidecar.locate(self.store, f.name, "loaded")
                side = None if at is None else self.store.info(at, f.name + SIDECAR)
                freed += f.size + (side.size if side is not None else 0)
                self.store.delete("loaded", f.name)
                if at is not None:
                    self.store.delete(at, f.name + SIDECAR)
                count += 1
        return count, freed

    def reconcile(self, lease_seconds: float | None = None) -> Repairs:
        """Repair what dead processes left: half-done moves, stale uploads and leases (the
        store's part), then every file in ``loading`` whose lock lapsed goes back to
        ``ready`` (the ledger makes loading it again harmless).  Safe to run any time,
        from any machine, next to live loaders."""
        lease = self.lease_seconds if lease_seconds is None else lease_seconds
        repaired = self.store.reconcile(lease)
        requeued = []
        for claim in self.adopt_orphans(lease):  # one that kills its loaders: to failed/
            if sidecar.requeue_or_fail(claim, self.failure(claim.file)):
                requeued.append(claim.name)
        return Repairs(requeued, repaired)


#: States a move into needs no fsync: a power loss that undoes it leaves the file in
#: ``loading``, where the next run adopts it and the database's ledger decides (a
#: committed file is only moved on, never applied twice).
_VOLATILE: frozenset[SpoolState] = frozenset({"loaded"})


class Claim:
    """A file in ``loading`` held by this process until one transition moves it on."""

    def __init__(
        self, spool: Spool, file: SpoolFile, lock: Lock, *, orphan: bool = False,
        sidecar: bool = False,
    ) -> None:  # fmt: skip
        self.spool = spool
        self.file = file
        self.orphan = orphan  # adopted from a dead loader: maybe committed already
        self._lock: Lock | None = lock
        self._sidecar = sidecar  # its error sidecar was beside it when claimed

    @property
    def name(self) -> str:
        return self.file.name

    @property
    def size(self) -> int:
        return self.file.size

    def open(self) -> pa.NativeFile | IO[bytes]:
        return self.spool.open(self.file)

    def renew(self) -> None:
        """Still at work (call it more often than ``lease_seconds``; free locally)."""
        if self._lock is not None:
            self._lock.renew()

    def complete(self) -> SpoolFile:
        """Committed to the database: ``loading`` → ``loaded`` (2 requests on object storage)."""
        try:
            claiming.finish(self.spool.store, self.name, self._sidecar)
            return SpoolFile("loaded", self.name, self.size, self.file.mtime)
        finally:
            self.close()

    def fail(self, attempt: FailedAttempt) -> SpoolFile:
        """Rejected: the attempt is added to the sidecar, then ``loading`` → ``failed``."""
        return self._transition("failed", attempt)

    def retry(self) -> SpoolFile:
        """Worth trying again later (the database went away): ``loading`` → ``ready``."""
        return self._transition("ready")

    def give_back(self) -> None:
        """Never started: a file claimed from ``ready`` goes back there; an orphan stays in
        ``loading`` as it was (so does a file whose move back fails: the next run adopts
        it)."""
        if self.orphan:
            self.close()
            return
        try:
            self.retry()
        except SpoolError as exc:
            log.warning("could not put %s back in ready/: %s", self.name, exc)
            self.close()

    def _transition(self, state: SpoolState, attempt: FailedAttempt | None = None) -> SpoolFile:
        try:
            if attempt is not None:
                self.spool.record_failure(self.file, attempt)
            return self.spool.move(self.file, state)
        finally:
            self.close()

    def close(self) -> None:
        """Let go without moving (the file stays an orphan in ``loading``)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
            self.spool._held.discard(self.name)
