"""One fromager output tarball (``.tar.gz``), read as a stream: documents and drops.

The tarball is never held whole and never written anywhere: :class:`~etl.source.gunzip.
GunzipReader` undoes the gzip as the bytes arrive and :mod:`tarfile` reads the plain tar
stream (mode ``r:``, forward only), member after member, in whatever order they come.
Each layer checks its own format: the gunzip layer gzip's (a body that is not gzip is
:class:`~etl.source.gunzip.NotGzipError`), the tar layer here tar's (a first header that
is no tar header: "not a tar archive").  Whether the body is gzipped at all is the
caller's to say (``gzipped``): a ``.tar.gz`` stored with ``Content-Encoding: gzip``
arrives with its gzip undone by the HTTP layer, a plain tar; nothing is guessed from the
bytes.


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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Literal, NoReturn, cast

from etl.errors import FatalFetchError
from etl.source.documents import BAD_CHAR_RE, shown
from etl.source.gunzip import GunzipReader, GzipError, NotGzipError
from etl.source.wheelname import InvalidWheelName, split_wheel_filename
from etl.source.wheels import new_drop
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
#: Bytes of a stream that is not a tar shown in the error.
HEAD_SHOWN = 16


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
    chunks: Iterable[bytes],
    *,
    doc_limit: int,
    label: str,
    release: str | None,
    reserve: Callable[[int], None] | None = None,
    gzipped: bool = True,
) -> TarballContents:
    """Read a ``.tar.gz`` streamed as ``chunks``; see the module documentation.
    ``reserve(n)`` is called before a document of ``n`` bytes is kept (the byte budget);
    ``gzipped=False``: the chunks are the tar itself (its gzip undone by HTTP)."""

    def fail(problem: str) -> NoReturn:
        raise FatalFetchError(f"{label}: {problem}", release=release)

    reader: GunzipReader | PlainReader = GunzipReader(chunks) if gzipped else PlainReader(chunks)
    fwd = ForwardReader(reader)
    got = TarballContents()
    seen_wheels: dict[str, tuple[str, int]] = {}
    opened = False  # tarfile found a tar header first: the tar format's own check
    try:
        stream = cast(IO[bytes], fwd)  # tarfile calls read, tell and seek (forward) only
        with tarfile.open(fileobj=stream, mode="r:") as tar:  # reads the first header
            opened = True
            # tarfile keeps every TarInfo it read (in ``members``, not in typeshed's
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
                    if reserve is not None:
                        reserve(member.size)
                    got.documents[key] = b"".join(fwd.pieces(member.offset_data, member.size))
                    continue
                base = name.rsplit("/", 1)[-1]
                if not base.endswith(".whl"):
                    continue
                drop = _wheel_drop(fwd, member, base, fail)
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
    except NotGzipError as exc:
        fail(f"{exc.message}, though named .tar.gz and served without Content-Encoding: gzip")
    except GzipError as exc:
        fail(f"truncated or corrupt tarball ({exc.message})")
    except (tarfile.TarError, EOFError) as exc:  # EOFError: tarfile's own, mid-member
        if not opened and isinstance(exc, tarfile.ReadError):
            what = "inside the gzip" if gzipped else "(its gzip undone by Content-Encoding)"
            fail(f"not a tar archive {what}: {_reason(exc)} (it begins {fwd.head!r})")
        fail(f"truncated or corrupt tarball ({_reason(exc)})")
    missing = [PATHS[k] for k in REQUIRED if k not in got.documents]
    if missing:
        fail(f"no {', '.join(missing)} in the tarball")
    got.compressed_bytes = reader.compressed
    got.tar_bytes = reader.decompressed
    return got


class PlainReader:
    """A tar stream that comes as it is (no gzip to undo): ``read(n)`` of at most ``n``
    bytes of ``chunks``, with :class:`~etl.source.gunzip.GunzipReader`'s counters."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._input = b""
        self.compressed = 0  # bytes received (nothing is compressed)
        self.decompressed = 0  # bytes returned

    def read(self, n: int) -> bytes:
        while not self._input:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._input = chunk
            self.compressed += len(chunk)
        out, self._input = self._input[:n], self._input[n:]
        self.decompressed += len(out)
        return out

    def drain(self) -> int:
        left = 0
        while data := self.read(READ_SIZE):
            left += len(data)
        return left


class ForwardReader:
    """The decompressed tar stream as the file :mod:`tarfile` reads in ``r:`` mode:
    ``read(n)`` (exactly ``n`` bytes but at the end), ``tell()`` and a ``seek()`` that only
    goes forward (skipping) or back by at most one block it kept.  Member data is read
    with :meth:`pieces` instead: each piece as the decompressor made it, not copied.

    (``r|`` stream mode joins and slices every read through its own buffer: three copies
    of each byte, more CPU than the gunzip itself.)"""

    def __init__(self, reader: GunzipReader | PlainReader) -> None:
        self._reader = reader
        self._pos = 0
        self.head = b""  # the stream's first bytes, to show what a non-tar begins with
        self._back = b""  # the last bytes read (for a seek back of up to one block)
        self._ahead = b""  # bytes given back by a seek backwards, read again first

    def tell(self) -> int:
        return self._pos

    def _take(self, n: int) -> bytes:
        """Up to ``n`` bytes (at least one unless at the end)."""
        if self._ahead:
            data, self._ahead = self._ahead[:n], self._ahead[n:]
        else:
            data = self._reader.read(n)
            if len(self.head) < HEAD_SHOWN:
                self.head += data[: HEAD_SHOWN - len(self.head)]
        self._pos += len(data)
        block = tarfile.BLOCKSIZE
        self._back = (self._back + data)[-block:] if len(data) < block else data[-block:]
        return data

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            raise ValueError("a tar stream is never read whole")
        parts = []
        left = n
        while left > 0:
            data = self._take(left)
            if not data:
                break
            parts.append(data)
            left -= len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0:
            raise ValueError("only absolute seeks")
        if offset < self._pos:
            back = self._pos - offset
            if back > len(self._back):  # a member's size that goes back (base-256 < 0)
                raise tarfile.ReadError(f"a header goes back {back} bytes")
            self._ahead = self._back[-back:] + self._ahead
            self._back = self._back[:-back]
            self._pos = offset
        while self._pos < offset:
            if not self._take(min(offset - self._pos, READ_SIZE)):
                raise tarfile.ReadError("unexpected end of data")
        return self._pos

    def pieces(self, offset: int, size: int) -> Iterator[bytes]:
        """``size`` bytes from ``offset`` on (ahead of here), piece by piece."""
        self.seek(offset)
        left = size
        while left > 0:
            data = self._take(min(left, READ_SIZE))
            if not data:
                raise tarfile.ReadError("unexpected end of data")
            left -= len(data)
            yield data


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _wheel_drop(
    fwd: ForwardReader,
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
    digest = hashlib.sha256()
    size = 0
    for data in fwd.pieces(member.offset_data, member.size):
        digest.update(data)
        size += len(data)
    return new_drop(base, wheel, digest.hexdigest(), size)
