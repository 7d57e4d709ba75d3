"""THE one place that says what a source's answer means: an HTTP status mapped to a body,
304, redirect, retry or failure (like the Meltano SDK's ``validate_response``), ``Retry-After``,
``Content-Length``, conditional-request validators, and the one-line reason of a requests
error.  No I/O here, so every rule is unit-tested on its own."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class Validators:
    """What a conditional request sends back (``ETag`` / ``Last-Modified``)."""

    etag: str | None = None
    last_modified: str | None = None


class Decision(enum.Enum):
    OK = "ok"
    NOT_MODIFIED = "not_modified"
    REDIRECT = "redirect"
    RETRY = "retry"
    FATAL = "fatal"


REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})


def classify_status(status: int) -> Decision:
    """The one place that maps an HTTP status to what the client does with it.

    2xx (but 206: we never ask for ranges) is a body; 304 answers a conditional request;
    301/302/303/307/308 are followed by the client itself (so it controls where the token
    goes); 429, 502, 503, 504 are transient; everything else is fatal for the release.
    """
    if 200 <= status < 300 and status != 206:
        return Decision.OK
    if status == 304:
        return Decision.NOT_MODIFIED
    if status in REDIRECT_STATUSES:
        return Decision.REDIRECT
    if status in TRANSIENT_STATUSES:
        return Decision.RETRY
    return Decision.FATAL


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date (RFC 9110 10.2.3).

    Returns ``None`` when absent or unparsable, ``0.0`` for a date in the past.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def content_length(value: str | None) -> int | None:
    """A ``Content-Length`` header as an int, ``None`` when absent or not a number."""
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


def reason_of(exc: BaseException) -> str:
    """The innermost useful message of a requests/urllib3 error, on one line."""
    inner: BaseException = exc
    for _ in range(4):
        nxt = getattr(inner, "reason", None)
        if not isinstance(nxt, BaseException) and inner.args:
            nxt = inner.args[-1] if isinstance(inner.args[-1], BaseException) else None
        if not isinstance(nxt, BaseException):
            break
        inner = nxt
    text = " ".join(str(inner).split()) or type(inner).__name__
    return text[:300]


def unchanged(conditional: Validators, current: Validators, mtime: float) -> bool:
    """Would a server answer 304?  If-None-Match wins over If-Modified-Since (RFC 9110)."""
    if conditional.etag:
        return conditional.etag.removeprefix("W/") == (current.etag or "").removeprefix("W/")
    if conditional.last_modified:
        try:
            since = parsedate_to_datetime(conditional.last_modified)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return int(mtime) <= since.timestamp()
    return False
