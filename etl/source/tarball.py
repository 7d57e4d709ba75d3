"""One fromager output tarball (``.tar.gz``), read as a stream: documents and drops.

The tarball is never held whole and never written anywhere: :class:`~etl.source.gunzip.
GunzipReader` undoes the gzip as the bytes arrive and :mod:`tarfile` reads the plain tar
stream (mode ``r|``), member after member, in whatever order they come:

* the documents of :data:`DOCUMENTS` (matched by the end of the member's path, under any
  top folder) are kept, each within ``doc_limit`` bytes;
* every regular member whose name ends in ``.whl``, under any folder, becomes a drop:
  its file name (the last path part), the name, version and tags parsed from it
  (:mod:`etl.source.wheelname`), and the ``sha256`` and ``size`` of its bytes as they
  stream by (one chunk in memory at a time, whatever the wheel's size);
* directories, symbolic and hard links (even named ``*.whl``) and everything else are
  skipped.  Member paths are only compared, never used to open anything: ``..`` or an
  absolute path is harmless here.

Every problem raises :class:`FatalFetchError` with ``label`` (the tag and the asset) first.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Literal, NoReturn, cast

from etl.errors import FatalFetchError
from etl.source.documents import BAD_CHAR_RE, shown
from etl.source.gunzip import GunzipReader, GzipError
from etl.source.wheelname import InvalidWheelName, split_wheel_filename
from etl.spooling.format import Drop

DocumentKey = Literal[
    "dependency_graph", "constraints_file", "build_sequence_summary", "requirements"
]

#: path suffix inside ``<top>/`` -> the document it is
DOCUMENTS: dict[tuple[str, ...], DocumentKey] = {
    ("release", "outputs", "graph.json"): "dependency_graph",
    ("release", "outputs", "constraints.txt"): "constraints_file",
    ("release", "outputs", "build-sequence-summary.json"): "build_sequence_summary",
    ("release", "inputs", "requirements.txt"): "requirements",
}
#: The documents a tarball must hold (``requirements.txt`` may be absent).
REQUIRED: tuple[DocumentKey, ...] = (
    "dependency_graph",
    "constraints_file",
    "build_sequence_summary",
)
PATHS: dict[DocumentKey, str] = {key: "/".join(parts) for parts, key in DOCUMENTS.items()}

#: Bytes read from a member at a time (one such buffer in memory per tarball).
READ_SIZE = 1024 * 1024
#: ``tarfile``'s read size on the decompressed stream.
TAR_BUFSIZE = 256 * 1024


@dataclass
class TarballContents:
    """What one tarball gave: its documents (raw bytes) and its drops, in member order."""

    documents: dict[DocumentKey, bytes] = field(default_factory=dict)
    drops: list[Drop] = field(default_factory=list)
    members: int = 0
    compressed_bytes: int = 0
    tar_bytes: int = 0


def _document_key(name: str) -> DocumentKey | None:
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    return DOCUMENTS.get(parts[-3:])


def read_tarball(
    chunks: Iterable[bytes], *, doc_limit: int, label: str, release: str | None
) -> TarballContents:
    """Read a ``.tar.gz`` streamed as ``chunks``; see the module documentation."""

    def fail(problem: str) -> NoReturn:
        raise FatalFetchError(f"{label}: {problem}", release=release)

    reader = GunzipReader(chunks)
    got = TarballContents()
    seen_wheels: dict[str, tuple[str, int]] = {}
    try:
        stream = cast(IO[bytes], reader)  # tarfile calls read(n) only
        with tarfile.open(fileobj=stream, mode="r|", bufsize=TAR_BUFSIZE) as tar:
            # stream mode keeps every TarInfo it read (in ``members``, not in typeshed's
            # stubs): emptied as we go, so memory stays flat however many members
            kept: list[tarfile.TarInfo] = vars(tar)["members"]
            while (member := tar.next()) is not None:
                kept.clear()
                got.members += 1
                if not member.isreg():
                    continue  # directories, symbolic and hard links, devices, FIFOs
                name = member.name
                key = _document_key(name)
                if key is not None:
                    if key in got.documents:
                        fail(f"two {PATHS[key]} members (the second is {shown(name)})")
                    if member.size > doc_limit:
                        fail(
                            f"{shown(name)} is {member.size} bytes, over the {doc_limit}-byte "
                            "limit (--max-file-bytes)"
                        )
                    f = tar.extractfile(member)
                    assert f is not None  # a regular member
                    got.documents[key] = f.read()
                    continue
                base = name.rsplit("/", 1)[-1]
                if not base.endswith(".whl"):
                    continue
                drop = _wheel_drop(tar, member, base, fail)
                before = seen_wheels.get(drop.filename)
                if before is not None:
                    if before != (drop.sha256, drop.size):
                        fail(f"two different wheels named {shown(drop.filename)}")
                    continue  # the same wheel in two folders: one drop
                seen_wheels[drop.filename] = (drop.sha256, drop.size)
                got.drops.append(drop)
        # the end-of-archive blocks end the tar stream, not the gzip one: read the rest,
        # so that the gzip trailer (CRC-32 and length) is checked too
        reader.drain()
    except GzipError as exc:
        fail(f"truncated or corrupt tarball ({exc.message})")
    except (tarfile.TarError, EOFError) as exc:  # EOFError: tarfile's own, mid-member
        fail(f"truncated or corrupt tarball ({_reason(exc)})")
    missing = [PATHS[k] for k in REQUIRED if k not in got.documents]
    if missing:
        fail(f"no {', '.join(missing)} in the tarball")
    got.compressed_bytes = reader.compressed
    got.tar_bytes = reader.decompressed
    return got


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _wheel_drop(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    base: str,
    fail: Callable[[str], NoReturn],
) -> Drop:
    if BAD_CHAR_RE.search(base):
        fail(f"wheel file name {shown(base)} contains a control character")
    try:
        wheel = split_wheel_filename(base)
    except InvalidWheelName as exc:
        fail(f"invalid wheel file name {shown(base)}: {exc}")
    f = tar.extractfile(member)
    assert f is not None  # a regular member
    digest = hashlib.sha256()
    size = 0
    while data := f.read(READ_SIZE):
        digest.update(data)
        size += len(data)
    if size != member.size:
        fail(f"{shown(member.name)}: {size} of {member.size} bytes")
    return Drop(
        base,
        wheel.name,
        wheel.version,
        wheel.build_tag,
        wheel.python_tag,
        wheel.abi_tag,
        wheel.platform_tag,
        digest.hexdigest(),
        size,
        None,
        None,
        None,
        None,
    )
