"""etl.source.jsontext: msgspec's decoder (the fast path) accepts nothing the reference
parser refuses, reads the same values, and refused documents get the reference's message;
msgspec's skipping check (``checked_text``) accepts and refuses exactly what the reference
does, with its messages."""

from __future__ import annotations

import json

import hypothesis
import hypothesis.strategies as st
import msgspec
import pytest

from etl.errors import FatalFetchError
from etl.source.jsontext import checked_text, loads, parse_json

URL = "https://src.example/x.json"

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids, max_size=4)
    ),
    max_leaves=12,
)
# near-JSON text: valid documents with one character changed, inserted or dropped
_noise = st.sampled_from([*'{}[]",:0123456789.eE+-tfn \\u\t\n\x00\x7f', "NaN", "\ud800"])


@st.composite
def _near_json(draw: st.DrawFn) -> str:
    text: str = json.dumps(draw(_json_values))
    if not text or draw(st.booleans()):
        return text
    i = draw(st.integers(0, len(text)))
    how = draw(st.sampled_from(["insert", "replace", "drop"]))
    if how == "insert":
        noise: str = draw(_noise)
        return text[:i] + noise + text[i:]
    if how == "replace":
        noise = draw(_noise)
        return text[:i] + noise + text[i + 1 :]
    return text[:i] + text[i + 1 :]


def _reference(text: str) -> object:
    return loads(text, url=URL, release=None, fast=False)


@hypothesis.given(_near_json())
@hypothesis.settings(max_examples=1500, deadline=None)
def test_the_fast_decoder_accepts_nothing_the_reference_refuses(text: str) -> None:
    try:
        fast = msgspec.json.decode(text)
    except (msgspec.DecodeError, RecursionError, UnicodeEncodeError):  # lone surrogates
        return
    # the reference accepts it too, with the same value (integers past 64 bits included)
    assert _reference(text) == fast


@pytest.mark.parametrize(
    "data",
    [b"[NaN]", b'{"a": tru}', b"\xff[]", b"[" * 5000, b'{"a":1,}', b"[1] x"],
)
def test_a_refused_document_gets_the_reference_message(data: bytes) -> None:
    with pytest.raises(FatalFetchError) as fast:
        parse_json(data, url=URL, fast=True)
    with pytest.raises(FatalFetchError) as ref:
        parse_json(data, url=URL, fast=False)
    assert str(fast.value) == str(ref.value)


def test_what_only_the_reference_accepts_is_accepted() -> None:
    for data in (b"[1e400]", b'["\\ud800"]', b"[" + b"9" * 5000 + b"]", b"\xef\xbb\xbf[1]"):
        assert parse_json(data, url=URL, fast=True) is not None
    assert loads('["\ud800"]', url=URL, release=None, fast=True) == ["\ud800"]  # str in


@hypothesis.given(_near_json())
@hypothesis.settings(max_examples=1500, deadline=None)
def test_the_skipping_check_accepts_nothing_the_reference_refuses(text: str) -> None:
    try:
        msgspec.json.decode(text.encode("utf-8"), type=msgspec.Raw)
    except (msgspec.DecodeError, RecursionError, UnicodeEncodeError):
        return
    _reference(text)  # does not raise


def _checked(data: bytes) -> tuple[str, object]:
    """checked_text's verdict: ("ok", the top-level type) or ("error", the message)."""
    try:
        return "ok", checked_text(data, url=URL, release="p/1")[1]
    except FatalFetchError as exc:
        return "error", str(exc)


def _parsed(data: bytes) -> tuple[str, object]:
    """parse_json's verdict: accepted and refused as its fast path does (with the
    reference's messages), the type the reference reads, or the fast path's where only it
    reads the document."""
    try:
        fast = parse_json(data, url=URL, release="p/1", fast=True)
    except FatalFetchError as exc:
        return "error", str(exc)
    try:
        return "ok", type(parse_json(data, url=URL, release="p/1"))
    except FatalFetchError:
        return "ok", type(fast)


@hypothesis.given(_near_json(), st.booleans())
@hypothesis.settings(max_examples=1500, deadline=None)
def test_checked_text_decides_as_parse_json(text: str, bom: bool) -> None:
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8", "surrogatepass")
    assert _checked(data) == _parsed(data)


@pytest.mark.parametrize(
    "data",
    [
        b"[" + b"1" * 131_073 + b"]",  # over jsonb's limit: refused, naming it
        b"[" + b"1" * 131_072 + b"]",  # at the limit: kept
        b'{"a": -' + b"7" * 200_000 + b"}",
        b'["' + b"1" * 200_000 + b'"]',  # digits in a string
        b"[0." + b"1" * 200_000 + b"]",  # digits in a fraction
        b"[1e" + b"1" * 200_000 + b"]",
        b"[" + b" " * 300_000 + b"1]",
        b"[" + b"12," * 100_000 + b"1]",
        b"[NaN]",
        b"\xef\xbb\xbf[1]",
        b'["\\ud800"]',
        b"[" * 1010 + b"]" * 1010,  # deeper than msgspec goes
        b"[" * 5000,
        b"[1] x",
        b'"text"',
        b"3.5",
        b"null",
        b"",
        b'["a\x80"]',
    ],
)
def test_checked_text_decides_as_parse_json_on_the_edges(data: bytes) -> None:
    assert _checked(data) == _parsed(data)


def test_checked_text_refuses_an_integer_over_the_jsonb_limit_anywhere() -> None:
    """Wherever the long run lies against the sampled bytes."""
    for pad in (0, 1, 65_535, 65_536, 65_537, 100_000):
        data = b"[" + b" " * pad + b"9" * 131_073 + b"]"
        kind, message = _checked(data)
        assert kind == "error" and "131072-digit limit" in str(message), pad
