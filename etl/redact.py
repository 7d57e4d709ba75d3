"""THE one redactor: what may be shown of a URL, a token or a database address.

Everything a message, a log line, a spool file or the database may contain about where
data came from passes through here first:

* :func:`redact_url`: a source URL without ``user:password@``, with the values of secret
  query parameters (signed URLs, API keys: :data:`SECRET_PARAMS`) replaced by
  ``REDACTED``, and every known secret masked;
* :func:`scrub`: free text with every known secret (and its URL-quoted form) masked, and
  any ``Bearer``/``Basic`` credential after an ``Authorization`` scheme name masked;
* :func:`redact_database_url`: a libpq URI or ``key=value`` conninfo without its password
  (the user name stays: it helps and is not a secret).

Pure functions over text (no third-party imports), so every stage may use them.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "REDACTED",
    "SECRET_PARAMS",
    "redact_database_url",
    "redact_url",
    "scrub",
    "strip_userinfo",
]

#: Query parameters whose values are secrets (signed URLs, API keys): never shown.
SECRET_PARAMS: Final = frozenset(
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
#: What replaces a secret query value.
REDACTED: Final = "REDACTED"
#: What replaces a known secret inside free text.
MASK: Final = "***"

_AUTH_SCHEME_RE = re.compile(r"\b(Bearer|Basic)(\s+)[A-Za-z0-9._~+/=-]{4,}", re.IGNORECASE)


_USERINFO_RE = re.compile(r"(//)[^/?#@]*@")


def strip_userinfo(url: str) -> str:
    """The URL without ``user:password@``; everything else unchanged (never raises, even
    for a URL that does not parse, such as ``http://[::1``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO_RE.sub(r"\1", url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def redact_url(url: str, secrets: tuple[str, ...] = ()) -> str:
    """A URL safe to show: no userinfo, secret query values replaced, known secrets masked."""
    shown = strip_userinfo(url)
    try:
        parts = urlsplit(shown)
    except ValueError:  # unparsable: mask every value after "?" rather than guess
        base, sep, _query = shown.partition("?")
        return scrub(base + (sep + REDACTED if sep else ""), secrets)
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


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every secret (and its URL-quoted form) replaced by ``***``, and the
    credential after ``Bearer``/``Basic`` masked whatever it is."""
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, MASK)
        quoted = quote(secret, safe="")
        if quoted != secret:
            text = text.replace(quoted, MASK)
    return _AUTH_SCHEME_RE.sub(lambda m: f"{m[1]}{m[2]}{MASK}", text)


# --- database addresses ----------------------------------------------------------------


def redact_database_url(url: str) -> str:
    """``url`` (libpq URI or ``key=value`` conninfo) with any password removed."""
    if "://" in url:
        return _redact_uri(url)
    pairs = _conninfo_pairs(url)
    if pairs is None:  # unparsable: scrub up to the next "key=", never fail while reporting
        scrubbed = re.sub(r"\s*\bpassword\s*=.*?(?=\s+\w+\s*=|$)", "", url, flags=re.I | re.S)
        return scrubbed.strip()
    if not any(key == "password" for key, _ in pairs):
        return url
    return " ".join(text for key, text in pairs if key != "password")


def _redact_uri(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    authority_end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=-1)
    authority = rest if authority_end < 0 else rest[:authority_end]
    tail = "" if authority_end < 0 else rest[authority_end:]
    userinfo, at, hosts = authority.rpartition("@")
    if at:
        authority = f"{userinfo.partition(':')[0]}@{hosts}"
    path, qmark, query = tail.partition("?")
    if qmark:
        kept = [
            item
            for item in query.split("&")
            if unquote(item.partition("=")[0]).strip().lower() != "password"
        ]
        tail = f"{path}?{'&'.join(kept)}" if kept else path
    return f"{scheme}{sep}{authority}{tail}"


_KEY_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*")


def _conninfo_pairs(text: str) -> list[tuple[str, str]] | None:
    """libpq ``key=value`` pairs as ``(key, "key=value" as written)``; None if malformed.

    Values are unquoted up to whitespace, or single-quoted; a backslash escapes the next
    character in both (libpq's rules, ``PQconninfoParse``)."""
    pairs: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _KEY_RE.match(text, pos)
        if m is None:
            return None
        start, pos = m.start(1), m.end()
        if pos < len(text) and text[pos] == "'":
            pos += 1
            while pos < len(text) and text[pos] != "'":
                pos += 2 if text[pos] == "\\" else 1
            if pos >= len(text):
                return None  # unterminated quote
            pos += 1
            if pos < len(text) and not text[pos].isspace():
                return None  # 'a''b': not a value libpq accepts
        else:
            while pos < len(text) and not text[pos].isspace():
                pos += 2 if text[pos] == "\\" else 1
        pairs.append((m[1].lower(), text[start:pos]))
    return pairs
