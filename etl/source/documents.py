"""Validation of the documents the source sends: no I/O here, only bytes and dicts in.

Every function raises :class:`FatalFetchError` naming the URL, the release and what is
wrong (for JSON: line and column; for text: line number or byte offset), because bad data
is fatal for its release only.  Places inside a document are named as JSON paths
(``artifacts[2].files.wheels``), so one error line is enough to find the culprit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from etl.errors import FatalFetchError
from etl.protocol import ARTIFACT_FILE_KEYS, IDENT_RE, ArtifactFileKey
from etl.source.wheelname import InvalidWheelName, split_wheel_filename
from etl.spoolformat import Drop, parse_ts

# RFC 3339 section 5.6 (``datetime.fromisoformat`` alone also takes ISO 8601 basic format,
# minute precision, ...): date, time with seconds, optional fraction, mandatory offset.
RFC3339_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
SHA256_RE = re.compile(r"[0-9A-Fa-f]{64}")
INT64_MAX = 2**63 - 1
# pip's rule for comments in requirement files: ``#`` at the start or after whitespace.
_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
_JSON_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _fail(message: str, *, url: str | None, release: str | None) -> NoReturn:
    raise FatalFetchError(message, release=release, url=url)


def _shown(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_type(value: object) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def check_identifier(
    field: str, value: object, *, release: str | None = None, url: str | None = None
) -> str:
    """``product``/``version``/``architecture``/``variant``: a security boundary."""
    if not isinstance(value, str) or not IDENT_RE.fullmatch(value):
        raise FatalFetchError(
            f"invalid {field} {_shown(value)}: must match {IDENT_RE.pattern}",
            release=release,
            url=url,
        )
    return value


def _decode(data: bytes, *, url: str, release: str | None) -> str:
    """UTF-8 → text, a leading BOM dropped; errors give the byte offset."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail(f"invalid UTF-8 at byte {exc.start}: {exc.reason}", url=url, release=release)
    return text[1:] if text.startswith("\ufeff") else text


def _loads(text: str, *, url: str, release: str | None) -> Any:
    """Strict JSON (RFC 8259): ``NaN``/``Infinity`` are refused, as Postgres does."""

    def no_constant(name: str) -> NoReturn:
        _fail(f"malformed JSON: {name} is not valid JSON", url=url, release=release)

    try:
        return json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        _fail(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            url=url,
            release=release,
        )
    except RecursionError:
        _fail("malformed JSON: nested too deeply", url=url, release=release)
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        _fail(f"malformed JSON: {exc}", url=url, release=release)


def parse_json(data: bytes, *, url: str, release: str | None = None) -> Any:
    """Decode UTF-8 JSON; errors give the byte offset (UTF-8) or line and column (JSON)."""
    return _loads(_decode(data, url=url, release=release), url=url, release=release)


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
    except ValueError as exc:
        raise FatalFetchError(
            f"{field} is not an RFC 3339 timestamp: {_shown(value)}", release=release, url=url
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


def _get(
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
        _fail(
            f"{where or 'document'} must be a JSON object, got {_json_type(obj)}",
            url=url,
            release=release,
        )
    value = obj.get(key)
    if value is None:
        if optional:
            return None
        if key not in obj:
            _fail(f"missing key {key!r}{at}", url=url, release=release)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        _fail(
            f"key {key!r}{at} must be {_JSON_NAMES[kind]}, got {_json_type(value)}",
            url=url,
            release=release,
        )
    return value


def _check_text(value: str, *, field: str, url: str, release: str | None) -> str:
    """Text that ends up in Parquet and Postgres ``text``: no NUL, control or lone surrogate."""
    for ch in value:
        if ord(ch) < 0x20 or ord(ch) == 0x7F or 0xD800 <= ord(ch) <= 0xDFFF:
            _fail(
                f"{field} {_shown(value)} contains the character U+{ord(ch):04X}",
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
        got = check_identifier(field, _get(doc, field, str, where="", **kw), **kw)
        if got != expected:
            _fail(f"{field} {got!r} does not match the expected {field} {expected!r}", **kw)
    updated_at = parse_timestamp(
        _get(doc, "updated_at", str, where="", **kw), field="updated_at", **kw
    )
    artifacts: list[ArtifactRef] = []
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(_get(doc, "artifacts", list, where="", **kw)):
        where = f"artifacts[{i}]"
        if not isinstance(item, dict):
            _fail(f"{where} must be a JSON object, got {_json_type(item)}", **kw)
        arch, variant = (
            check_identifier(f"{where}.{key}", _get(item, key, str, where=where, **kw), **kw)
            for key in ("architecture", "variant")
        )
        if (arch, variant) in seen:
            _fail(f"duplicate artifact (architecture {arch!r}, variant {variant!r})", **kw)
        seen.add((arch, variant))
        build_id = _get(item, "build_id", str, where=where, optional=True, **kw)
        if build_id is not None:
            _check_text(build_id, field=f"{where}.build_id", **kw)
        built_at_raw = _get(item, "built_at", str, where=where, optional=True, **kw)
        built_at = (
            None
            if built_at_raw is None
            else parse_timestamp(built_at_raw, field=f"{where}.built_at", **kw)
        )
        files_obj = _get(item, "files", dict, where=where, **kw)
        files: dict[ArtifactFileKey, str] = {}
        for key in ARTIFACT_FILE_KEYS:
            ref = _get(files_obj, key, str, where=f"{where}.files", **kw)
            if not ref:
                _fail(f"{where}.files.{key} is an empty URL", **kw)
            files[key] = _check_text(ref, field=f"{where}.files.{key}", **kw)
        artifacts.append(ArtifactRef(arch, variant, build_id, built_at, files))
    return ReleaseDoc(product, version, updated_at, tuple(artifacts))


# --- constraints.txt -----------------------------------------------------------------


def constraints_to_json(data: bytes, *, url: str, release: str | None = None) -> str:
    """fromager's ``constraints.txt`` → the stored JSON array text (compact).

    One ``{"name", "specifier", "marker"}`` object per requirement line, in file order;
    ``#`` comments (pip's rule: at line start or after whitespace) and blank lines dropped.

    * ``name``: PEP 503 normalized (``Flask_SQLAlchemy`` → ``flask-sqlalchemy``).
    * ``specifier``: ``str(SpecifierSet)``, i.e. packaging's normal form: clauses without
      spaces, **sorted** and comma-joined (``werkzeug>=3.1,<3.2`` → ``"<3.2,>=3.1"``);
      ``name==1.0`` → ``"==1.0"``; no specifier → ``""``.
    * ``marker``: packaging's normal form (``python_version<'3.12'`` →
      ``python_version < "3.12"``) or ``null``.
    * Extras are dropped (they do not change what a constraint pins; pip refuses them).
    * A direct-URL line (``name @ url``) is fatal: the three keys cannot hold the URL, and
      losing it silently would store a constraint that pins nothing.
    """
    text = _decode(data, url=url, release=release)
    entries: list[dict[str, str | None]] = []
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = _COMMENT_RE.sub("", raw.removesuffix("\r"), count=1).strip(" \t")
        if not line:
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            reason = str(exc).splitlines()[0] if str(exc) else "invalid"
            _fail(
                f"line {lineno}: not a valid requirement: {_shown(line, 200)} ({reason})",
                url=url,
                release=release,
            )
        if req.url is not None:
            _fail(
                f"line {lineno}: direct URL requirements are not supported in constraints: "
                f"{_shown(line, 200)}",
                url=url,
                release=release,
            )
        entries.append(
            {
                "name": canonicalize_name(req.name),
                "specifier": str(req.specifier),
                "marker": None if req.marker is None else str(req.marker),
            }
        )
    return json.dumps(entries, separators=(",", ":"), ensure_ascii=False)


# --- wheels.json ---------------------------------------------------------------------


def _drop(entry: object, where: str, *, url: str, release: str | None) -> Drop:
    kw: dict[str, Any] = {"url": url, "release": release}
    filename = _get(entry, "filename", str, where=where, **kw)
    where = f"{where} {_shown(filename)}"
    if "/" in filename or "\\" in filename:
        _fail(f"{where}: a wheel filename must not contain a path separator", **kw)
    _check_text(filename, field=f"{where}: filename", **kw)
    try:
        wheel = split_wheel_filename(filename)
    except InvalidWheelName as exc:
        _fail(f"{where}: invalid wheel filename: {exc}", **kw)
    hashes = _get(entry, "hashes", dict, where=where, **kw)
    sha256 = _get(hashes, "sha256", str, where=f"{where}.hashes", **kw)
    if not SHA256_RE.fullmatch(sha256):
        _fail(f"{where}: sha256 must be 64 hex digits, got {_shown(sha256)}", **kw)
    size = _get(entry, "size", int, where=where, **kw)
    if not 0 <= size <= INT64_MAX:
        _fail(f"{where}: size must be between 0 and {INT64_MAX}, got {size}", **kw)
    uploaded = _get(entry, "upload-time", str, where=where, optional=True, **kw)
    return Drop(
        filename=filename,
        name=wheel.name,
        version=wheel.version,
        build_tag=wheel.build_tag,
        python_tag=wheel.python_tag,
        abi_tag=wheel.abi_tag,
        platform_tag=wheel.platform_tag,
        sha256=sha256.lower(),
        size=size,
        uploaded_at=None
        if uploaded is None
        else parse_timestamp(uploaded, field=f"{where}: upload-time", **kw),
    )


def wheels_to_drops(data: bytes, *, url: str, release: str | None = None) -> tuple[Drop, ...]:
    """``wheels.json`` (PEP 691 file fields) → one :class:`Drop` per file, in document order.

    ``name`` is PEP 503 normalized, ``version`` is packaging's normal form, ``build_tag``
    and the three tags are the filename's fields as written (compressed tag sets such as
    ``py2.py3`` kept).  ``upload-time`` may be absent or ``null``; other keys are ignored.
    """
    doc = parse_json(data, url=url, release=release)
    files = _get(doc, "files", list, where="", url=url, release=release)
    drops: list[Drop] = []
    seen: set[str] = set()
    for i, entry in enumerate(files):
        drop = _drop(entry, f"files[{i}]", url=url, release=release)
        if drop.filename in seen:
            _fail(
                f"files[{i}]: duplicate wheel filename {drop.filename!r}", url=url, release=release
            )
        seen.add(drop.filename)
        drops.append(drop)
    return tuple(drops)


# --- graph.json / build-sequence-summary.json ----------------------------------------


def json_document_text(data: bytes, *, url: str, release: str | None = None, expect: type) -> str:
    """Check a JSON document (valid JSON, top level of type ``expect``) and return its text.

    The text is the original (UTF-8 decoded, a leading BOM dropped), not a re-serialisation:
    cheapest, and exactly what the source sent.  Postgres ``jsonb`` rejects some valid JSON
    that is accepted here: ``\\u0000`` and lone surrogate escapes (``\\ud800``) inside
    strings.  Those are the loader's to report (the spool file goes to ``failed/``).
    """
    text = _decode(data, url=url, release=release)
    value = _loads(text, url=url, release=release)
    if not isinstance(value, expect):
        _fail(
            f"top-level JSON must be {_JSON_NAMES.get(expect, expect.__name__)}, "
            f"got {_json_type(value)}",
            url=url,
            release=release,
        )
    return text
