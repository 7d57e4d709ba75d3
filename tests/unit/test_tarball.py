"""A crafted tarball fails its release with a FatalFetchError, never an error outside the
error tree."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from etl.errors import FatalFetchError
from etl.source.tarball import read_tarball
from tests.support.tarballs import fromager_tarball, sample


def _tar_with_negative_size() -> bytes:
    """Three members; the third header's size is -4096 in GNU base-256 (checksum fixed):
    tarfile then seeks back before that header."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in ("a.txt", "b.txt", "c.txt"):
            info = tarfile.TarInfo(name)
            info.size = 3000
            tar.addfile(info, io.BytesIO(b"x" * info.size))
    raw = bytearray(out.getvalue())
    at = 2 * (512 + 3072)  # the third header
    raw[at + 124 : at + 136] = b"\xff" + ((-4096) % 256**11).to_bytes(11, "big")
    raw[at + 148 : at + 156] = b" " * 8
    raw[at + 148 : at + 156] = b"%06o\0 " % sum(raw[at : at + 512])
    return gzip.compress(bytes(raw))


def test_a_member_size_that_goes_back_is_a_corrupt_tarball() -> None:
    with pytest.raises(FatalFetchError, match=r"t\.tar\.gz: truncated or corrupt tarball"):
        read_tarball(
            [_tar_with_negative_size()], doc_limit=1 << 20, label="t.tar.gz", release="1.0"
        )


def _read(chunks: list[bytes], gzipped: bool = True) -> int:
    got = read_tarball(chunks, doc_limit=1 << 24, label="t.tar.gz", release="1.0", gzipped=gzipped)
    return len(got.drops)


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("chunk", [1, 100, 1 << 20])
def test_each_layer_checks_its_own_format_at_any_chunking(chunk: int) -> None:
    """A plain tar is read as one only when the caller says its gzip was undone (HTTP
    Content-Encoding); otherwise it is not gzip.  A gzip of something else is not a tar."""
    flask = sample("flask")
    gz = fromager_tarball(flask)
    tar = gzip.decompress(gz)
    assert _read(_split(gz, chunk)) == _read(_split(tar, chunk), gzipped=False)
    assert _read(_split(tar, chunk), gzipped=False) == len(flask.wheel_names)
    with pytest.raises(
        FatalFetchError, match=r"^release 1\.0: t\.tar\.gz: not a gzip stream \(it begins b'"
    ):
        _read(_split(tar, chunk))
    with pytest.raises(
        FatalFetchError, match=r"^release 1\.0: t\.tar\.gz: not a tar archive inside the gzip"
    ):
        _read(_split(gzip.compress(b"<html>login</html>" * 50), chunk))
    with pytest.raises(FatalFetchError, match="not a tar archive inside the gzip: empty file"):
        _read(_split(gzip.compress(b""), chunk))
    with pytest.raises(FatalFetchError, match=r"not a tar archive \(its gzip undone by Content"):
        _read(_split(gz, chunk), gzipped=False)  # gzipped twice: read once, still gzip
