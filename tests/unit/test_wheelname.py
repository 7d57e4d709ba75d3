"""etl.source.wheelname: our own wheel file-name rules (issue 9 item 6).

The expected values are written out by hand; ``packaging`` only serves as a second
opinion on generated names it accepts in every release (no ``+`` in tags)."""

from __future__ import annotations

import re

import hypothesis
import hypothesis.strategies as st
import pytest
from packaging.utils import canonicalize_name, parse_wheel_filename

from etl.source.wheelname import InvalidWheelName, WheelName, split_wheel_filename

W = WheelName


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("pydantic-0.18-py36+-none-any.whl", W("pydantic", "0.18", None, "py36+", "none", "any")),
        ("six-1.16.0-py2.py3-none-any.whl", W("six", "1.16.0", None, "py2.py3", "none", "any")),
        (
            "numpy-2.1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            W(
                "numpy",
                "2.1.0",
                None,
                "cp312",
                "cp312",
                "manylinux_2_17_x86_64.manylinux2014_x86_64",
            ),
        ),
        (
            "torch-2.5.1+cu124-cp311-cp311-linux_x86_64.whl",
            W("torch", "2.5.1+cu124", None, "cp311", "cp311", "linux_x86_64"),
        ),
        ("pkg-1.0-1-py3-none-any.whl", W("pkg", "1.0", "1", "py3", "none", "any")),
        ("pkg-1.0-0-py3-none-any.whl", W("pkg", "1.0", "0", "py3", "none", "any")),
        ("pkg-1.0-12abc-py3-none-any.whl", W("pkg", "1.0", "12abc", "py3", "none", "any")),
        (
            "pkg-1.0-1_fromager.2-py3-none-any.whl",
            W("pkg", "1.0", "1_fromager.2", "py3", "none", "any"),
        ),
        (
            "Flask_SQLAlchemy-3.1.1-py3-none-any.whl",
            W("flask-sqlalchemy", "3.1.1", None, "py3", "none", "any"),
        ),
        (
            "zope.interface-7.0-cp313-cp313t-win_amd64.whl",
            W("zope-interface", "7.0", None, "cp313", "cp313t", "win_amd64"),
        ),
        ("A-1.0.0RC1-Py3-NONE-Any.whl", W("a", "1.0.0rc1", None, "Py3", "NONE", "Any")),
        ("pkg-v1.0.post1-py3-none-any.whl", W("pkg", "1.0.post1", None, "py3", "none", "any")),
        ("pkg-1!2.0.dev3-py3-none-any.whl", W("pkg", "1!2.0.dev3", None, "py3", "none", "any")),
        (
            "x-1-cp37-cp37m-macosx_10_9_universal2.whl",
            W("x", "1", None, "cp37", "cp37m", "macosx_10_9_universal2"),
        ),
    ],
)
def test_valid_names(filename: str, expected: WheelName) -> None:
    assert split_wheel_filename(filename) == expected


@pytest.mark.parametrize(
    ("filename", "why"),
    [
        ("pkg-1.0-py3-none-any.WHL", "end in '.whl'"),
        ("pkg-1.0-py3-none-any.zip", "end in '.whl'"),
        ("pkg-1.0-py3-none.whl", "4 '-'-separated fields"),
        ("pkg-1.0-1-2-py3-none-any.whl", "7 '-'-separated fields"),
        ("pkg-1.0-x1-py3-none-any.whl", "invalid build tag 'x1'"),
        ("pkg-1.0--py3-none-any.whl", "invalid build tag ''"),
        ("pkg-not a version-py3-none-any.whl", "invalid version"),
        ("pkg-1.0.x-py3-none-any.whl", "invalid version '1.0.x'"),
        ("a__b-1.0-py3-none-any.whl", "invalid project name"),
        ("_a-1.0-py3-none-any.whl", "invalid project name"),
        ("a.-1.0-py3-none-any.whl", "invalid project name"),
        ("é-1.0-py3-none-any.whl", "invalid project name"),
        ("-1.0-py3-none-any.whl", "invalid project name ''"),
        ("pkg-1.0-py3..py2-none-any.whl", "invalid python tag"),
        ("pkg-1.0-py3.-none-any.whl", "invalid python tag"),
        ("pkg-1.0-py3-none-.whl", "invalid platform tag ''"),
        ("pkg-1.0-py3!-none-any.whl", "invalid python tag 'py3!'"),
        ("pkg-1.0-py3-no ne-any.whl", "invalid abi tag"),
    ],
)
def test_invalid_names_say_which_field(filename: str, why: str) -> None:
    with pytest.raises(InvalidWheelName) as info:
        split_wheel_filename(filename)
    assert why in str(info.value)


_alnum = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_name = st.builds(
    lambda first, mid, last: first + mid + last,
    _alnum,
    st.text("abcXYZ019._", max_size=6).filter(lambda s: "__" not in s),
    _alnum,
).filter(lambda n: "__" not in n and "_." not in n and "._" not in n)
_component = st.text("abcdefxyz0123456789_", min_size=1, max_size=8)
_tag = st.lists(_component, min_size=1, max_size=3).map(".".join)
# packaging 26.4 wants each interpreter to be a Python identifier ("py36+" is not)
_python_tag = st.lists(
    st.builds(lambda a, b: a + b, st.sampled_from("cpyj"), st.text("a0369_", max_size=5)),
    min_size=1,
    max_size=3,
).map(".".join)
_version = st.sampled_from(
    ["1", "1.0", "0.18", "2.5.1+cu124", "1.0rc1", "1!2.0", "3.1.post2", "1.0.dev4+local.7"]
)
_build = st.none() | st.builds(lambda d, rest: d + rest, st.sampled_from("0129"),
                               st.text("abc12", max_size=4))  # fmt: skip


@hypothesis.given(
    name=_name, version=_version, build=_build, tags=st.tuples(_python_tag, _tag, _tag)
)
@hypothesis.settings(max_examples=300, deadline=None)
def test_agrees_with_packaging_where_every_release_of_it_agrees(
    name: str, version: str, build: str | None, tags: tuple[str, str, str]
) -> None:
    fields = [name, version, *([build] if build is not None else []), *tags]
    filename = "-".join(fields) + ".whl"
    ours = split_wheel_filename(filename)
    ref_name, ref_version, ref_build, _ = parse_wheel_filename(filename)
    assert ours.name == canonicalize_name(ref_name)
    assert ours.version == str(ref_version)
    assert ours.build_tag == build
    if build is not None:
        digits = re.match(r"[0-9]+", build)
        assert digits is not None and ref_build == (int(digits[0]), build[digits.end() :])
    assert (ours.python_tag, ours.abi_tag, ours.platform_tag) == tags
