"""Reading answer bodies for :class:`etl.source.transport.HttpTransport`: a document whole
(:func:`read_document`), a body as it arrives (:class:`StreamBody`, for
:meth:`~etl.source.transport.HttpTransport.stream`), and :class:`RetrySignal`, the signal
that one attempt failed in a way worth retrying."""

from __future__ import annotations

from collections.abc import Iterator

import requests
import urllib3

from etl.crashpoint import crash_point
from etl.errors import FatalFetchError, TransientFetchError
from etl.source.budget import Reservation
from etl.source.files import CHUNK, BoundedBody
from etl.source.responses import content_length, reason_of
from etl.source.stats import Counters

#: Chunks of a streamed body: larger than the documents' 64 KiB, so a multi-GB tarball
#: costs fewer Python-level reads.
STREAM_CHUNK = 256 * 1024


class RetrySignal(TransientFetchError):
    """One attempt failed in a way worth retrying (never leaves the transport: it becomes
    a retry, or a :class:`TransientFetchError` with the URL redacted)."""

    def __init__(self, reason: str, url: str, retry_after: float | None = None) -> None:
        super().__init__(reason, url=url)
        self.reason = reason
        self.target = url
        self.retry_after = retry_after


class StreamBody:
    """One answer's body as it arrives (:meth:`HttpTransport.stream`): its headers, where
    it was read (``shown``: secrets removed) and :meth:`chunks`.  A connection broken
    mid-body, a read timeout or a body shorter than its ``Content-Length`` raise the
    transport's retry signal: the whole answer is then fetched again."""

    def __init__(self, resp: requests.Response, url: str, shown: str, counters: Counters) -> None:
        self.headers = resp.headers
        self.url = url
        self.shown = shown
        self._resp = resp
        self._counters = counters

    def chunks(self) -> Iterator[bytes]:
        """The body, chunk by chunk (urllib3's ``read`` directly: ``iter_content``'s
        generator costs about 40 % more CPU per byte, measured on a 139 MB tarball)."""
        got = 0
        raw = self._resp.raw
        try:
            while chunk := raw.read(STREAM_CHUNK, decode_content=True):
                got += len(chunk)
                self._counters.add("bytes", len(chunk))
                yield chunk
                if got == len(chunk):
                    crash_point("extract-mid-download")
        except urllib3.exceptions.DecodeError as exc:
            raise FatalFetchError(
                f"cannot decode the body: {reason_of(exc)}", url=self.shown
            ) from exc
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise RetrySignal(
                f"body stalled after {got} bytes: {reason_of(exc)}", self.url
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # reset, short body, TLS
            raise RetrySignal(
                f"connection broken after receiving {got} body bytes: {reason_of(exc)}", self.url
            ) from exc

    def read_all(self, limit: int, release: str | None) -> bytes:
        """The whole body, refused past ``limit`` bytes (a listing page, not a tarball)."""
        _refuse_length(self.headers, limit, self.shown, release)
        body = BoundedBody(None, limit=limit, shown=self.shown, release=release)
        for chunk in self.chunks():
            body.keep(chunk)
        return body.data()


def _refuse_length(
    headers: requests.structures.CaseInsensitiveDict[str], limit: int, shown: str,
    release: str | None,
) -> int | None:  # fmt: skip
    """The body's ``Content-Length`` (None when absent); over ``limit`` it is refused
    before a byte is read."""
    length = content_length(headers.get("Content-Length"))
    if length is not None and length > limit:
        raise FatalFetchError(
            f"file is {length} bytes (Content-Length), over the {limit}-byte limit; not downloaded",
            url=shown,
            release=release,
        )
    return length


def read_document(
    resp: requests.Response,
    res: Reservation,
    url: str,
    release: str | None,
    *,
    limit: int,
    shown: str,
    read_timeout: float,
    counters: Counters,
) -> bytes:
    """A document's whole body (at most ``limit`` bytes, checked on ``Content-Length``
    first), every byte reserved in the :class:`ByteBudget` before it is kept."""
    length = _refuse_length(resp.headers, limit, shown, release)
    encoding = resp.headers.get("Content-Encoding", "").strip().lower()
    identity = encoding in ("", "identity")
    if length is not None and identity:
        res.top_up(length)  # the whole body at once: an admitted stream never waits
    body = BoundedBody(res, limit=limit, shown=shown, release=release)
    try:
        for chunk in resp.iter_content(CHUNK):
            body.keep(chunk)
    except requests.exceptions.ChunkedEncodingError as exc:
        if "IncompleteRead" in repr(exc) and length is not None:
            problem = f"body shorter than its Content-Length ({body.got} of {length} bytes)"
        else:
            problem = f"connection broken after receiving {body.got} body bytes: {reason_of(exc)}"
        raise RetrySignal(problem, url) from exc
    except requests.exceptions.ContentDecodingError as exc:
        raise FatalFetchError(
            f"cannot decode the {encoding or 'encoded'} body: {reason_of(exc)}",
            url=shown,
            release=release,
        ) from exc
    except requests.exceptions.ConnectionError as exc:  # a read timeout mid-body
        raise RetrySignal(
            f"body stalled after {body.got} bytes (read timeout {read_timeout:g}s)", url
        ) from exc
    except requests.RequestException as exc:
        raise RetrySignal(
            f"reading the body failed after {body.got} bytes: {reason_of(exc)}", url
        ) from exc
    finally:
        counters.add("bytes", body.got)
    if length is not None and identity and body.got != length:
        raise RetrySignal(
            f"body shorter than its Content-Length ({body.got} of {length} bytes)", url
        )
    return body.data()
