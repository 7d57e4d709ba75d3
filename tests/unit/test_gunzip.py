"""etl.source.gunzip: gzip undone as a stream, with each decoder wheels-etl may use."""

from __future__ import annotations

import gzip
import io
import random
import tarfile
from collections.abc import Iterator

import pytest

from etl.source import gunzip
from etl.source.gunzip import GunzipReader, GzipError, NotGzipError

DATA = random.Random(3).randbytes(300_000) + bytes(5_000_000) + b"tail" * 100
GZ = gzip.compress(DATA) + gzip.compress(b"second member") + b"\0\0\0"


@pytest.fixture(params=["zlib", "zlib_ng"])
def decoder(request: pytest.FixtureRequest) -> Iterator[str]:
    before = gunzip.current_decoder()
    gunzip.use_decoder(request.param)
    yield request.param
    gunzip.use_decoder(next(k for k, v in gunzip.DECODERS.items() if v == before))


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("chunk", [7, 1000, 65536, len(GZ)])
def test_any_chunking_gives_the_bytes_and_no_read_exceeds_its_size(
    decoder: str, chunk: int
) -> None:
    reader = GunzipReader(split(GZ, chunk))
    out = []
    while piece := reader.read(12_288):
        assert len(piece) <= 12_288  # bounded, even for 5 MB of zeros
        out.append(piece)
    assert b"".join(out) == DATA + b"second member"
    assert reader.compressed == len(GZ)


def test_a_bad_trailer_a_cut_stream_and_not_gzip_are_errors(decoder: str) -> None:
    bad = bytearray(gzip.compress(DATA))
    bad[-6] ^= 1
    with pytest.raises(GzipError, match="incorrect data check"):
        GunzipReader([bytes(bad)]).drain()
    with pytest.raises(GzipError, match="ends early"):
        GunzipReader(split(GZ[:1000], 100)).drain()
    with pytest.raises(NotGzipError, match="not a gzip stream"):
        GunzipReader([b"<html>"]).drain()
    with pytest.raises(NotGzipError, match="empty body"):
        GunzipReader([]).drain()


@pytest.mark.parametrize("chunk", [1, 300, 10_240])
def test_a_plain_tar_is_not_gzip_whatever_the_chunks(chunk: int) -> None:
    """The gunzip layer knows gzip only: a tar stream (ustar magic at byte 257) is not
    read through as if it were the decompressed data."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(tarfile.TarInfo("empty.txt"))
    assert out.getvalue()[257:262] == b"ustar"
    with pytest.raises(NotGzipError, match=r"not a gzip stream \(it begins b'empty.txt"):
        GunzipReader(split(out.getvalue(), chunk)).read(10_240)


def test_zlib_ng_is_the_default() -> None:
    """zlib-ng is a dependency (pyproject.toml): the default decoder."""
    assert gunzip.decoder_available("zlib_ng") and gunzip.decoder_available("zlib")
    assert gunzip.current_decoder() == gunzip.DECODERS["zlib_ng"]
