"""The oracle's own wheel-name split agrees with the reference parser (``packaging``).

The oracle deliberately does not share code with etl/'s parser; this pins it against the
PEP 427 reference on the real sample tree and on awkward hand-written names.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename

from tests.support.oracle import split_wheel_name

SAMPLES = Path(__file__).resolve().parents[2] / "etl" / "sample_collection"


def _sample_filenames() -> list[str]:
    names: list[str] = []
    for path in sorted(SAMPLES.rglob("wheels.json")):
        names += [f["filename"] for f in json.loads(path.read_bytes())["files"]]
    return names


@pytest.mark.parametrize(
    "filename",
    [
        "Foo.Bar_baz-1.0-py3-none-any.whl",
        "torch-2.5.1-1abc-cp312-cp312-manylinux_2_28_x86_64.whl",
        "six-1.16.0-py2.py3-none-any.whl",
        "pkg-01.02.0rc1-0-cp311-abi3-linux_s390x.whl",
    ],
)
def test_split_matches_reference(filename: str) -> None:
    name, version, build, _tags = parse_wheel_filename(filename)
    got = split_wheel_name(filename)
    assert (got.name, got.version) == (str(name), str(version))
    assert got.build_tag == (None if not build else filename.split("-")[2])
    assert filename.endswith(f"-{got.python_tag}-{got.abi_tag}-{got.platform_tag}.whl")


def test_split_matches_reference_on_samples() -> None:
    names = _sample_filenames()
    assert len(names) > 1000
    for filename in names:
        name, version, _build, _tags = parse_wheel_filename(filename)
        got = split_wheel_name(filename)
        assert (got.name, got.version) == (str(name), str(version)), filename


@pytest.mark.parametrize("bad", ["a-1.0-py3-none.whl", "a-1-2-3-py3-none-any.whl", "a.tar.gz"])
def test_split_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError):
        split_wheel_name(bad)
