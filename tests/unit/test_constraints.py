"""etl.source.constraints: the ``name==version`` fast path gives exactly packaging's answer.

The judge is packaging itself (``Requirement``), applied here line by line, never the
production function."""

from __future__ import annotations

import json

import hypothesis
import hypothesis.strategies as st
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from etl.source.constraints import constraints_to_json

URL = "https://src.example/c.txt"


def reference(text: str) -> list[dict[str, str | None]]:
    out: list[dict[str, str | None]] = []
    for raw in text.split("\n"):
        line = raw.removesuffix("\r")
        cut = [i for i, ch in enumerate(line) if ch == "#" and (i == 0 or line[i - 1] in " \t")]
        line = (line[: cut[0]] if cut else line).strip(" \t")
        if line:
            req = Requirement(line)
            out.append(
                {
                    "name": canonicalize_name(req.name),
                    "specifier": str(req.specifier),
                    "marker": None if req.marker is None else str(req.marker),
                }
            )
    return out


_name = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,10}[A-Za-z0-9])?", fullmatch=True)
_version = st.sampled_from(
    ["1", "1.0", "2.4.4", "1!2.0", "1.0rc1", "1.0a2", "1.0b3", "3.1.post2", "1.0.dev4",
     "2.5.1+cu124", "1.0+local.7", "1.0.0RC1", "01.00", "1.*", "v1.0", "1.0.post1.dev2"]
)  # fmt: skip
_space = st.sampled_from(["", " ", "\t", "  "])
_tail = st.sampled_from(["", "  # pinned", ' ; python_version < "3.12"', "\r", "[x]"])


@st.composite
def _line(draw: st.DrawFn) -> str:
    name, version = draw(_name), draw(_version)
    tail = draw(_tail)
    if tail == "[x]":
        return f"{name}[x]{draw(_space)}=={version}"
    return f"{draw(_space)}{name}{draw(_space)}=={draw(_space)}{version}{draw(_space)}{tail}"


@hypothesis.given(st.lists(_line(), max_size=6))
@hypothesis.settings(max_examples=400, deadline=None)
def test_fast_path_equals_packaging(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert json.loads(constraints_to_json(text.encode(), url=URL)) == reference(text)


def test_fromager_output_takes_the_fast_path_and_agrees() -> None:
    text = "aiohappyeyeballs==2.4.4\nFlask_SQLAlchemy==3.1.1\n# c\ntorch==2.5.1+cu124\n"
    assert json.loads(constraints_to_json(text.encode(), url=URL)) == reference(text)
