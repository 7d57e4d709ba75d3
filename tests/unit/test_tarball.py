"""A crafted tarball fails its release with a FatalFetchError, never an error outside the
error tree."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from etl.errors import FatalFetchError
from etl.source.tarball import read_tarball


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
