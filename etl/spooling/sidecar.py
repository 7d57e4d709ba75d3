"""The error sidecar of a spool file (``<name>.error.json``): every failed attempt.

Written by :meth:`etl.spool.Spool.record_failure`, read by :meth:`etl.spool.Spool.failure`
(``status`` shows the last attempt).  One timestamp format, ``...Z``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from etl.spooling.format import format_ts


def now_ts() -> str:
    """Now, in the one timestamp format of every record and document (``...Z``)."""
    return format_ts(datetime.now(UTC))


@dataclass(frozen=True)
class Attempt:
    """One failed attempt at loading a file (an entry of its ``.error.json`` sidecar)."""

    error_class: str
    message: str
    at: str = field(default_factory=now_ts)
    command: str = "load"
    db_error: str | None = None
    sqlstate: str | None = None
    release: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attempt:
        def opt(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        return cls(
            error_class=str(data.get("error_class") or "unknown"),
            message=str(data.get("message") or ""),
            at=str(data.get("at") or ""),
            command=str(data.get("command") or "load"),
            db_error=opt("db_error"),
            sqlstate=opt("sqlstate"),
            release=opt("release"),
        )


@dataclass
class FailureRecord:
    """A file's error sidecar: every attempt, oldest first (``corrupt``: unreadable)."""

    attempts: list[Attempt]
    corrupt: bool = False

    @property
    def count(self) -> int:
        return len(self.attempts)

    @property
    def last(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def to_json(self) -> dict[str, Any]:
        attempts = [asdict(a) for a in self.attempts]
        last = attempts[-1] if attempts else None
        return {"attempts": attempts, "count": self.count, "last": last}

    @classmethod
    def from_json(cls, data: Any) -> FailureRecord:
        if not isinstance(data, dict) or not isinstance(data.get("attempts"), list):
            return cls([], corrupt=True)
        return cls([Attempt.from_json(a) for a in data["attempts"] if isinstance(a, dict)])
