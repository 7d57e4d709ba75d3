"""An overall deadline per document, and cancelling every fetch at once.

A read timeout bounds each silence, not the whole answer: a server that sends one byte
every few seconds (headers or body) would otherwise hold a fetch forever, because a
buffered read of 64 KiB returns only when 64 KiB have arrived.  So each fetch runs under a
:class:`Watch`: the sockets of its attempts are attached to it (by the urllib3 connection
classes below, through a thread-local), and one :class:`Watchdog` thread per client shuts
those sockets down when the watch's deadline passes, or at once when the client is
cancelled (Ctrl-C).  A blocked read then returns or fails immediately; the transport sees
:attr:`Watch.expired` and reports the deadline, not the broken read.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = ["Watch", "Watchdog", "install"]

Expiry = Literal["deadline", "cancelled"]

_current = threading.local()


class Watch:
    """One document fetch: its deadline and the sockets its attempts use."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired: Expiry | None = None
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._done = False

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def attach(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.expired is not None:
                _shutdown(sock)
            elif not self._done:
                self._sockets.append(sock)

    def expire(self, why: Expiry) -> None:
        """Stop this fetch now: every socket it uses is shut down (idempotent)."""
        with self._lock:
            if self._done or self.expired is not None:
                return
            self.expired = why
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shutdown(sock)

    def finish(self) -> None:
        with self._lock:
            self._done = True
            self._sockets = []


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class Watchdog:
    """Expires overdue watches; :meth:`cancel` expires them all.  One thread, started on
    first use, ends with :meth:`close`."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._watches: set[Watch] = set()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.cancelled = False
        #: when the thread wakes next by itself (``None``: only when notified)
        self._wake_at: float | None = None

    @contextlib.contextmanager
    def watch(self, seconds: float) -> Iterator[Watch]:
        """Run a fetch under a new :class:`Watch` (the current one of this thread)."""
        w = Watch(seconds)
        with self._cond:
            if self.cancelled:
                w.expired = "cancelled"
            self._watches.add(w)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._run, name="fetch-watchdog", daemon=True
                )
                self._thread.start()
            # the thread wakes by itself before a later deadline passes: waking it on every
            # fetch (they all have the same timeout) would cost a thread switch per document
            if self._wake_at is None or w.at < self._wake_at:
                self._cond.notify_all()
        previous = getattr(_current, "watch", None)
        _current.watch = w
        try:
            yield w
        finally:
            _current.watch = previous
            w.finish()
            with self._cond:
                self._watches.discard(w)

    def cancel(self) -> None:
        """Expire every watch now, and every later one at birth."""
        with self._cond:
            self.cancelled = True
            watches = tuple(self._watches)
            self._cond.notify_all()
        for w in watches:
            w.expire("cancelled")

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(5)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                overdue = [w for w in self._watches if w.at <= now and w.expired is None]
                if overdue:
                    self._cond.release()
                    try:
                        for w in overdue:
                            w.expire("deadline")
                    finally:
                        self._cond.acquire()
                    continue
                pending = [w.at for w in self._watches if w.expired is None]
                self._wake_at = min(pending) if pending else None
                self._cond.wait(self._wake_at - now if self._wake_at is not None else None)
                self._wake_at = None  # awake: notify whatever comes until the next wait


# --- urllib3 connections that attach their socket to the current watch --------------------


def _attach_current(conn: HTTPConnection) -> None:
    w: Watch | None = getattr(_current, "watch", None)
    if w is not None:
        w.attach(getattr(conn, "sock", None))


class _WatchedHTTPConnection(HTTPConnection):
    def getresponse(self) -> Any:
        _attach_current(self)
        return super().getresponse()


class _WatchedHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> Any:
        _attach_current(self)
        return super().getresponse()


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def install(pool_manager: Any) -> None:
    """Make a urllib3 ``PoolManager`` use the watched connection classes."""
    pool_manager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
