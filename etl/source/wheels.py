"""``wheels.json``: an artifact's wheel files (PEP 691 file fields) → its drops.

Every error is a :class:`FatalFetchError` naming the URL, the release and the entry
(``files[3] 'name.whl'``), as :mod:`etl.source.documents` does for the other documents.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from etl.errors import FatalFetchError
from etl.source.documents import (
    BAD_CHAR_RE,
    INT64_MAX,
    SHA256_RE,
    check_text,
    fail,
    member,
    parse_timestamp,
    shown,
    utc_z,
)
from etl.source.jsontext import json_type, parse_json
from etl.source.wheelname import InvalidWheelName, WheelName, split_wheel_filename
from etl.spooling.format import Drop

#: Wheel names that passed every check of :func:`_checked_drop`, with their fields: a
#: release's artifacts share many wheels (``none-any``), and each check is then one lookup.
#: The one memo of wheel names (``split_wheel_filename`` itself keeps none).
_GOOD_NAMES: dict[str, WheelName] = {}


def _drop(entry: object, index: int, *, url: str, release: str | None) -> Drop:
    """One ``files`` entry → its :class:`Drop`.  The common entry (a wheel name already
    checked, a ``...Z`` upload time or none, ``yanked`` not a reason) takes the short way;
    anything else, and every error, goes through :func:`_checked_drop`."""
    if type(entry) is not dict:
        return _checked_drop(entry, index, url=url, release=release)
    filename = entry.get("filename")
    wheel = _GOOD_NAMES.get(filename) if type(filename) is str else None
    hashes = entry.get("hashes")
    size = entry.get("size")
    uploaded = entry.get("upload-time")
    yanked = entry.get("yanked")
    requires_python = entry.get("requires-python")
    if (
        wheel is None
        or type(hashes) is not dict
        or type(size) is not int
        or not 0 <= size <= INT64_MAX
        or type(sha256 := hashes.get("sha256")) is not str
        or not SHA256_RE.fullmatch(sha256)
        or not (yanked is None or yanked is True or yanked is False)
        or not (
            requires_python is None
            or (type(requires_python) is str and not BAD_CHAR_RE.search(requires_python))
        )
    ):
        return _checked_drop(entry, index, url=url, release=release)
    when = None
    if uploaded is not None:
        when = utc_z(uploaded) if type(uploaded) is str else None
        if when is None:
            return _checked_drop(entry, index, url=url, release=release)
    assert type(filename) is str  # it named a known-good wheel
    return new_drop(filename, wheel, sha256, size, when, yanked, None, requires_python)


def _checked_drop(entry: object, index: int, *, url: str, release: str | None) -> Drop:
    kw: dict[str, Any] = {"url": url, "release": release}
    filename = member(entry, "filename", str, where=f"files[{index}]", **kw)
    assert isinstance(entry, dict)  # member() checked it
    where = _Where(index, filename)  # the message prefix, built only when one is needed
    if "/" in filename or "\\" in filename:
        fail(f"{where}: a wheel filename must not contain a path separator", **kw)
    if BAD_CHAR_RE.search(filename):
        check_text(filename, field=f"{where}: filename", **kw)
    try:
        wheel = split_wheel_filename(filename)
    except InvalidWheelName as exc:
        fail(f"{where}: invalid wheel filename: {exc}", **kw)
    if len(_GOOD_NAMES) >= 4096:
        _GOOD_NAMES.clear()  # bounded: memory stays flat over any number of releases
    _GOOD_NAMES[filename] = wheel
    hashes = member(entry, "hashes", dict, where=str(where), **kw)
    sha256 = member(hashes, "sha256", str, where=f"{where}.hashes", **kw)
    if not SHA256_RE.fullmatch(sha256):
        fail(f"{where}: sha256 must be 64 hex digits, got {shown(sha256)}", **kw)
    size = member(entry, "size", int, where=str(where), **kw)
    if not 0 <= size <= INT64_MAX:
        fail(f"{where}: size must be between 0 and {INT64_MAX}, got {size}", **kw)
    uploaded = member(entry, "upload-time", str, where=str(where), optional=True, **kw)
    yanked: bool | None = None
    yanked_reason = requires_python = None
    if "yanked" in entry or "requires-python" in entry:
        yanked, yanked_reason = _yanked(entry, str(where), **kw)
        requires_python = member(
            entry, "requires-python", str, where=str(where), optional=True, **kw
        )
        if requires_python is not None:
            check_text(requires_python, field=f"{where}: requires-python", **kw)
    when = (
        None
        if uploaded is None
        else utc_z(uploaded) or parse_timestamp(uploaded, field=f"{where}: upload-time", **kw)
    )
    return new_drop(filename, wheel, sha256, size, when, yanked, yanked_reason, requires_python)


def new_drop(
    filename: str,
    wheel: WheelName,
    sha256: str,
    size: int,
    uploaded_at: datetime | None = None,
    yanked: bool | None = None,
    yanked_reason: str | None = None,
    requires_python: str | None = None,
) -> Drop:
    """The drop of checked fields (both paths of :func:`_drop` end here, and a GitLab
    tarball's wheels: :mod:`etl.source.tarball`)."""
    return Drop(
        filename,
        wheel.name,
        wheel.version,
        wheel.build_tag,
        wheel.python_tag,
        wheel.abi_tag,
        wheel.platform_tag,
        sha256.lower(),
        size,
        uploaded_at,
        yanked,
        yanked_reason,
        requires_python,
    )


class _Where:
    """``files[3] 'name.whl'``: where a drop is, as messages say it (built lazily)."""

    __slots__ = ("filename", "index")

    def __init__(self, index: int, filename: str) -> None:
        self.index = index
        self.filename = filename

    def __str__(self) -> str:
        return f"files[{self.index}] {shown(self.filename)}"


def _yanked(entry: Any, where: str, **kw: Any) -> tuple[bool | None, str | None]:
    """PEP 691 ``yanked``: absent/null → unknown; a boolean; or a string: yanked, with that
    reason."""
    value = entry.get("yanked")
    if value is None or isinstance(value, bool):
        return value, None
    if isinstance(value, str):
        return True, check_text(value, field=f"{where}: yanked reason", **kw)
    fail(f"{where}: 'yanked' must be a boolean or a string, got {json_type(value)}", **kw)


def wheels_to_drops(data: bytes, *, url: str, release: str | None = None) -> tuple[Drop, ...]:
    """``wheels.json`` (PEP 691 file fields) → one :class:`Drop` per file, in document order.

    ``name`` is PEP 503 normalized, ``version`` is packaging's normal form, ``build_tag``
    and the three tags are the filename's fields as written (compressed tag sets such as
    ``py2.py3`` kept).  ``upload-time``, ``yanked`` and ``requires-python`` may be absent
    or ``null``; other keys are ignored.
    """
    try:
        return _drops(parse_json(data, url=url, release=release, fast=True), url, release)
    except FatalFetchError:
        # a value refused below (e.g. a size past 64 bits): the reference parser's reading
        # gives the reference message (and the same outcome: this release fails)
        return _drops(parse_json(data, url=url, release=release), url, release)


def _drops(doc: Any, url: str, release: str | None) -> tuple[Drop, ...]:
    files = member(doc, "files", list, where="", url=url, release=release)
    drops: list[Drop] = []
    seen: set[str] = set()
    for i, entry in enumerate(files):
        drop = _drop(entry, i, url=url, release=release)
        if drop.filename in seen:
            fail(
                f"files[{i}]: duplicate wheel filename {drop.filename!r}", url=url, release=release
            )
        seen.add(drop.filename)
        drops.append(drop)
    return tuple(drops)
