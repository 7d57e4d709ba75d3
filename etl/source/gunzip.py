"""gzip undone as a stream: a file-like reader over an iterator of compressed chunks.

:mod:`tarfile`'s own ``r|gz`` mode hands each compressed read to ``decompress`` with no
bound on the output: one 10 KiB read of a highly compressible member (a wheel of zeros
compresses about 1000:1) comes back as ~10 MB at once, and the leftover is copied again
on every read.  Here every ``read(n)`` returns at most ``n`` bytes (``max_length``), so
memory stays at one chunk in and one read out whatever the data; ``tarfile`` then reads
the plain tar stream (``r|``).

Several gzip members one after the other (what ``cat a.gz b.gz`` makes) read as one
stream, as :mod:`gzip` does; zero padding after the last member is ignored.  The trailer
(CRC-32 and length) of every member is checked; a stream that ends before its last
member's trailer, a corrupt one or one that is not gzip at all raise :class:`GzipError`
(:class:`NotGzipError` when it does not begin with gzip's magic bytes).  This layer knows
gzip only: whether a body is gzipped at all is for its caller to say (see
:mod:`etl.source.tarball`), never guessed here from what the bytes might be instead.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from etl.errors import FatalFetchError

#: The first two bytes of every gzip member (RFC 1952).
GZIP_MAGIC = b"\x1f\x8b"
#: ``wbits`` for a gzip header and trailer (zlib's 16 + window bits).
GZIP_WBITS = 16 + zlib.MAX_WBITS
#: What one ``read()`` returns at most when asked for "everything".
DEFAULT_READ = 1024 * 1024


class Decompressor(Protocol):
    """The part of ``zlib.decompressobj()`` used here (``isal_zlib`` and ``zlib_ng``
    offer the same)."""

    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    @property
    def unconsumed_tail(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int = 0, /) -> bytes: ...


class GzipError(FatalFetchError):
    """The gzip stream is not gzip, is corrupt, or ends early (the caller names the
    release and the file)."""


class NotGzipError(GzipError):
    """The stream does not begin with gzip's magic bytes (``1f 8b``), or is empty."""


#: The decoders :func:`use_decoder` knows: module name -> zlib-compatible module path.
DECODERS = {"zlib": "zlib", "isal": "isal.isal_zlib", "zlib_ng": "zlib_ng.zlib_ng"}


def _default() -> Any:
    """zlib-ng when installed (a dependency: it inflates about 3x faster), else zlib."""
    try:
        return importlib.import_module(DECODERS["zlib_ng"])
    except ImportError:
        return zlib


_decoder: Any = _default()


def decoder_available(name: str) -> bool:
    """Whether the decoder ``name`` (:data:`DECODERS`) can be imported here."""
    try:
        importlib.import_module(DECODERS[name])
    except ImportError:
        return False
    return True


def current_decoder() -> str:
    """The module that decodes now (``zlib_ng.zlib_ng`` by default)."""
    return str(_decoder.__name__)


def use_decoder(name: str) -> None:
    """Decode with ``name`` from now on (the benchmark compares them; zlib by default)."""
    global _decoder
    _decoder = importlib.import_module(DECODERS[name])


def _zlib_decompressor() -> Decompressor:
    d: Decompressor = _decoder.decompressobj(GZIP_WBITS)
    return d


class GunzipReader:
    """``read(n)`` of the decompressed bytes of ``chunks`` (gzip), never more than ``n``
    (``n < 0``: at most :data:`DEFAULT_READ`)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._d = _zlib_decompressor()
        self._input = b""  # compressed bytes not yet given to the decompressor
        self._started = False  # a member has begun (its header was seen)
        self._done = False
        #: compressed bytes taken from ``chunks`` so far
        self.compressed = 0
        #: decompressed bytes returned so far
        self.decompressed = 0

    def _next_chunk(self) -> bytes | None:
        for chunk in self._chunks:
            if chunk:
                self.compressed += len(chunk)
                return chunk
        return None

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = DEFAULT_READ
        if n == 0:
            return b""
        while not self._done:
            if not self._input:
                chunk = self._next_chunk()
                if chunk is None:
                    if self._started and not self._d.eof:
                        # output zlib still holds (a copy cut short by ``max_length``)
                        out = self._d.decompress(b"", n)
                        if out:
                            self.decompressed += len(out)
                            return out
                        raise GzipError(
                            f"the gzip stream ends early (after {self.compressed} compressed "
                            "bytes, before its end-of-stream trailer)"
                        )
                    if not self._started:
                        raise NotGzipError("empty body: not a gzip stream")
                    self._done = True
                    break
                self._input = chunk
            if self._d.eof:  # between members: another one, or zero padding, or the end
                self._input = self._input.lstrip(b"\x00")
                if not self._input:
                    continue
                self._d = _zlib_decompressor()
            if not self._started and not self._input.startswith(GZIP_MAGIC[: len(self._input)]):
                raise NotGzipError(f"not a gzip stream (it begins {self._head(16)!r})")
            self._started = True
            try:
                out = self._d.decompress(self._input, n)
            except _decoder.error as exc:
                raise GzipError(f"corrupt gzip data: {exc}") from None
            self._input = self._d.unused_data if self._d.eof else self._d.unconsumed_tail
            if out:
                self.decompressed += len(out)
                return out
        return b""

    def _head(self, n: int) -> bytes:
        """The first ``n`` bytes, to show what a stream that is not gzip begins with."""
        head = self._input
        while len(head) < n and (chunk := self._next_chunk()) is not None:
            head += chunk
        return head[:n]

    def drain(self) -> int:
        """Read to the end (checking every trailer); how many bytes were left."""
        left = 0
        while data := self.read(DEFAULT_READ):
            left += len(data)
        return left
