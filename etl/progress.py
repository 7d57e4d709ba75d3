"""Progress output: a live bar on a terminal, one plain line per item otherwise.

The bar says what it counts (``releases`` or ``files``), keeps what is *listed so far*
apart from what is *done* while the total is still growing (``12 done, 40+ listed``), and
shows the elapsed time and, once the total is known, an ETA.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """``update(done, total, bytes_, label)`` redraws a bar (tty); ``line(text)`` logs one line.

    On a terminal the bar is redrawn at most 10 times a second on stderr and lines are
    printed above it; elsewhere (CI, pipes, files) only the lines are printed.  ``quiet``
    prints neither (``-q``, ``--json``).  Call :meth:`total_known` once listing has ended.
    """

    def __init__(
        self,
        verb: str,
        stream: TextIO | None = None,
        *,
        unit: str = "releases",
        tty: bool | None = None,
        quiet: bool = False,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.verb = verb
        self.unit = unit
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = (self.stream.isatty() if tty is None else tty) and not quiet
        self.timer = timer  # the seam tests use for elapsed time and the ETA
        self.started = timer()
        self.final_total = False
        self._last_draw = 0.0
        self._bar = ""

    def total_known(self) -> None:
        self.final_total = True

    def render(self, done: int, total: int, bytes_: int, now: float) -> str:
        elapsed = now - self.started
        rate = bytes_ / max(elapsed, 1e-6)
        if self.final_total and total:
            width = 24
            frac = min(done / total, 1.0)
            bar = "#" * int(width * frac) + "-" * (width - int(width * frac))
            eta = clock(elapsed / done * (total - done)) if done else "--:--"
            counts = f"[{bar}] {done}/{total} {self.unit}  eta {eta}"
        else:
            counts = f"{done} {self.unit} done, {total}+ listed"
        return (
            f"{self.verb} {counts}  {clock(elapsed)} elapsed  "
            f"{human_bytes(bytes_)} fetched ({human_bytes(rate)}/s)"
            if self.verb == "extract"
            else f"{self.verb} {counts}  {clock(elapsed)} elapsed  "
            f"{human_bytes(bytes_)} of JSON ({human_bytes(rate)}/s)"
        )

    def update(self, done: int, total: int, bytes_: int, label: str = "") -> None:
        if not self.tty:
            return
        now = self.timer()
        if now - self._last_draw < 0.1 and done < total:
            return
        self._last_draw = now
        self._bar = f"\r{self.render(done, total, bytes_, now)}  {label[:40]}"
        self.stream.write(self._bar + "\x1b[K")
        self.stream.flush()

    def line(self, text: str) -> None:
        if self.quiet:
            return
        if self.tty and self._bar:
            self.stream.write("\r\x1b[K" + text + "\n" + self._bar)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._bar:
            self.stream.write("\n")
            self.stream.flush()
            self._bar = ""
