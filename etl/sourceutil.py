"""Pure helpers of the source transport: status decisions, Retry-After, backoff, origins,
URL redaction.  No I/O here, so every rule is unit-tested on its own."""

from __future__ import annotations

import enum
import os
import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}

#: Query parameters whose values are secrets (signed URLs, API keys): never shown.
SECRET_PARAMS = frozenset(
    {
        "token",
        "access_token",
        "auth",
        "key",
        "api_key",
        "apikey",
        "password",
        "secret",
        "sig",
        "signature",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-signature",
        "x-goog-credential",
    }
)
REDACTED = "REDACTED"


@dataclass(frozen=True)
class Validators:
    """What a conditional request sends back (``ETag`` / ``Last-Modified``)."""

    etag: str | None = None
    last_modified: str | None = None


class Counters:
    """Thread-safe request counters (``SourceClient.stats``)."""

    def __init__(self, *names: str) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(names, 0)

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._values[key] = self._values.get(key, 0) + n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)


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


def backoff_delay(
    attempt: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Exponential backoff with "equal jitter" after failed attempt number ``attempt`` (1-based).

    The ceiling is ``min(cap, base * 2 ** (attempt - 1))``; the delay is uniform in
    ``[ceiling / 2, ceiling]``, so retries spread out but never collapse to zero.
    """
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    rand = (rng or random).uniform(0.0, ceiling / 2)
    return float(ceiling / 2 + rand)


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the default port filled in: the unit of trust for tokens."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, host, port if port is not None else DEFAULT_PORTS.get(scheme)


def same_origin(a: str, b: str) -> bool:
    return origin(a) == origin(b)


def strip_userinfo(url: str) -> str:
    """The URL without ``user:password@``; everything else unchanged."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def redact_url(url: str, secrets: tuple[str, ...] = ()) -> str:
    """A URL safe to show: no userinfo, secret query values replaced, known secrets masked."""
    shown = strip_userinfo(url)
    parts = urlsplit(shown)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(k.lower() in SECRET_PARAMS for k, _ in pairs):
            query = urlencode(
                [(k, REDACTED if k.lower() in SECRET_PARAMS else v) for k, v in pairs],
                quote_via=quote,
                safe="/",
            )
            shown = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
    return scrub(shown, secrets)


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret (and its URL-quoted form) replaced by ``***``."""
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, "***")
        quoted = quote(secret, safe="")
        if quoted != secret:
            text = text.replace(quoted, "***")
    return text


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


def file_validators(st: os.stat_result) -> Validators:
    """Validators of a local file: ETag from mtime (ns) and size, Last-Modified from mtime."""
    return Validators(
        etag=f'"{st.st_mtime_ns:x}-{st.st_size:x}"',
        last_modified=formatdate(st.st_mtime, usegmt=True),
    )


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
