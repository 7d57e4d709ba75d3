"""Wheel file names (PEP 427 / the binary distribution format): the one place that splits
``{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`` into its fields."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.utils import InvalidWheelFilename, parse_wheel_filename


class InvalidWheelName(ValueError):
    """Not a valid wheel file name; the message says why."""


@dataclass(frozen=True)
class WheelName:
    #: PEP 503 normalized
    name: str
    #: packaging's normal form
    version: str
    #: as written ("0", "1abc"), or None
    build_tag: str | None
    #: the three tags as written (compressed tag sets such as ``py2.py3`` kept)
    python_tag: str
    abi_tag: str
    platform_tag: str


def split_wheel_filename(filename: str) -> WheelName:
    """The fields of a wheel file name; raises :class:`InvalidWheelName`."""
    try:
        name, version, _build, _tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise InvalidWheelName(str(exc)) from exc
    parts = filename[: -len(".whl")].split("-")
    python_tag, abi_tag, platform_tag = parts[-3:]
    for tag in (python_tag, abi_tag, platform_tag):
        if not all(tag.split(".")):  # older packaging versions let empty tags through
            raise InvalidWheelName(f"empty tag in {tag!r}")
    return WheelName(
        name=str(name),
        version=str(version),
        build_tag=parts[2] if len(parts) == 6 else None,
        python_tag=python_tag,
        abi_tag=abi_tag,
        platform_tag=platform_tag,
    )
