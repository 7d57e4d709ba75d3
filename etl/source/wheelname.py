"""Wheel file names: the one place that splits and checks
``{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl``.

The rules are ours, written out and tested here (``tests/unit/test_wheelname.py``), so the
same source gives the same drops whatever release of ``packaging`` is installed (its
checks of tags and names changed between releases: 26.2 accepted
``pydantic-0.18-py36+-none-any.whl``, 26.4 refuses it).  Only the version's normal form
comes from ``packaging.version`` (PEP 440, stable since packaging 22).

Rules (PEP 427 and the binary distribution format, as wheels are found in the wild):

* the name ends in ``.whl`` and has 5 fields separated by ``-``, or 6 with a build tag;
* **name**: ASCII letters, digits, ``.`` and ``_``, starting and ending with a letter or
  digit, no ``__`` (a wheel's name has ``-`` escaped as ``_``); stored PEP 503-normalised
  (``Foo.Bar_baz`` → ``foo-bar-baz``);
* **version**: a PEP 440 version (local versions ``1.0+cpu`` included), stored in its
  normal form (``1.0.0RC1`` → ``1.0.0rc1``);
* **build tag**: starts with a digit, then letters, digits, ``.`` or ``_`` (``1``,
  ``0``, ``1abc``); stored as written;
* **tags**: python, abi and platform tag, each a ``.``-separated set of one or more
  components (``py2.py3``, ``manylinux_2_17_x86_64.manylinux2014_x86_64``), each
  component letters, digits, ``_`` or ``+`` (``py36+``); stored as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from etl.errors import FatalFetchError

__all__ = ["InvalidWheelName", "WheelName", "split_wheel_filename"]

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?"
_BUILD = r"[0-9][A-Za-z0-9._]*"
_TAG = r"[A-Za-z0-9_+]+(?:\.[A-Za-z0-9_+]+)*"
_NAME_RE, _BUILD_RE, _TAG_RE = re.compile(_NAME), re.compile(_BUILD), re.compile(_TAG)
#: All the rules but the version's in one match: the fast path for a well-formed name.
_WHEEL_RE = re.compile(rf"({_NAME})-([^-]+)(?:-({_BUILD}))?-({_TAG})-({_TAG})-({_TAG})\.whl")


class InvalidWheelName(FatalFetchError):
    """Not a valid wheel file name; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class WheelName:
    #: PEP 503 normalized
    name: str
    #: PEP 440 normal form
    version: str
    #: as written ("0", "1abc"), or None
    build_tag: str | None
    #: the three tags as written (compressed tag sets such as ``py2.py3`` kept)
    python_tag: str
    abi_tag: str
    platform_tag: str


_VERSIONS: dict[str, str] = {}  # a release's wheels share a handful of versions


def _normal_version(text: str) -> str:
    found = _VERSIONS.get(text)
    if found is None:
        try:
            found = str(Version(text))
        except InvalidVersion:
            raise InvalidWheelName(f"invalid version {text!r} (not PEP 440)") from None
        if len(_VERSIONS) < 4096:
            _VERSIONS[text] = found
    return found


def split_wheel_filename(filename: str) -> WheelName:
    """The fields of a wheel file name; raises :class:`InvalidWheelName`."""
    m = _WHEEL_RE.fullmatch(filename)
    if m is not None and "__" not in m[1]:
        name, version, build_tag, python_tag, abi_tag, platform_tag = m.groups()
        return WheelName(
            canonicalize_name(name),
            _normal_version(version),
            build_tag,
            python_tag,
            abi_tag,
            platform_tag,
        )
    return _split_checking(filename)


def _split_checking(filename: str) -> WheelName:
    """:func:`split_wheel_filename` field by field, to say which field is wrong."""
    if not filename.endswith(".whl"):
        raise InvalidWheelName("the name must end in '.whl'")
    parts = filename[:-4].split("-")
    if len(parts) not in (5, 6):
        raise InvalidWheelName(
            f"{len(parts)} '-'-separated fields, expected 5 "
            "(name-version-python-abi-platform) or 6 (with a build tag)"
        )
    name = parts[0]
    if not _NAME_RE.fullmatch(name) or "__" in name:
        raise InvalidWheelName(
            f"invalid project name {name!r} (ASCII letters, digits, '.' and '_'; "
            "starting and ending with a letter or digit)"
        )
    version = _normal_version(parts[1])
    build_tag = None
    if len(parts) == 6:
        build_tag = parts[2]
        if not _BUILD_RE.fullmatch(build_tag):
            raise InvalidWheelName(f"invalid build tag {build_tag!r} (must start with a digit)")
    python_tag, abi_tag, platform_tag = parts[-3:]
    for what, tag in (("python", python_tag), ("abi", abi_tag), ("platform", platform_tag)):
        if not _TAG_RE.fullmatch(tag):
            raise InvalidWheelName(
                f"invalid {what} tag {tag!r} ('.'-separated components of letters, "
                "digits, '_' or '+')"
            )
    return WheelName(
        name=canonicalize_name(name),
        version=version,
        build_tag=build_tag,
        python_tag=python_tag,
        abi_tag=abi_tag,
        platform_tag=platform_tag,
    )
