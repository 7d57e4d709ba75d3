"""Decoding the source's JSON: UTF-8 (a leading BOM dropped) and strict RFC 8259.

One place for what JSON the source may send and what is refused, each error giving a
byte offset (UTF-8) or a line and column (JSON):

* ``NaN`` / ``Infinity`` are refused, as Postgres ``jsonb`` does;
* validation only (:func:`checked_text`, for the documents stored as the text the source
  sent): msgspec's decoder into ``msgspec.Raw`` checks the syntax while skipping over
  the document, building no Python objects (3x faster than orjson's ``loads`` on a bench
  graph: 118 against 337 us for 136 kB).  It accepts nothing the reference refuses
  (``tests/unit/test_jsontext.py`` checks it) except integers past jsonb's limit, which
  are looked for apart; whatever it refuses goes to :func:`loads`, which says why;
* speed: ``fast=True`` tries msgspec's decoder first (twice as fast as ``json``);
  whatever it refuses goes to the reference parser (``json``), which gives the message,
  or accepts what msgspec does not (numbers past its range, lone surrogate escapes, a
  document nested deeper than it goes).  It accepts nothing ``json`` refuses and reads the
  same values (``tests/unit/test_jsontext.py`` checks both); the one JSON library besides
  ``json`` (orjson was dropped: 5 % faster decoding, nothing measurable in an extract);
* an integer longer than Python's ``int()`` accepts (``sys.get_int_max_str_digits()``,
  4300 by default) is valid JSON that ``jsonb`` stores: it is kept as a :class:`BigInt`
  (the document's text is what gets stored), unless it is over ``jsonb``'s own limit of
  :data:`JSONB_MAX_INT_DIGITS` digits, which is refused naming that limit.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from typing import Any, NoReturn

import msgspec

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


def type_name(kind: type) -> str:
    """The JSON name of a type a value decodes to (``object``, ``array``, ...)."""
    return JSON_NAMES.get(kind, kind.__name__)


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type."""
    return type_name(type(value))


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
            return _DECODE(text)
        except (msgspec.DecodeError, RecursionError, UnicodeEncodeError):
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
        return loads(data, url=url, release=release, fast=True)  # msgspec checks the UTF-8
    return loads(decode(data, url=url, release=release), url=url, release=release)


_DECODE = msgspec.json.Decoder().decode
_SKIP = msgspec.json.Decoder(msgspec.Raw)  # checks while skipping: builds nothing
_FIRST = re.compile(r"[ \t\r\n]*([{\[])")
_CONTAINERS: dict[str, type] = {"{": dict, "[": list}
_DIGITS = frozenset(b"0123456789")
#: Every ``_STEP``-th byte: a run of ``JSONB_MAX_INT_DIGITS + 1`` digits covers two in a row.
_STEP = (JSONB_MAX_INT_DIGITS + 1) // 2


def _may_hold_a_long_integer(data: bytes) -> bool:
    """Could ``data`` hold an integer over jsonb's limit?  Only if it holds a run of that
    many digits, and such a run covers two consecutive bytes of ``data[::_STEP]``."""
    if len(data) <= JSONB_MAX_INT_DIGITS:
        return False
    sample = data[::_STEP]
    return any(a in _DIGITS and b in _DIGITS for a, b in itertools.pairwise(sample))


def checked_text(data: bytes, *, url: str, release: str | None) -> tuple[str, type]:
    """Check one UTF-8 JSON document without building it; return its text (a leading BOM
    dropped) and the type its top-level value decodes to (``dict``, ``list``, ...).  The
    same documents are accepted, with the same messages, as :func:`parse_json`."""
    text = decode(data, url=url, release=release)
    try:
        _SKIP.decode(data)
    except (msgspec.DecodeError, RecursionError):  # refused, or a BOM: the reference decides
        loads(text, url=url, release=release, fast=True)
    else:
        if _may_hold_a_long_integer(data):  # a long run of digits: integer, string, fraction?
            loads(text, url=url, release=release)
    first = _FIRST.match(text)
    if first is not None:
        return text, _CONTAINERS[first.group(1)]
    return text, type(loads(text, url=url, release=release))  # a scalar: what it decodes to
