"""etl.source.jsontext: orjson (the fast path) accepts nothing the reference parser
refuses, reads the same values, and refused documents get the reference's message."""

from __future__ import annotations

import json

import hypothesis
import hypothesis.strategies as st
import orjson
import pytest

from etl.errors import FatalFetchError
from etl.source.jsontext import loads, parse_json

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


def _as_orjson_reads(value: object) -> object:
    """orjson reads an integer outside [-2**63, 2**64) as a float (documented in jsontext)."""
    if isinstance(value, dict):
        return {k: _as_orjson_reads(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_orjson_reads(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return float(value)
    return value


@hypothesis.given(_near_json())
@hypothesis.settings(max_examples=1500, deadline=None)
def test_orjson_accepts_nothing_the_reference_refuses(text: str) -> None:
    try:
        fast = orjson.loads(text)
    except orjson.JSONDecodeError:
        return
    # the reference accepts it too, with the same value
    assert _as_orjson_reads(_reference(text)) == fast


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
