"""The folder source: a ``file://`` document read with the same rules as HTTP.

The same size limit, byte budget, validators (from the file's mtime and size) and errors
as :mod:`etl.source.transport`; the file must lie inside the source folder.
"""

from __future__ import annotations

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
    root = os.path.normpath(url2pathname(urlsplit(root_url).path))
    if os.path.commonpath([root, path]) != root:
        raise FatalFetchError(
            f"refusing to read outside the source directory {root}", url=shown, release=release
        )
    counters.add("requests")
    got = 0
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise FatalFetchError("not a regular file", url=shown, release=release)
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
            chunks: list[bytes] = []
            while chunk := fh.read(CHUNK):
                got += len(chunk)
                if got > limit:
                    raise FatalFetchError(
                        f"file is over the {limit}-byte limit (stopped after {got} bytes)",
                        url=shown,
                        release=release,
                    )
                res.top_up(got)
                chunks.append(chunk)
                if len(chunks) == 1:
                    crash_point("extract-mid-download")
        return shown, b"".join(chunks), validators
    except FileNotFoundError as exc:
        raise FatalFetchError("no such file", url=shown, release=release) from exc
    except OSError as exc:
        raise FatalFetchError(
            f"cannot read: {exc.strerror or exc}", url=shown, release=release
        ) from exc
    finally:
        counters.add("bytes", got)
