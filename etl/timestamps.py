"""Timestamps as every record, document and metadata value writes them: RFC 3339 in UTC
with a ``Z`` (``2026-10-01T12:00:00Z``).  The one place that formats and parses them
(spool metadata, sidecars, the extract memory, ``status``, the source's documents).
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_ts", "now_ts", "parse_ts"]


def format_ts(ts: datetime) -> str:
    """An aware datetime as ``...Z`` (microseconds kept when there are any)."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def now_ts() -> str:
    """Now, in the one timestamp format of every record and document (``...Z``)."""
    return format_ts(datetime.now(UTC))


def parse_ts(text: str) -> datetime:
    """RFC 3339 → aware UTC datetime (raises ValueError)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {text!r}")
    return value.astimezone(UTC)
