"""fromager output tarballs, built in the test from the real files in ``samples/fromager``.

:func:`fromager_tarball` makes the ``.tar.gz`` a build pipeline attaches to a GitLab
release (``<top>/release/outputs/...``, ``<top>/release/inputs/requirements.txt``,
``<top>/wheels-repo/downloads/<wheel>.whl``, plus a log), with knobs for every bad or odd
tarball the tests need.  :func:`huge_wheel_tarball` streams one holding a wheel of any
size (zeros), never held whole: the compressed form of a MiB of zeros is computed once
and repeated.

The wheels are small stand-in bytes named after the sample's build-sequence summary (the
file names fromager really wrote); :func:`expected_wheels` gives their sha256 and size,
computed here with :mod:`hashlib` on the bytes put in, not by wheels-etl's code.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
import tarfile
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.env import REPO

SAMPLES = REPO / "samples" / "fromager"
MTIME = 1_760_000_000


@dataclass(frozen=True)
class Sample:
    """One sample folder's three documents, requirements and wheel names."""

    name: str
    graph: bytes
    constraints: bytes
    summary: bytes
    requirements: bytes
    wheel_names: tuple[str, ...]


#: the top-level requirements each sample was bootstrapped with (samples/fromager/README)
_REQUIREMENTS = {
    "flask": b"flask\n",
    "flask-variant": b"flask\n",
    "webstack": b"httpx\nrequests\nsphinx\nflask\nrich\n",
    "stevedore": b"stevedore==5.2.0\n",
}


def sample(name: str) -> Sample:
    root = SAMPLES / name
    summary = (root / "build-sequence-summary.json").read_bytes()
    names = tuple(
        sorted({Path(e["wheel_filename"]).name for e in json.loads(summary) if e["wheel_filename"]})
    )
    return Sample(
        name,
        (root / "graph.json").read_bytes(),
        (root / "constraints.txt").read_bytes(),
        summary,
        _REQUIREMENTS[name],
        names,
    )


def wheel_bytes(name: str) -> bytes:
    """Stand-in content of a wheel (deterministic, distinct per name)."""
    return hashlib.sha512(name.encode()).digest() * (50 + len(name))


def expected_wheels(names: Sequence[str]) -> dict[str, tuple[str, int]]:
    return {n: (hashlib.sha256(wheel_bytes(n)).hexdigest(), len(wheel_bytes(n))) for n in names}


@dataclass
class Layout:
    """What goes into a tarball (defaults: a good one)."""

    top: str = "wheels-build"
    omit: frozenset[str] = frozenset()  # "graph.json", "constraints.txt", ...
    requirements: bool = True
    reverse: bool = False  # members in reverse order (wheels first, documents last)
    symlink_whl: bool = False  # a symbolic link named *.whl (not a drop)
    hardlink_whl: bool = False  # a hard link named *.whl (not a drop)
    dotdot: bool = False  # a member named ../escape.whl and one /abs/absolute.whl
    extra_wheels: dict[str, bytes] = field(default_factory=dict)
    wheel_folder: str = "wheels-repo/downloads"


def _info(
    name: str, size: int = 0, kind: bytes = tarfile.REGTYPE, link: str = ""
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    info.linkname = link
    info.mtime = MTIME
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def tar_members(s: Sample, layout: Layout) -> list[tuple[tarfile.TarInfo, bytes]]:
    top = layout.top
    out: list[tuple[tarfile.TarInfo, bytes]] = [(_info(top, kind=tarfile.DIRTYPE), b"")]
    docs = {
        "graph.json": s.graph,
        "constraints.txt": s.constraints,
        "build-sequence-summary.json": s.summary,
        "build-sequence-summary.md": b"# build sequence\n",
    }
    for name, data in docs.items():
        if name not in layout.omit:
            out.append((_info(f"{top}/release/outputs/{name}", len(data)), data))
    if layout.requirements:
        out.append(
            (_info(f"{top}/release/inputs/requirements.txt", len(s.requirements)), s.requirements)
        )
    out.append((_info(f"{top}/logs/bootstrap.log", 11), b"bootstrap\n\n"))
    wheels = {n: wheel_bytes(n) for n in s.wheel_names} | layout.extra_wheels
    for name, data in wheels.items():
        out.append((_info(f"{top}/{layout.wheel_folder}/{name}", len(data)), data))
    first = s.wheel_names[0]
    if layout.symlink_whl:
        out.append(
            (
                _info(
                    f"{top}/wheels-repo/simple/link-0.1-py3-none-any.whl",
                    kind=tarfile.SYMTYPE,
                    link=f"../../downloads/{first}",
                ),
                b"",
            )
        )
    if layout.hardlink_whl:
        out.append(
            (
                _info(
                    f"{top}/wheels-repo/hard-0.1-py3-none-any.whl",
                    kind=tarfile.LNKTYPE,
                    link=f"{top}/{layout.wheel_folder}/{first}",
                ),
                b"",
            )
        )
    if layout.dotdot:
        data = wheel_bytes("escape-1.0-py3-none-any.whl")
        out.append((_info("../escape-1.0-py3-none-any.whl", len(data)), data))
        data2 = wheel_bytes("absolute-1.0-py3-none-any.whl")
        out.append((_info("/abs/absolute-1.0-py3-none-any.whl", len(data2)), data2))
    if layout.reverse:
        out.reverse()
    return out


def fromager_tarball(s: Sample, layout: Layout | None = None) -> bytes:
    """The ``.tar.gz`` of ``s`` laid out as ``layout`` says."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in tar_members(s, layout or Layout()):
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return gzip.compress(buf.getvalue(), mtime=0)


def truncated(data: bytes) -> bytes:
    """A tarball cut in the middle (served whole, with its own Content-Length)."""
    return data[: len(data) // 2]


def drops_of(s: Sample, layout: Layout | None = None) -> set[str]:
    """The wheel file names a tarball should give as drops (regular *.whl members)."""
    lay = layout or Layout()
    names = set(s.wheel_names) | set(lay.extra_wheels)
    if lay.dotdot:
        names |= {"escape-1.0-py3-none-any.whl", "absolute-1.0-py3-none-any.whl"}
    return names


# --- a tarball holding one huge wheel, streamed ------------------------------------------


def _member_bytes(info: tarfile.TarInfo, data: bytes) -> bytes:
    """One member as it sits in a tar stream: header(s), data, padding to 512 bytes."""
    return info.tobuf(tarfile.PAX_FORMAT) + data + b"\0" * (-len(data) % tarfile.BLOCKSIZE)


_MIB = 1024 * 1024
HUGE_WHEEL = "huge_wheel-1.0-py3-none-any.whl"


def huge_wheel_tarball(s: Sample, size: int) -> Iterator[bytes]:
    """A ``.tar.gz`` (gzip stream, chunk by chunk) with the sample's documents and one
    wheel of ``size`` bytes of zeros (``size`` a multiple of 1 MiB).  Built as it is
    sent: a full flush resets deflate, so one MiB of zeros compresses to the same bytes
    every time, and the CRC-32 is updated per MiB."""
    assert size % _MIB == 0
    parts = [
        _member_bytes(info, data)
        for info, data in tar_members(s, Layout(top=s.name))
        if not info.name.endswith(".whl")
    ]
    prefix = b"".join(parts)
    header = _info(f"{s.name}/wheels-repo/downloads/{HUGE_WHEEL}", size).tobuf(tarfile.PAX_FORMAT)
    end = len(prefix) + len(header) + size + 1024
    tail = b"\0" * 1024 + b"\0" * (-end % tarfile.RECORDSIZE)
    comp = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    crc = zlib.crc32(prefix + header)
    yield b"\x1f\x8b\x08\x00" + struct.pack("<I", int(time.time())) + b"\x00\xff"
    yield comp.compress(prefix + header) + comp.flush(zlib.Z_FULL_FLUSH)
    zeros = bytes(_MIB)
    block = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    zcrc = crc
    for _ in range(size // _MIB):
        zcrc = zlib.crc32(zeros, zcrc)
        yield block
    yield comp.compress(tail) + comp.flush(zlib.Z_FINISH)
    total = len(prefix) + len(header) + size + len(tail)
    yield struct.pack("<II", zlib.crc32(tail, zcrc), total & 0xFFFFFFFF)
