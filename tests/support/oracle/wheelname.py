"""The oracle's own reading of a wheel filename (PEP 427), written independently of etl/.

Deliberately a different method from the production parser (which asks ``packaging`` for
the name and version and then splits on ``-``): the three tags are peeled off the right
with ``rsplit``, what remains is ``name-version`` or ``name-version-build``, and the name
is normalised with the PEP 503 rule spelled out here.  A bug shared by both readings would
have to be made twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.version import Version

_SEPARATORS = re.compile(r"[-_.]+")


@dataclass(frozen=True)
class WheelName:
    name: str  # PEP 503 normalized
    version: str  # PEP 440 normal form
    build_tag: str | None  # as written
    python_tag: str
    abi_tag: str
    platform_tag: str


def pep503(name: str) -> str:
    """PEP 503: runs of ``-``, ``_`` and ``.`` become one ``-``; lower case."""
    return _SEPARATORS.sub("-", name).lower()


def split_wheel_name(filename: str) -> WheelName:
    """``{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`` into its fields."""
    if not filename.endswith(".whl"):
        raise ValueError(f"not a wheel filename: {filename!r}")
    stem = filename[: -len(".whl")]
    head, python_tag, abi_tag, platform_tag = stem.rsplit("-", 3)
    fields = head.split("-")
    if len(fields) == 2:
        name, version = fields
        build: str | None = None
    elif len(fields) == 3:
        name, version, build = fields
    else:
        raise ValueError(f"wheel filename {filename!r} has {len(fields) + 3} dash-separated fields")
    return WheelName(
        name=pep503(name),
        version=str(Version(version)),
        build_tag=build,
        python_tag=python_tag,
        abi_tag=abi_tag,
        platform_tag=platform_tag,
    )
