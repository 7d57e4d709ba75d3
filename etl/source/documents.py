"""Validation of the documents the source sends: no I/O here, only bytes and dicts in.

Every function raises :class:`FatalFetchError` naming the URL, the release and what is
wrong (for JSON: line and column; for text: line number or byte offset), because bad data
is fatal for its release only.  Places inside a document are named as JSON paths
(``artifacts[2].files.wheels``), so one error line is enough to find the culprit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from etl.errors import FatalFetchError
from etl.protocol import ARTIFACT_FILE_KEYS, IDENT_RE, ArtifactFileKey, too_far_ahead
from etl.source.jsontext import JSON_NAMES, BigInt, checked_text, json_type, type_name
from etl.timestamps import parse_ts

# RFC 3339 section 5.6 (``datetime.fromisoformat`` alone also takes ISO 8601 basic format,
# minute precision, ...): date, time with seconds, optional fraction, mandatory offset.
RFC3339_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
SHA256_RE = re.compile(r"[0-9A-Fa-f]{64}")
INT64_MAX = 2**63 - 1


def fail(message: str, *, url: str | None, release: str | None) -> NoReturn:
    """Raise the :class:`FatalFetchError` that fails the release."""
    raise FatalFetchError(message, release=release, url=url)


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters, for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_identifier(
    field: str, value: object, *, release: str | None = None, url: str | None = None
) -> str:
    """``product``/``version``/``architecture``/``variant``: a security boundary."""
    if not isinstance(value, str) or not IDENT_RE.fullmatch(value):
        raise FatalFetchError(
            f"invalid {field} {shown(value)}: must match {IDENT_RE.pattern}",
            release=release,
            url=url,
        )
    return value


_UTC_Z_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def utc_z(value: str) -> datetime | None:
    """The common ``2026-09-30T22:41:10Z`` quickly (``None``: use :func:`parse_timestamp`)."""
    if not _UTC_Z_RE.fullmatch(value):
        return None
    try:
        return datetime.fromisoformat(value)  # "Z" reads as UTC (Python >= 3.11)
    except ValueError:
        return None


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
        if not RFC3339_RE.fullmatch(value):
            raise ValueError(value)
        return parse_ts(value)
    except (ValueError, OverflowError) as exc:  # 0001-01-01T00:00:00+14:00 is before year 1 UTC
        raise FatalFetchError(
            f"{field} is not an RFC 3339 timestamp: {shown(value)}", release=release, url=url
        ) from exc


def check_not_ahead(updated_at: datetime, *, release: str | None, url: str | None) -> None:
    """A release ``updated_at`` too far in the future fails its release
    (:data:`etl.protocol.UPDATED_AT_MAX_AHEAD`)."""
    why = too_far_ahead(updated_at, datetime.now(UTC))
    if why is not None:
        raise FatalFetchError(why, release=release, url=url)


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


def member(
    obj: object,
    key: str,
    kind: type,
    *,
    where: str,
    url: str,
    release: str | None,
    optional: bool = False,
) -> Any:
    """``obj[key]`` of JSON type ``kind``; ``where`` is the JSON path of ``obj``.

    ``optional``: an absent key or ``null`` gives ``None``.
    """
    at = f" in {where}" if where else ""
    if not isinstance(obj, dict):
        fail(
            f"{where or 'document'} must be a JSON object, got {json_type(obj)}",
            url=url,
            release=release,
        )
    value = obj.get(key)
    if value is None:
        if optional:
            return None
        if key not in obj:
            fail(f"missing key {key!r}{at}", url=url, release=release)
    if isinstance(value, BigInt) and kind is int:
        fail(
            f"key {key!r}{at} is out of range: an integer of {value.digits} digits",
            url=url,
            release=release,
        )
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        fail(
            f"key {key!r}{at} must be {JSON_NAMES[kind]}, got {json_type(value)}",
            url=url,
            release=release,
        )
    return value


BAD_CHAR_RE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def check_text(value: str, *, field: str, url: str, release: str | None) -> str:
    """Text that ends up in Parquet and Postgres ``text``: no NUL, control or lone surrogate."""
    bad = BAD_CHAR_RE.search(value)
    if bad is not None:
        fail(
            f"{field} {shown(value)} contains the character U+{ord(bad[0]):04X}",
            url=url,
            release=release,
        )
    return value


# --- release.json --------------------------------------------------------------------


@dataclass(frozen=True)
class ArtifactRef:
    """One artifact of a release, as ``release.json`` describes it."""

    architecture: str
    variant: str
    build_id: str | None
    built_at: datetime | None
    #: :data:`ARTIFACT_FILE_KEYS` → URL as written in the document (relative or absolute).
    files: dict[ArtifactFileKey, str]


@dataclass(frozen=True)
class ReleaseDoc:
    product: str
    version: str
    updated_at: datetime
    artifacts: tuple[ArtifactRef, ...]


def parse_release_doc(doc: Any, *, product: str, version: str, url: str) -> ReleaseDoc:
    """Validate a parsed ``release.json`` that was reached as ``product``/``version``.

    ``build_id`` and ``built_at`` may be absent or ``null``; the four ``files`` keys are
    required (non-empty strings); other ``files`` keys are ignored.  A release may have no
    artifacts (an empty list).
    """
    rel = f"{product}/{version}"
    kw: dict[str, Any] = {"url": url, "release": rel}
    for field, expected in (("product", product), ("version", version)):
        got = check_identifier(field, member(doc, field, str, where="", **kw), **kw)
        if got != expected:
            fail(f"{field} {got!r} does not match the expected {field} {expected!r}", **kw)
    updated_at = parse_timestamp(
        member(doc, "updated_at", str, where="", **kw), field="updated_at", **kw
    )
    check_not_ahead(updated_at, **kw)
    artifacts: list[ArtifactRef] = []
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(member(doc, "artifacts", list, where="", **kw)):
        where = f"artifacts[{i}]"
        if not isinstance(item, dict):
            fail(f"{where} must be a JSON object, got {json_type(item)}", **kw)
        arch, variant = (
            check_identifier(f"{where}.{key}", member(item, key, str, where=where, **kw), **kw)
            for key in ("architecture", "variant")
        )
        if (arch, variant) in seen:
            fail(f"duplicate artifact (architecture {arch!r}, variant {variant!r})", **kw)
        seen.add((arch, variant))
        build_id = member(item, "build_id", str, where=where, optional=True, **kw)
        if build_id is not None:
            check_text(build_id, field=f"{where}.build_id", **kw)
        built_at_raw = member(item, "built_at", str, where=where, optional=True, **kw)
        built_at = (
            None
            if built_at_raw is None
            else parse_timestamp(built_at_raw, field=f"{where}.built_at", **kw)
        )
        files_obj = member(item, "files", dict, where=where, **kw)
        files: dict[ArtifactFileKey, str] = {}
        for key in ARTIFACT_FILE_KEYS:
            ref = member(files_obj, key, str, where=f"{where}.files", **kw)
            if not ref:
                fail(f"{where}.files.{key} is an empty URL", **kw)
            files[key] = check_text(ref, field=f"{where}.files.{key}", **kw)
        artifacts.append(ArtifactRef(arch, variant, build_id, built_at, files))
    return ReleaseDoc(product, version, updated_at, tuple(artifacts))


# --- graph.json / build-sequence-summary.json ----------------------------------------


def json_document_text(data: bytes, *, url: str, release: str | None = None, expect: type) -> str:
    """Check a JSON document (valid JSON, top level of type ``expect``) and return its text.

    The text is the original (UTF-8 decoded, a leading BOM dropped), not a re-serialisation:
    cheapest, and exactly what the source sent.  Postgres ``jsonb`` rejects some valid JSON
    that is accepted here: ``\\u0000`` and lone surrogate escapes (``\\ud800``) inside
    strings.  Those are the loader's to report (the spool file goes to ``failed/``).
    """
    text, top = checked_text(data, url=url, release=release)
    if not issubclass(top, expect):
        fail(
            f"top-level JSON must be {type_name(expect)}, got {type_name(top)}",
            url=url,
            release=release,
        )
    return text
