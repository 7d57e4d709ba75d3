"""What a load run tells its caller: typed events while it runs, a report at the end, and
the clock that times each file."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from etl.db.ledger import Outcome

__all__ = ["Clock", "FileResult", "LoadEvent", "LoadEventKind", "LoadReport", "Outcome"]

LoadEventKind = Literal[
    "start", "applied", "unchanged", "superseded", "recovered", "failed", "requeued", "retry"
]


@dataclass
class LoadEvent:
    """One step of a load run, for progress output (called from worker threads)."""

    kind: LoadEventKind
    file: str = ""
    release: str = ""
    detail: str = ""
    rows: int = 0
    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    seconds: float = 0.0  # time spent on this file (outcome events)

    def __str__(self) -> str:
        text = f"{self.kind} {self.file or ''}".rstrip()
        extra = [f"{self.rows} rows"] if self.rows else []
        if self.seconds:
            extra.append(f"{self.seconds:.3f} s")
        if extra:
            text += f" ({', '.join(extra)})"
        return f"{text}: {self.detail}" if self.detail else text


@dataclass
class LoadReport:
    applied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)
    requeued: list[str] = field(default_factory=list)  # back in ready after transient errors
    #: Orphans found committed in the ledger: moved to ``loaded`` without re-applying.
    recovered: list[str] = field(default_factory=list)
    rows: int = 0  # artifact + drop rows written (applied files)
    json_bytes: int = 0  # JSON bytes of applied files
    file_bytes: int = 0  # spool bytes of applied files
    #: Seconds spent on each file that reached an outcome (also in ``load_attempts``).
    seconds: dict[str, float] = field(default_factory=dict)
    #: Why the run stopped early (the database stayed unavailable), if it did.
    error: str | None = None
    #: The spool disk filled up (a failed file could not be quarantined), if it did.
    spool_full: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.requeued and self.error is None

    def outcomes(self, outcome: Outcome) -> list[str]:
        return {
            "applied": self.applied,
            "unchanged": self.unchanged,
            "superseded": self.superseded,
            "recovered": self.recovered,
        }[outcome]


@dataclass(frozen=True)
class FileResult:
    outcome: Outcome
    rows: int = 0
    json_bytes: int = 0
    file_bytes: int = 0
    seconds: float = 0.0


class Clock:
    """When an attempt started (wall clock, for the record) and how long it has taken."""

    def __init__(self) -> None:
        self.started_at = datetime.now(UTC)
        self._t0 = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self._t0
