"""One S3 bucket as the spool's object store sees it (see :mod:`etl.spooling.store.s3`).

Requests go through botocore; each failure becomes the spool's error: no such key a
:class:`FileNotFoundError`, a condition that did not hold a :class:`Conflict`, refused
credentials or a missing bucket a :class:`ConfigError` (exit 2), anything else (the
endpoint unreachable, 5xx after botocore's retries) a :class:`SpoolUnavailableError`
(exit 3).  The store's clock is the ``Date`` of its last answer.  A bucket is created only
by :func:`init_bucket`.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Self
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.handlers import add_expect_header
from botocore.session import get_session
from botocore.utils import parse_timestamp

from etl.errors import ConfigError, SpoolError, SpoolUnavailableError

CALL_ATTEMPTS = 3  # pyarrow calls (botocore retries its own requests)

MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
CONFLICT = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
_NO_BUCKET = frozenset({"NoSuchBucket"})
_REFUSED = frozenset({
    "403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
    "ExpiredToken", "AuthorizationHeaderMalformed", "InvalidClientTokenId",
})  # fmt: skip


class Conflict(SpoolError):
    """A conditional request lost: the object is not in the state the condition named."""


def response_date(resp: dict[str, Any]) -> float | None:
    """The store's clock in a response (its ``Date`` header), as epoch seconds."""
    raw = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    with contextlib.suppress(TypeError, ValueError):
        return parsedate_to_datetime(raw).timestamp() if raw else None
    return None


class GuardedInput(io.RawIOBase):
    """A read-only file over an S3 object: its last bytes (the whole object when it is
    small, else its tail, which holds the Parquet footer) come from one GET, anything
    before them through pyarrow's ranged reads, opened only when first needed.  Network
    errors surface as :class:`SpoolUnavailableError`, not as an OSError Arrow would blame
    on the file."""

    def __init__(
        self, tail: bytes, size: int, open_raw: Callable[[], pa.NativeFile], where: str
    ) -> None:
        super().__init__()
        self._tail, self._size, self._start = tail, size, size - len(tail)
        self._open_raw = open_raw
        self._raw: pa.NativeFile | None = None
        self._pos = 0
        self._where = where

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except OSError as exc:
            raise SpoolUnavailableError(
                f"object store read failed: {exc}", path=self._where
            ) from exc

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        end = self._size if size is None or size < 0 else min(self._size, self._pos + size)
        if self._pos >= end:
            return b""
        if self._pos >= self._start:
            data = self._tail[self._pos - self._start : end - self._start]
        else:
            if self._raw is None:
                self._raw = self._open_raw()
            self._call(self._raw.seek, self._pos)
            data = bytes(self._call(self._raw.read, end - self._pos))
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def size(self) -> int:
        return self._size

    def close(self) -> None:
        if self._raw is not None:
            with contextlib.suppress(OSError):
                self._raw.close()
        super().close()


def _endpoint() -> str | None:
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return None
    return endpoint if "://" in endpoint else f"https://{endpoint}"


def _parse(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or "@" in parts.netloc:
        raise ConfigError("spool URL must be s3://bucket[/prefix] (credentials from AWS_*)")
    return parts.netloc, parts.path


def _client(region: str) -> Any:
    endpoint = _endpoint()
    config = Config(
        region_name=region,
        connect_timeout=5,
        read_timeout=60,
        retries={"max_attempts": 4, "mode": "standard"},  # 500 "try again" under load
        max_pool_connections=32,
        # checksums only where S3 requires them: S3-compatible servers differ on the rest
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": "path" if endpoint else "auto"},
    )
    session = get_session()
    session.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=_timestamp
    )
    try:
        client = session.create_client("s3", endpoint_url=endpoint, config=config)
    except (BotoCoreError, ValueError) as exc:
        raise ConfigError(f"cannot set up the S3 client: {exc}") from exc
    # Only small bodies go through this client (leases, JSON records; bulk data goes
    # through pyarrow): waiting for "100 Continue" before each would cost a round trip.
    client.meta.events.unregister("before-call.s3", add_expect_header)
    return client


def _timestamp(value: str) -> datetime:
    """A timestamp of a response: S3 sends ISO 8601 in bodies (listings) and RFC 7231
    dates in headers.  botocore's default parser (dateutil's, for any format) cost about
    0.1 ms a value, most of a listing's CPU time; anything else still goes to it."""
    at: datetime | None = None
    with contextlib.suppress(TypeError, ValueError):
        at = datetime.fromisoformat(value)
    if at is None:
        with contextlib.suppress(TypeError, ValueError, IndexError):
            at = parsedate_to_datetime(value)
    if at is None:
        return parse_timestamp(value)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _filesystem(region: str) -> pafs.S3FileSystem:
    kwargs: dict[str, Any] = {
        "region": region,
        "allow_bucket_creation": False,  # only `wheels-etl spool init` creates a bucket
        "background_writes": False,  # one part in memory at a time: memory stays flat
        "connect_timeout": 5,
        "request_timeout": 60,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=4),
    }
    endpoint = _endpoint()
    if endpoint:
        ep = urlsplit(endpoint)
        kwargs["endpoint_override"] = ep.netloc
        kwargs["scheme"] = ep.scheme
    try:
        return pafs.S3FileSystem(**kwargs)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise ConfigError(f"cannot set up the S3 client: {exc}") from exc


def init_bucket(url: str) -> bool:
    """Create the spool's bucket if it does not exist; True when it was created.  The one
    place a bucket is ever created (``wheels-etl spool init``)."""
    bucket, _ = _parse(url)
    region = os.environ.get("AWS_REGION") or "us-east-1"
    store = Bucket(_client(region), None, bucket, "")
    try:
        store.request("cannot reach bucket", None, "head_bucket")
        return False
    except ConfigError:
        pass  # missing (or refused: create_bucket says which)
    extra: dict[str, Any] = {}
    if region != "us-east-1" and _endpoint() is None:
        extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
    store.request("cannot create bucket", None, "create_bucket", **extra)
    return True


class Bucket:
    """One bucket and prefix through botocore (and pyarrow.fs for bulk data): requests,
    their errors as the spool's, the request count and the store's clock."""

    def __init__(
        self,
        client: Any,
        fs: pafs.S3FileSystem | None,
        bucket: str,
        prefix: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock``: this process's wall clock, only ever written into lease bodies for
        people to read; no decision uses it (leases and ages are judged on the store's)."""
        self.client = client
        self._fs = fs
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.root = f"{bucket}/{self.prefix}" if self.prefix else bucket
        self.clock = clock
        self._seen: tuple[float, float] | None = None  # (store's Date, monotonic then)
        self._counted = threading.Lock()
        self.requests = 0  # HTTP requests sent by the botocore client (retries included)
        client.meta.events.register("before-send.s3", self._count)

    def _count(self, **_: Any) -> None:
        with self._counted:
            self.requests += 1

    @classmethod
    def from_url(cls, url: str, *, clock: Callable[[], float] = time.time) -> Self:
        """Open an existing bucket (a missing one is a :class:`ConfigError`: see
        :func:`init_bucket`); credentials refused are a ConfigError too, an unreachable
        endpoint a :class:`SpoolUnavailableError`."""
        bucket, prefix = _parse(url)
        region = os.environ.get("AWS_REGION") or "us-east-1"
        store = cls(_client(region), None, bucket, prefix, clock=clock)
        store.request("cannot reach bucket", None, "head_bucket")
        return store

    @property
    def fs(self) -> pafs.S3FileSystem:
        """pyarrow's S3 filesystem, made on first use (a load of usual files never needs
        it: its start-up is saved)."""
        with self._counted:
            if self._fs is None:
                self._fs = _filesystem(os.environ.get("AWS_REGION") or "us-east-1")
            return self._fs

    @property
    def location(self) -> str:
        return f"s3://{self.root}"

    def path(self, folder: str, name: str) -> str:
        """The object's path for pyarrow (``bucket/prefix/folder/name``)."""
        return f"{self.root}/{folder}/{name}"

    def key(self, folder: str, name: str) -> str:
        """The object's key in the bucket (``prefix/folder/name``)."""
        return f"{self.prefix}/{folder}/{name}" if self.prefix else f"{folder}/{name}"

    def unavailable(self, exc: Exception, name: str | None, what: str) -> SpoolError:
        """The store did not answer about the object ``name`` (a spool file, its lease or
        sidecar: the message names it as the file), or, with None, about the bucket
        itself or a listing (the message names the bucket as the bucket)."""
        return SpoolUnavailableError(f"{what} in {self.location}: {exc}", path=name)

    def space_hint(self) -> str:
        return "object storage quota"

    # --- requests ----------------------------------------------------------------------

    def request(self, what: str, name: str | None, op: str, **kwargs: Any) -> dict[str, Any]:
        """One botocore call on the bucket, about the object ``name`` (None: the bucket or a
        listing, see :meth:`unavailable`).  Raises FileNotFoundError (no such key),
        :class:`Conflict` (a condition did not hold), :class:`ConfigError` (credentials
        refused, no such bucket) or :class:`SpoolUnavailableError` (anything else)."""
        try:
            resp: dict[str, Any] = getattr(self.client, op)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            self._saw(exc.response)  # type: ignore[arg-type]
            raise self._error(exc, what, name, op.endswith("_bucket")) from exc
        except NoCredentialsError as exc:
            raise ConfigError(
                f"no credentials for {self.location}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY"
            ) from exc
        except BotoCoreError as exc:
            raise self.unavailable(exc, name, what) from exc
        self._saw(resp)
        return resp

    def _error(self, exc: ClientError, what: str, name: str | None, on_bucket: bool) -> Exception:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code in CONFLICT or status in ("409", "412"):
            return Conflict(f"{what}: {code or status} (a condition did not hold)", path=name)
        if code in _NO_BUCKET or (status == "404" and on_bucket):
            return ConfigError(
                f"bucket {self.bucket!r} does not exist (create it with "
                f"`wheels-etl spool init --spool {self.location}`)"
            )
        if code in MISSING or status == "404":
            return FileNotFoundError(f"{self.location}: no such object {name}")
        if code in _REFUSED or status == "403":
            return ConfigError(
                f"the object store refused access to {self.location} ({code or status}): "
                "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket's permissions"
            )
        return self.unavailable(exc, name, what)

    def _saw(self, resp: dict[str, Any]) -> None:
        at = response_date(resp)
        if at is not None:
            self._seen = (at, time.monotonic())

    def now(self) -> float:
        """The store's clock: the ``Date`` of its last answer plus the time elapsed since
        on this process's monotonic clock (never its wall clock)."""
        if self._seen is None:
            self.request("cannot reach bucket", None, "head_bucket")
        if self._seen is None:  # a server that sends no Date: nothing better than ours
            return time.time()
        at, mono = self._seen
        return at + (time.monotonic() - mono)

    def call(self, what: str, name: str, fn: Any, *args: Any) -> Any:
        """Run one idempotent pyarrow call, tried again twice after a short pause (S3
        servers answer 500 "try again" under load); FileNotFoundError passes at once,
        other failures become :class:`SpoolUnavailableError`."""
        for attempt in range(CALL_ATTEMPTS):
            try:
                return fn(*args)
            except FileNotFoundError:
                raise
            except (OSError, pa.ArrowException) as exc:
                if attempt == CALL_ATTEMPTS - 1:
                    raise self.unavailable(exc, name, what) from exc
                time.sleep(0.25 * 3**attempt)
        raise AssertionError("unreachable")
