"""THE one backoff policy: exponential, jittered, capped, bounded in attempts and in time.

Used by the source (retrying a document) and by load (reconnecting to Postgres).  One
:class:`Backoff` is one episode of retrying; the caller asks it, after each failure, how
long to wait::

    backoff = Backoff(base=0.5, cap=30.0, budget=120.0, attempts=5)
    while True:
        try:
            return attempt()
        except Transient as exc:
            delay = backoff.next_delay(minimum=exc.retry_after)
            if delay is None:                       # backoff.gave_up says why
                raise GaveUp(...) from exc
            if sleep(delay, cancel=stop_event):     # True: cancelled while waiting
                raise Stopped(...)

Rules (in this order, for failed attempt number ``n``, 1-based):

* **attempts**: with ``attempts=N`` (attempts in all, the first one included), the
  ``N``-th failure gives up;
* **delay**: ``min(cap, base * 2 ** (n - 1))``, with *equal jitter* (uniform in
  ``[d / 2, d]``, so retries spread out but never collapse to zero) unless
  ``jitter=False``;
* **minimum**: a server's ``Retry-After`` (or any other floor) raises the delay to it;
* **time budget**: with ``budget=S`` seconds, counted from :meth:`Backoff.start` (or else
  from the first failure), a delay that would end past the budget gives up, unless
  ``clamp=True``: then the computed delay is shortened to what is left (a ``minimum`` is
  never shortened; if it does not fit, the episode gives up).

:meth:`Backoff.reset` starts a new episode (after a success).  Thread-compatible: one
instance per retrying caller.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["Backoff", "GiveUp", "exponential_delay", "sleep"]


def exponential_delay(
    attempt: int, *, base: float, cap: float, jitter: bool = True, rng: random.Random | None = None
) -> float:
    """The delay after failed attempt number ``attempt`` (1-based): ``min(cap, base * 2 **
    (attempt - 1))``, uniform in ``[ceiling / 2, ceiling]`` with ``jitter``."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    if not jitter:
        return float(ceiling)
    return float(ceiling / 2 + (rng or random).uniform(0.0, ceiling / 2))


@dataclass(frozen=True)
class GiveUp:
    """Why an episode stopped retrying."""

    reason: Literal["attempts", "budget"]
    #: failed attempts so far
    attempts: int
    #: the delay that was wanted (``reason == "budget"``)
    wanted: float
    #: the time budget in seconds (``None``: none)
    budget: float | None


class Backoff:
    """One episode of retrying; see the module docstring for the rules."""

    def __init__(
        self,
        *,
        base: float,
        cap: float,
        budget: float | None = None,
        attempts: int | None = None,
        jitter: bool = True,
        clamp: bool = False,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if base < 0 or cap < 0:
            raise ValueError("backoff base and cap must not be negative")
        self.base = base
        self.cap = cap
        self.budget = budget
        self.attempts = attempts
        self.jitter = jitter
        self.clamp = clamp
        self._rng = rng or random.Random()
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        """Forget the failures: the next one starts a new episode."""
        self.failures = 0
        self.since: float | None = None
        self.gave_up: GiveUp | None = None

    def start(self) -> None:
        """Count the time budget from now (default: from the first failure)."""
        self.since = self._clock()

    def elapsed(self) -> float:
        return 0.0 if self.since is None else self._clock() - self.since

    def next_delay(self, minimum: float | None = None) -> float | None:
        """Seconds to wait after one more failure, or ``None`` to give up
        (:attr:`gave_up` then says why)."""
        if self.since is None:
            self.start()
        self.failures += 1
        if self.attempts is not None and self.failures >= self.attempts:
            self.gave_up = GiveUp("attempts", self.failures, 0.0, self.budget)
            return None
        delay = exponential_delay(
            self.failures, base=self.base, cap=self.cap, jitter=self.jitter, rng=self._rng
        )
        floor = max(0.0, minimum) if minimum is not None else 0.0
        delay = max(delay, floor)
        if self.budget is not None:
            left = self.budget - self.elapsed()
            if self.clamp and floor <= left and left > 0:
                delay = min(delay, left)
            if delay > left or left <= 0:
                self.gave_up = GiveUp("budget", self.failures, delay, self.budget)
                return None
        return delay


def sleep(seconds: float, cancel: threading.Event | None = None) -> bool:
    """Wait ``seconds``; with ``cancel``, wake as soon as it is set.  True: cancelled."""
    if cancel is None:
        time.sleep(max(0.0, seconds))
        return False
    return cancel.wait(max(0.0, seconds))
