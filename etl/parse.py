"""Pure validation of what the source sends: no I/O here, only bytes and dicts in.

Every function raises :class:`FatalFetchError` naming the URL, the release and what is
wrong (for JSON: line and column), because bad data is fatal for its release only.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from etl.errors import FatalFetchError
from etl.spoolformat import parse_ts

IDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def check_identifier(
    field: str, value: object, *, release: str | None = None, url: str | None = None
) -> str:
    """``product``/``version``/``architecture``/``variant``: a security boundary."""
    if not isinstance(value, str) or not IDENT_RE.fullmatch(value):
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        raise FatalFetchError(
            f"invalid {field} {shown}: must match {IDENT_RE.pattern}", release=release, url=url
        )
    return value


def parse_json(data: bytes, *, url: str, release: str | None = None) -> Any:
    """Decode UTF-8 JSON; errors give the byte offset (UTF-8) or line and column (JSON)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FatalFetchError(
            f"invalid UTF-8 at byte {exc.start}: {exc.reason}", release=release, url=url
        ) from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FatalFetchError(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            release=release,
            url=url,
        ) from exc


def parse_timestamp(
    value: object, *, field: str, release: str | None = None, url: str | None = None
) -> datetime:
    """An RFC 3339 timestamp with a zone → aware UTC datetime."""
    if not isinstance(value, str):
        raise FatalFetchError(
            f"{field} must be an RFC 3339 string, got {type(value).__name__}",
            release=release,
            url=url,
        )
    try:
        return parse_ts(value)
    except ValueError as exc:
        raise FatalFetchError(
            f"{field} is not an RFC 3339 timestamp: {value!r}", release=release, url=url
        ) from exc


def require(
    doc: object, key: str, kind: type | tuple[type, ...], *, url: str, release: str | None = None
) -> Any:
    """``doc[key]``, checked to be a dict member of the given type."""
    if not isinstance(doc, dict):
        raise FatalFetchError(
            f"expected a JSON object, got {type(doc).__name__}", release=release, url=url
        )
    if key not in doc:
        raise FatalFetchError(f"missing key {key!r}", release=release, url=url)
    value = doc[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise FatalFetchError(
            f"key {key!r} must be {names}, got {type(value).__name__}", release=release, url=url
        )
    return value
