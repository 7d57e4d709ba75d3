"""What an extract run tells its caller: typed events while it runs, a report at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["ExtractEvent", "ExtractEventKind", "ExtractReport"]

#: What happened to a release: ``listed`` (seen in a listing page, not finished yet),
#: ``spooled`` (its file is in ``ready/``), ``unchanged`` (skipped: already spooled), or
#: ``failed`` (the detail says why).
ExtractEventKind = Literal["listed", "listing-done", "spooled", "unchanged", "failed"]


@dataclass(frozen=True)
class ExtractEvent:
    """Progress: one per release listed, and one per release finished."""

    kind: ExtractEventKind
    release: str
    detail: str = ""
    releases_known: int = 0
    releases_done: int = 0
    bytes_fetched: int = 0


@dataclass
class ExtractReport:
    spooled: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    fatal: str | None = None
    #: Ctrl-C: the run stopped early; what is listed above was complete before it did.
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and self.fatal is None and not self.interrupted
