"""Thread-safe request counters of one source client (``SourceClient.stats``)."""

from __future__ import annotations

import threading
from typing import Literal

CounterName = Literal[
    "requests", "not_modified", "retries", "retry_wait_ms", "bytes", "redirects", "downloads"
]
COUNTER_NAMES: tuple[CounterName, ...] = (
    "requests",
    "not_modified",
    "retries",
    "retry_wait_ms",
    "bytes",
    "redirects",
    "downloads",
)


class Counters:
    """``requests`` (HTTP requests sent, redirects and retries included, plus files read),
    ``not_modified``, ``retries``, ``retry_wait_ms`` (time spent waiting to retry),
    ``bytes`` (decoded body bytes), ``redirects`` and ``downloads`` (tarballs fetched, by
    the GitLab source)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)

    def add(self, key: CounterName, n: int = 1) -> None:
        with self._lock:
            self._values[key] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)
