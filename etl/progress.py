"""Progress output: a live bar on a terminal, one plain line per item otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


class Progress:
    """``update(done, total, bytes_, label)`` redraws a bar (tty) ; ``line(text)`` logs one line.

    On a terminal the bar is redrawn at most 10 times a second on stderr and lines are
    printed above it; elsewhere (CI, pipes, files) only the lines are printed.
    """

    def __init__(self, verb: str, stream: TextIO | None = None, *, tty: bool | None = None) -> None:
        self.verb = verb
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._bar = ""

    def update(self, done: int, total: int, bytes_: int, label: str = "") -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if now - self._last_draw < 0.1 and done < total:
            return
        self._last_draw = now
        width = 28
        frac = done / total if total else 0.0
        filled = int(width * min(frac, 1.0))
        rate = bytes_ / max(now - self.started, 1e-6)
        bar = "#" * filled + "-" * (width - filled)
        self._bar = (
            f"\r{self.verb} [{bar}] {done}/{total} releases  {human_bytes(bytes_)}"
            f" ({human_bytes(rate)}/s)  {label[:40]}"
        )
        self.stream.write(self._bar + "\x1b[K")
        self.stream.flush()

    def line(self, text: str) -> None:
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
