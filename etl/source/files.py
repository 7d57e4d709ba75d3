"""The folder source: a ``file://`` document read with the same rules as HTTP.

The same size limit, byte budget, validators (from the file's mtime and size) and errors
as :mod:`etl.source.transport`; the file must lie inside the source folder.
"""

from __future__ import annotations

import errno
import os
import stat
from email.utils import formatdate
from urllib.parse import urlsplit
from urllib.request import url2pathname

from etl.crashpoint import crash_point
from etl.errors import FatalFetchError
from etl.source.budget import Reservation
from etl.source.responses import Validators, unchanged
from etl.source.stats import Counters

CHUNK = 64 * 1024

#: What a successful read gives back: (URL read, secrets removed), body, validators.
Fetched = tuple[str, bytes, Validators]


class BoundedBody:
    """A document's bytes as they are read, at most ``limit`` of them, every byte reserved
    in the byte budget (``res``; None for a page outside it, such as a release listing)
    before it is kept: the one loop of a local file, an HTTP document and a streamed page
    (:mod:`etl.source.streambody`).  ``got`` counts what was read."""

    def __init__(
        self, res: Reservation | None, *, limit: int, shown: str, release: str | None
    ) -> None:
        self.res, self.limit, self.shown, self.release = res, limit, shown, release
        self.got = 0
        self._chunks: list[bytes] = []

    def keep(self, chunk: bytes) -> None:
        self.got += len(chunk)
        if self.got > self.limit:
            raise FatalFetchError(
                f"file is over the {self.limit}-byte limit (stopped after {self.got} bytes)",
                url=self.shown,
                release=self.release,
            )
        if self.res is not None:
            self.res.top_up(self.got)
        self._chunks.append(chunk)
        if len(self._chunks) == 1:
            crash_point("extract-mid-download")

    def data(self) -> bytes:
        return b"".join(self._chunks)


def file_validators(st: os.stat_result) -> Validators:
    """Validators of a local file: ETag from mtime (ns) and size, Last-Modified from mtime."""
    return Validators(
        etag=f'"{st.st_mtime_ns:x}-{st.st_size:x}"',
        last_modified=formatdate(st.st_mtime, usegmt=True),
    )


def read_file(
    url: str,
    *,
    root_url: str,
    res: Reservation,
    limit: int,
    counters: Counters,
    shown: str,
    release: str | None,
    conditional: Validators | None,
) -> Fetched | None:
    """A ``file://`` document, with the same size limit, budget, validators and errors as
    HTTP; it must lie inside the source directory (``root_url``)."""
    parts = urlsplit(url)
    if parts.query:
        raise FatalFetchError("a file:// URL cannot carry a query", url=shown, release=release)
    if parts.netloc not in ("", "localhost"):
        raise FatalFetchError("file:// URL on another host", url=shown, release=release)
    path = os.path.normpath(url2pathname(parts.path))
    root = os.path.realpath(url2pathname(urlsplit(root_url).path))
    if not _inside(root, path):
        raise FatalFetchError(
            f"refusing to read outside the source directory {root}", url=shown, release=release
        )
    counters.add("requests")
    body = BoundedBody(res, limit=limit, shown=shown, release=release)
    try:
        real = _checked_real_path(path, root, shown=shown, release=release)
        # O_NONBLOCK: opening a FIFO (swapped in after the check) must not wait for a writer;
        # O_NOFOLLOW: nor may a symbolic link swapped in after the check be followed.
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise FatalFetchError(
                    f"refusing {_kind(st.st_mode)}: only regular files are read",
                    url=shown,
                    release=release,
                )
            validators = file_validators(st)
            if conditional is not None and unchanged(conditional, validators, st.st_mtime):
                counters.add("not_modified")
                return None
            if st.st_size > limit:
                raise FatalFetchError(
                    f"file is {st.st_size} bytes, over the {limit}-byte limit; not read",
                    url=shown,
                    release=release,
                )
            res.top_up(st.st_size)
            while chunk := fh.read(CHUNK):
                body.keep(chunk)
        return shown, body.data(), validators
    except FileNotFoundError as exc:
        raise FatalFetchError("no such file", url=shown, release=release) from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a link swapped in after the check
            raise FatalFetchError(
                "refusing a symbolic link that changed while being read", url=shown, release=release
            ) from exc
        raise FatalFetchError(
            f"cannot read: {exc.strerror or exc}", url=shown, release=release
        ) from exc
    finally:
        counters.add("bytes", body.got)


def _inside(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root


def _checked_real_path(path: str, root: str, *, shown: str, release: str | None) -> str:
    """``path`` with every symbolic link resolved, refused unless it stays inside ``root``
    and is a regular file (checked with ``stat`` before anything is opened)."""
    real = os.path.realpath(path)
    if not _inside(root, real):
        raise FatalFetchError(
            f"refusing {os.path.basename(path)}: it is a symbolic link (or lies under one) "
            f"that resolves to {real}, outside the source directory {root}",
            url=shown,
            release=release,
        )
    st = os.stat(real)
    if not stat.S_ISREG(st.st_mode):
        raise FatalFetchError(
            f"refusing {os.path.basename(path)}: it is {_kind(st.st_mode)}, "
            "only regular files are read",
            url=shown,
            release=release,
        )
    return real


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return name
    return "not a regular file"
