"""Decoding the source's JSON: UTF-8 (a leading BOM dropped) and strict RFC 8259.

One place for what JSON the source may send and what is refused, each error giving a
byte offset (UTF-8) or a line and column (JSON):

* ``NaN`` / ``Infinity`` are refused, as Postgres ``jsonb`` does;
* speed: ``fast=True`` tries orjson first (several times faster than ``json``); whatever
  orjson refuses goes to the reference parser (``json``), which gives the message, or
  accepts what orjson does not (big numbers, lone surrogate escapes).  orjson accepts
  nothing ``json`` refuses (``tests/unit/test_jsontext.py`` checks it), but it reads an
  integer beyond 64 bits as a float: callers that use values (not only validate the
  document) redo a refused document with ``fast=False`` for the reference message;
* an integer longer than Python's ``int()`` accepts (``sys.get_int_max_str_digits()``,
  4300 by default) is valid JSON that ``jsonb`` stores: it is kept as a :class:`BigInt`
  (the document's text is what gets stored), unless it is over ``jsonb``'s own limit of
  :data:`JSONB_MAX_INT_DIGITS` digits, which is refused naming that limit.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import orjson

from etl.errors import FatalFetchError

#: Postgres ``numeric`` (and so ``jsonb``) holds at most 131072 digits before the point.
JSONB_MAX_INT_DIGITS = 131072


class BigInt:
    """A JSON integer too long for ``int()``, kept as written.  Where an ``int`` is
    required (a wheel's ``size``) it is out of range."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    @property
    def digits(self) -> int:
        return len(self.text.lstrip("-"))

    def __repr__(self) -> str:
        return f"<integer of {self.digits} digits>"


JSON_NAMES: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
    BigInt: "integer",
}


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type (``object``, ``array``, ...)."""
    return JSON_NAMES.get(type(value), type(value).__name__)


def _fail(message: str, *, url: str, release: str | None) -> NoReturn:
    raise FatalFetchError(message, release=release, url=url)


class _IntTooLong(FatalFetchError):
    """Raised from inside ``json.loads`` (its ``parse_int`` hook); given a URL outside."""

    def __init__(self, digits: int) -> None:
        super().__init__(f"JSON integer of {digits} digits")
        self.digits = digits


def _parse_int(text: str) -> int | BigInt:
    limit = sys.get_int_max_str_digits()
    if not limit or len(text) < limit:
        return int(text)
    digits = len(text.lstrip("-"))
    if digits > JSONB_MAX_INT_DIGITS:
        raise _IntTooLong(digits)
    return BigInt(text)


def decode(data: bytes, *, url: str, release: str | None) -> str:
    """UTF-8 → text, a leading BOM dropped; errors give the byte offset."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail(f"invalid UTF-8 at byte {exc.start}: {exc.reason}", url=url, release=release)
    return text[1:] if text.startswith("\ufeff") else text


def loads(text: str | bytes, *, url: str, release: str | None, fast: bool = False) -> Any:
    """Strict JSON (RFC 8259): ``NaN``/``Infinity`` are refused, as Postgres does.
    ``bytes`` must be UTF-8 without a BOM (see :func:`parse_json`)."""
    if fast:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # the reference parser decides, and says why
    if isinstance(text, bytes):
        text = decode(text, url=url, release=release)

    def no_constant(name: str) -> NoReturn:
        _fail(f"malformed JSON: {name} is not valid JSON", url=url, release=release)

    try:
        return json.loads(text, parse_constant=no_constant, parse_int=_parse_int)
    except _IntTooLong as exc:
        _fail(
            f"JSON integer of {exc.digits} digits is over the {JSONB_MAX_INT_DIGITS}-digit "
            "limit of Postgres jsonb",
            url=url,
            release=release,
        )
    except json.JSONDecodeError as exc:
        _fail(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            url=url,
            release=release,
        )
    except RecursionError:
        _fail("malformed JSON: nested too deeply", url=url, release=release)
    except ValueError as exc:
        _fail(f"malformed JSON: {exc}", url=url, release=release)


def parse_json(data: bytes, *, url: str, release: str | None = None, fast: bool = False) -> Any:
    """Decode UTF-8 JSON; errors give the byte offset (UTF-8) or line and column (JSON)."""
    if fast and not data.startswith(b"\xef\xbb\xbf"):
        return loads(data, url=url, release=release, fast=True)  # orjson checks the UTF-8
    return loads(decode(data, url=url, release=release), url=url, release=release)
