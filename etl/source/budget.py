"""A cap on response bytes held in memory across all fetch threads.

Every document fetch opens a :class:`Reservation` and reserves bytes as the body streams in
(the whole ``Content-Length`` at once when it is known, chunk by chunk otherwise).  The
reservation is held until the :class:`~etl.source.Document` is released.

Rules, in order:

* a reservation that fits under the cap is granted at once; a *new* reservation (nothing
  held yet) queues behind older waiting ones (FIFO admission, so a big document is not
  starved by a stream of small ones);
* it never deadlocks: when every incomplete reservation is waiting and nothing can free
  bytes, the **oldest incomplete** reservation goes over the cap (an *overdraft*).  "Nothing
  can free bytes" means no completed document holds bytes, or none was released for
  ``stall_grace`` seconds (their holders may themselves be waiting for this fetch, as
  extract's release threads do).  A single document larger than the cap therefore still
  completes, alone.

Overdrafts go to one *group* at a time.  ``open(group=...)`` names the group a document
belongs to (extract: one artifact's four files, or one ``release.json``); once the oldest
incomplete reservation is let over the cap, its group holds the overdraft and every
reservation of that group is granted at once, until all of them are released.  Others are
granted only under the cap meanwhile, so **the bytes held never exceed ``cap`` plus the
bytes of one group** (for extract: ``max_inflight_bytes`` + one artifact's four files, or
one ``release.json``).  A group named by the caller keeps the overdraft until it lets
go (its holder must not wait for another group's bytes, as extract's release threads never
do); an unnamed reservation is a group of its own whose overdraft passes to the next stuck
reservation after ``stall_grace`` (so generic callers that hold one document while fetching
the next never deadlock, at the price of the bound).

``in_use``, ``peak`` (the most bytes ever reserved at once) and ``overdrafts`` are exposed
for tests and the closing report.
"""

from __future__ import annotations

import itertools
import threading
import time

from etl.errors import FetchError


class Reservation:
    """The bytes one document holds; see :class:`ByteBudget`."""

    __slots__ = ("_budget", "complete", "group", "held", "named", "released", "seq", "waiting")

    def __init__(self, budget: ByteBudget, seq: int, group: object = None) -> None:
        self._budget = budget
        self.seq = seq
        self.named = group is not None
        self.group: object = group if group is not None else ("reservation", seq)
        self.held = 0
        self.waiting = False
        self.complete = False
        self.released = False

    def reserve(self, n: int) -> None:
        """Block until ``n`` more bytes may be held (or an overdraft is granted)."""
        self._budget._reserve(self, n)

    def top_up(self, total: int) -> None:
        """Make sure at least ``total`` bytes are held."""
        if total > self.held:
            self._budget._reserve(self, total - self.held)

    def reset(self) -> None:
        """Give the bytes back but keep the place in the queue (a retry starts over)."""
        self._budget._reset(self)

    def finish(self) -> None:
        """The body is complete: the bytes are now held by a finished document."""
        self._budget._finish(self)

    def release(self) -> None:
        """Give everything back and leave (idempotent)."""
        self._budget._release(self)


class ByteBudget:
    """Cap on response bytes held in memory across all worker threads."""

    def __init__(self, cap: int, *, stall_grace: float = 0.25) -> None:
        if cap < 1:
            raise ValueError(f"byte budget must be positive, got {cap}")
        self.cap = cap
        self.stall_grace = stall_grace
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._open: dict[int, Reservation] = {}  # insertion order = age
        self._in_use = 0
        self._peak = 0
        self._overdrafts = 0
        self._last_release = time.monotonic()
        self._over: Reservation | None = None  # a reservation of the group holding the overdraft
        self._cancelled = False

    def cancel(self) -> None:
        """Wake every waiting reservation with :class:`FetchError` (Ctrl-C); later waits
        fail at once.  Releasing still works."""
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()

    @property
    def in_use(self) -> int:
        with self._cond:
            return self._in_use

    @property
    def peak(self) -> int:
        with self._cond:
            return self._peak

    @property
    def overdrafts(self) -> int:
        with self._cond:
            return self._overdrafts

    def open(self, group: object = None) -> Reservation:
        """A new reservation; ``group`` (hashable) ties documents that are held together."""
        with self._cond:
            r = Reservation(self, next(self._seq), group)
            self._open[r.seq] = r
            return r

    # --- internals, all under the condition's lock ------------------------------------

    def _reserve(self, r: Reservation, n: int) -> None:
        if n <= 0:
            return
        with self._cond:
            if r.released:
                raise ValueError("reservation already released")
            r.waiting = True
            self._cond.notify_all()  # one more waiter may complete the "all stuck" picture
            try:
                while not self._fits(r, n):
                    if self._cancelled:
                        raise FetchError(
                            "interrupted while waiting for memory (--max-inflight-bytes)"
                        )
                    timeout = self._overdraft_wait(r)
                    if timeout == 0.0:
                        self._overdrafts += 1
                        self._over = r
                        break
                    self._cond.wait(timeout)
            finally:
                r.waiting = False
            r.held += n
            self._in_use += n
            self._peak = max(self._peak, self._in_use)

    def _fits(self, r: Reservation, n: int) -> bool:
        if self._over is not None and self._over.group == r.group:
            return True  # the group holding the overdraft finishes what it started
        if self._in_use + n > self.cap:
            return False
        if r.held > 0:
            return True
        # snapshots (tuple()): a Document.__del__ run by the GC may release meanwhile
        return not any(
            o.waiting and not o.complete for o in tuple(self._open.values()) if o.seq < r.seq
        )

    def _overdraft_wait(self, r: Reservation) -> float:
        """0.0: overdraft now; else how long to wait before looking again."""
        everyone = tuple(self._open.values())
        incomplete = [o for o in everyone if not o.complete]
        if incomplete[0] is not r or not all(o.waiting for o in incomplete):
            return 1.0  # someone else can still move; they notify when they do
        if self._over is not None and self._over.named:
            return 1.0  # a named group holds the overdraft and frees it when done
        finished_holders = any(o.complete and o.held for o in everyone)
        if not finished_holders:
            return 0.0
        quiet = time.monotonic() - self._last_release
        if quiet >= self.stall_grace:
            return 0.0
        return self.stall_grace - quiet

    def _reset(self, r: Reservation) -> None:
        with self._cond:
            self._in_use -= r.held
            r.held = 0
            self._last_release = time.monotonic()
            self._cond.notify_all()

    def _finish(self, r: Reservation) -> None:
        with self._cond:
            r.complete = True
            self._cond.notify_all()

    def _release(self, r: Reservation) -> None:
        with self._cond:
            if r.released:
                return
            r.released = True
            r.complete = True
            self._in_use -= r.held
            r.held = 0
            self._open.pop(r.seq, None)
            if self._over is not None and not any(
                o.group == self._over.group for o in self._open.values()
            ):
                self._over = None  # the group let go: the next stuck one may go over
            self._last_release = time.monotonic()
            self._cond.notify_all()
