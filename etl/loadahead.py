"""Read-ahead for load: claim the next spool file and prepare its COPY data in a thread.

While a loader's connection sends file N and waits for the server (its COPY, its
COMMIT), one thread per connection claims file N+1, reads its footer, decodes its row
groups and renders them for the wire (:func:`etl.db.copystream.prepare`: Parquet
decoding and Arrow's CSV writer run without the GIL).  Client and server then work at
the same time instead of taking turns, and the spool's own per-file work (the claim's
rename, the footer read) is off the connection's path.

Bounded both ways, so memory stays flat whatever the file sizes: at most **one file
ahead** of the one being sent (file N+2 is not claimed before file N+1 is handed over),
and at most ``max_bytes`` of prepared batches waiting (always at least one).

The read-ahead never talks to the database: what a file does (applied, unchanged, ...)
is decided by the loader, which hands back the rest of a file it does not send with
:meth:`Ahead.discard`.  What it claims, and in which order, the spool decides
(:meth:`etl.spool.Spool.claim_next`); claims the loader never received when the read-ahead
closes are given back (:meth:`etl.spool.Claim.give_back`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

from etl.db import copystream
from etl.db.copystream import Batch
from etl.errors import CorruptSpoolFileError, LoaderKilledError, SpoolError, SpoolFileError
from etl.protocol import too_far_ahead
from etl.spool import Claim
from etl.spooling import format as fmt
from etl.spooling.rows import ContentHasher
from etl.spooling.sidecar import MAX_LOADER_DEATHS, killed_message

log = logging.getLogger(__name__)

__all__ = ["Ahead", "NextClaim", "ReadAhead"]

#: Prepared bytes allowed to wait (the one batch being sent and the one being made are
#: on top).  Files of about 1 MB fit whole; a release of 5 MB documents queues one batch.
MAX_BYTES = 16 * 1024 * 1024

#: Where the read-ahead takes its claims from (:meth:`etl.spool.Spool.claim_next`, or one
#: given claim): None when there is nothing to claim now.
NextClaim = Callable[[], Claim | None]


@dataclass(frozen=True)
class _End:
    """The last item of one file: all its batches were queued (or it was cut short)."""


_END = _End()


@dataclass(frozen=True)
class _Failed:
    """The read-ahead's own error (claiming, or a file that cannot be read)."""

    error: BaseException


class Ahead:
    """One claimed file as the read-ahead hands it over: its footer, then its batches.

    :meth:`meta` raises what reading the footer raised (a :class:`SpoolFileError` for a
    bad file), :meth:`batches` what reading a row group raised, in the loader's thread.
    """

    def __init__(self, pipe: _Pipe, claim: Claim, finisher: ThreadPoolExecutor) -> None:
        self._pipe = pipe
        self.claim = claim
        self._finisher = finisher
        self._meta: fmt.FileMeta | None = None
        self._error: BaseException | None = None
        self.skip = threading.Event()  # set by discard(): the read-ahead stops this file
        self.hash_only = threading.Event()  # set by verify(): no more batches, only the hash
        self._drained = False
        self._renewed = time.monotonic()  # the claim was just made (or adopted)

    @property
    def name(self) -> str:
        return self.claim.name

    @property
    def orphan(self) -> bool:
        return self.claim.orphan

    def meta(self) -> fmt.FileMeta:
        if self._error is not None:
            raise self._error
        assert self._meta is not None
        return self._meta

    def batches(self) -> Iterator[Batch]:
        """The file's batches in row-group order (each taken once).  The COPY loop that
        sends them renews the claim's lease as it goes (:meth:`renew_if_due`)."""
        while not self._drained:
            item = self._pipe.get()
            self.renew_if_due()
            if isinstance(item, Batch):
                yield item
                continue
            self._drained = True
            if isinstance(item, _Failed):
                raise item.error
            assert isinstance(item, _End), item

    def verify(self) -> None:
        """The loader sends nothing of this file but wants it checked: the rest is read
        and hashed only, and a file that does not match its footer's hash raises (a forged
        file must not replace the genuine one in ``loaded/``)."""
        self.hash_only.set()
        while not self._drained and self._error is None:
            item = self._pipe.get()
            if isinstance(item, _End | _Failed):
                self._drained = True
            if isinstance(item, _Failed):
                raise item.error

    def complete(self) -> None:
        """Committed: the claim moves on to ``loaded`` in the background, off the
        connection's path (on object storage a copy and a delete); the read-ahead's
        :meth:`~ReadAhead.close` waits for it.  Killed first, the file is an orphan that
        the next run completes from the ledger, as after any kill past the COMMIT."""
        self._finisher.submit(_complete, self.claim)

    def renew_if_due(self) -> None:
        """Renew the claim's lease once a third of it has passed since the last renewal
        (free on a local spool).  A failed renewal is logged, not raised: the load goes
        on, and the ledger keeps a second loader of a lapsed claim from applying twice."""
        now = time.monotonic()
        if now - self._renewed < self.claim.spool.lease_seconds / 3:
            return
        self._renewed = now
        try:
            self.claim.renew()
        except SpoolError as exc:
            log.warning("could not renew the claim on %s: %s", self.name, exc)

    def discard(self) -> None:
        """The loader is done with this file: drop what is left of it (idempotent)."""
        if self._drained or self._error is not None:
            self._drained = True
            return
        self.skip.set()
        while not self._drained:
            item = self._pipe.get()
            if isinstance(item, _End | _Failed):
                self._drained = True


class _Pipe:
    """A FIFO of read-ahead items bounded by bytes; closing wakes both sides."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.cond = threading.Condition()
        self.items: deque[tuple[object, int]] = deque()
        self.bytes = 0
        self.closed = False

    def put(self, item: object, size: int = 0) -> bool:
        """Queue ``item`` (waits for room); False once closed."""
        with self.cond:
            while not self.closed and self.items and self.bytes + size > self.max_bytes:
                self.cond.wait()
            if self.closed:
                return False
            self.items.append((item, size))
            self.bytes += size
            self.cond.notify_all()
            return True

    def get(self) -> object:
        with self.cond:
            while not self.items:
                if self.closed:
                    return _Failed(SpoolError("the read-ahead was closed"))
                self.cond.wait()
            item, size = self.items.popleft()
            self.bytes -= size
            self.cond.notify_all()
            return item

    def close(self) -> list[object]:
        """Refuse further items; returns those never taken."""
        with self.cond:
            self.closed = True
            left = [item for item, _ in self.items]
            self.items.clear()
            self.bytes = 0
            self.cond.notify_all()
            return left


class ReadAhead:
    """Claims and prepares files one ahead of the loader, in a thread of its own.

    Use as a context manager; :meth:`next` gives the files in claim order, then None.
    """

    def __init__(self, next_claim: NextClaim, *, max_bytes: int = MAX_BYTES) -> None:
        self._next_claim = next_claim
        self._pipe = _Pipe(max_bytes)
        self._turn = threading.Semaphore(1)  # one file may be claimed ahead of the loader
        self._thread = threading.Thread(target=self._run, name="load read-ahead", daemon=True)
        self._started = False
        self._ended = False  # the thread found nothing to claim; next() asks it again
        self._finisher = ThreadPoolExecutor(1, thread_name_prefix="load complete")

    @classmethod
    def of(cls, claim: Claim) -> ReadAhead:
        """A read-ahead over one claim (a Celery task's file)."""
        given = [claim]
        return cls(lambda: given.pop() if given else None)

    def __enter__(self) -> ReadAhead:
        self._started = True
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def next(self) -> Ahead | None:
        """The next claimed file, or None when there is nothing to claim (now: calling
        again looks again, e.g. for a file put back in ``ready`` meanwhile)."""
        if self._ended:
            self._ended = False
            self._turn.release()
        item = self._pipe.get()
        if isinstance(item, Ahead):
            self._turn.release()
            return item
        if isinstance(item, _Failed):
            raise item.error
        self._ended = True
        return None

    def close(self) -> None:
        """Stop the thread; claims the loader never received go back where they were."""
        left = self._pipe.close()
        self._turn.release()  # wakes a thread waiting for its turn
        if self._started:
            self._thread.join()
        self._finisher.shutdown(wait=True)  # completions handed over are all done
        for item in left:
            if isinstance(item, Ahead):
                item.claim.give_back()

    # --- the thread --------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                self._turn.acquire()
                if self._pipe.closed:
                    return
                claim = self._next_claim()
                if claim is None:
                    self._pipe.put(None)
                    continue
                self._read(Ahead(self._pipe, claim, self._finisher))
        except BaseException as exc:  # raised in the loader's thread by next()
            self._pipe.put(_Failed(exc))

    def _read(self, ahead: Ahead) -> None:
        name = ahead.name
        try:
            if ahead.orphan:
                _check_deaths(ahead.claim)
            src = ahead.claim.open()
        except BaseException as exc:
            ahead._error = exc
            self._hand_over(ahead)
            return
        with contextlib.closing(src):
            try:
                pf, meta = fmt.open_file(src, name)
                ahead._meta = fmt.check_name(name, meta)
                _check_not_ahead(meta, name)
            except BaseException as exc:
                ahead._error = exc
                self._hand_over(ahead)
                return
            if not self._hand_over(ahead):
                return
            try:
                columns = copystream.ARTIFACT_READ
                hasher = ContentHasher(meta.product, meta.release, meta.updated_at)
                for tbl in fmt.iter_row_groups(pf, columns, name, use_threads=False):
                    if ahead.skip.is_set():
                        self._pipe.put(_END)
                        return
                    hasher.add_table(tbl)
                    if ahead.hash_only.is_set():
                        continue
                    batch = copystream.prepare(tbl, meta, name)
                    del tbl
                    if not self._pipe.put(batch, batch.nbytes):
                        return
                _check_hash(hasher, meta, name)
                self._pipe.put(_END)
            except BaseException as exc:
                self._pipe.put(_Failed(exc))

    def _hand_over(self, ahead: Ahead) -> bool:
        if self._pipe.put(ahead):
            return True
        ahead.claim.give_back()  # closed meanwhile: the loader never saw it
        return False


def _check_deaths(claim: Claim) -> None:
    """An orphan whose loaders died :data:`MAX_LOADER_DEATHS` times in a row is not loaded
    again (each death was noted in its sidecar when it was adopted)."""
    record = claim.spool.failure(claim.file)
    deaths = record.deaths if record is not None else 0
    if deaths >= MAX_LOADER_DEATHS:
        raise LoaderKilledError(killed_message(deaths), path=claim.name)


def _check_not_ahead(meta: fmt.FileMeta, name: str) -> None:
    """A file whose ``updated_at`` is too far in the future is refused: newer data wins by
    ``updated_at``, so it would supersede every real update after it, for good."""
    why = too_far_ahead(meta.updated_at, datetime.now(UTC))
    if why is not None:
        raise SpoolFileError(why, path=name)


def _check_hash(hasher: ContentHasher, meta: fmt.FileMeta, name: str) -> None:
    """The content read is the content the footer's hash (and the file name) vouch for:
    a forged or altered file fails before its transaction commits (the loader sends the
    batches as they come; this check comes before the end of the last one)."""
    digest = hasher.hexdigest()
    if digest != meta.content_sha256:
        raise CorruptSpoolFileError(
            f"content does not match its hash: the footer says {meta.content_sha256[:16]}, "
            f"the rows hash to {digest[:16]}",
            path=name,
        )


def _complete(claim: Claim) -> None:
    try:
        claim.complete()
    except SpoolError as exc:  # left in loading/: the next run completes it from the ledger
        log.warning("committed %s but could not move it to loaded/: %s", claim.name, exc)
    except BaseException:
        log.exception("committed %s but could not move it to loaded/", claim.name)
