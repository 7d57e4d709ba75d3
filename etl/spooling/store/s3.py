"""A spool on S3-compatible object storage.

Two clients, each for what it does best:

* **botocore** (the AWS SDK's core) for every small request: listings, HEAD, copy, delete,
  the JSON records and the leases.  Leases need conditional writes (``If-None-Match: *``,
  ``If-Match: <etag>``, a delete conditional on an ETag) and the server's ``Date``, which
  ``pyarrow.fs`` can neither send nor give.
* **pyarrow.fs.S3FileSystem** for the bulk data: a release file's multipart upload and
  the ranged reads of its row groups (native code, no Python per byte).

How each promise is kept:

* **Visible only complete.**  A release file is streamed to ``tmp/<release>,<host>,<pid>,
  <ns>.part`` as a multipart upload; S3 makes an object visible only when its upload
  completes, and only then is the name known (it carries the content hash), so publishing
  is a server-side copy to ``ready/<name>`` (atomic) and a delete of the temp object.  A
  writer that dies leaves an invisible incomplete upload (give the bucket an
  ``AbortIncompleteMultipartUpload`` lifecycle rule) or a complete temp object, which
  ``clean_tmp`` deletes once older than the grace period on the store's clock.
* **Claims are leases that exclude.**  ``leases/<name>`` is created with ``If-None-Match:
  *``: of any number of claimants racing for a name, the store lets exactly one create it
  (the others get 412).  The holder renews it with ``If-Match`` on its ETag (each write
  carries a counter, so each has a new ETag) and releases it with a delete conditional on
  that ETag.  A lease has **lapsed** when its ``Last-Modified`` is ``lease_seconds`` older
  than the ``Date`` of the response that read it: both are the store's clock, the worker's
  own clock is never used to judge.  A lapsed lease is taken over with ``If-Match`` on the
  ETag that was read, so of two claimants taking over one lapsed lease, one wins.
* **A move is copy + delete.**  The two moves of the hot path are made by the holder of
  the file's lease and go forward (``ready`` → ``loading`` when claimed, ``loading`` →
  ``loaded`` when complete): a copy, then ONE delete request for the source (and, for
  ``loaded``, the lease with it).  A cut between the two leaves the name in both states;
  ``reconcile`` keeps the later one.  Every other move (fail, retry, replay, sidecars)
  writes an intent first, ``moves/<name>`` = ``{src, dst}``, then copies, then deletes the
  source and the intent in one request; ``reconcile`` finishes a cut one (the copy in
  ``dst`` wins) or drops its intent (no copy yet: the file is where it was).
* **Listing never writes.**  A listing hides the stale source copy of a move whose intent
  and destination copy are both there; repairs are only made by :meth:`S3Store.reconcile`.
* **Bad settings are one line.**  Refused credentials and a missing bucket are a
  :class:`ConfigError` (exit 2), an unreachable store a :class:`SpoolUnavailableError`
  (exit 3).  Opening a spool never creates a bucket: :func:`init_bucket` (``wheels-etl
  spool init``) does.

Endpoint and credentials come from ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY`` (read by the SDKs themselves) and ``AWS_REGION``; they never
appear in :attr:`S3Store.location` or in any message.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.session import get_session

from etl.crashpoint import crash_point
from etl.errors import ConfigError, SpoolError, SpoolUnavailableError
from etl.spooling.store.base import STATE_FOLDERS, ObjectInfo

CALL_ATTEMPTS = 3  # pyarrow calls (botocore retries its own requests)
TMP_GRACE_FLOOR = 60.0  # a complete temp object lives seconds: older ones are a dead writer's

#: The forward order of the states a claim moves through: a name found in two of them with
#: no intent is the trace of a forward move cut in half, and the later state wins.
ORDER = {"ready": 0, "loading": 1, "loaded": 2}
_FORWARD = frozenset({("ready", "loading"), ("loading", "loaded")})

_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_CONFLICT = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
_NO_BUCKET = frozenset({"NoSuchBucket"})
_REFUSED = frozenset({
    "403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
    "ExpiredToken", "AuthorizationHeaderMalformed", "InvalidClientTokenId",
})  # fmt: skip

HOST = socket.gethostname()


class Conflict(Exception):
    """A conditional request lost: the object is not in the state the condition named."""


def _process_gone(owner: str) -> bool:
    """True when ``owner`` (``host:pid:...``) names a process of this host that no longer
    runs (its lease or temp object is then a dead one's, whatever its age)."""
    host_pid = owner.split(":")
    if len(host_pid) < 2 or host_pid[0] != HOST or not host_pid[1].isdigit():
        return False
    try:
        os.kill(int(host_pid[1]), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _date(resp: dict[str, Any]) -> float | None:
    """The store's clock in a response (its ``Date`` header), as epoch seconds."""
    raw = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    with contextlib.suppress(TypeError, ValueError):
        return parsedate_to_datetime(raw).timestamp() if raw else None
    return None


class GuardedInput(io.RawIOBase):
    """A read-only file over an S3 object whose network errors surface as
    :class:`SpoolUnavailableError`, not as the OSError Arrow would blame on the file."""

    def __init__(self, raw: pa.NativeFile, where: str) -> None:
        super().__init__()
        self._raw = raw
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
        return int(self._call(self._raw.seek, offset, whence))

    def tell(self) -> int:
        return int(self._call(self._raw.tell))

    def read(self, size: int | None = -1) -> bytes:
        data = self._call(self._raw.read, None if size is None or size < 0 else size)
        return bytes(data)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def size(self) -> int:
        return int(self._call(self._raw.size))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._raw.close()
        super().close()


class LeaseLostError(SpoolError):
    """The lease was taken over by another claimant (it had lapsed before a renewal)."""


class S3Lease:
    """``leases/<name>`` held by this process (see the module docstring)."""

    def __init__(self, store: S3Store, name: str) -> None:
        self.store, self.name = store, name
        self.owner = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex}"
        self.etag: str | None = None  # None: not held (never taken, released or lost)
        self._writes = 0

    def _put(self, **condition: str) -> bool:
        self._writes += 1  # a new body, so a new ETag, at each write
        body = {"owner": self.owner, "writes": self._writes, "written_at": self.store.clock()}
        try:
            resp = self.store.request(
                "cannot write lease", self.name, "put_object",
                Key=self.store.key("leases", self.name), Body=json.dumps(body).encode(),
                **condition,
            )  # fmt: skip
        except Conflict:
            return False
        self.etag = resp["ETag"]
        self.store.held[self.name] = self
        return True

    def create(self) -> bool:
        """Create the lease if none exists (exactly one racing claimant succeeds)."""
        return self._put(IfNoneMatch="*")

    def take_over(self, etag: str) -> bool:
        """Replace a lapsed lease read with ``etag`` (fails if it changed since)."""
        return self._put(IfMatch=etag)

    def renew(self) -> None:
        """Still at work: rewrite the lease, which restarts its age on the store's clock.
        Raises :class:`LeaseLostError` when another claimant took it over meanwhile."""
        if self.etag is None:
            return
        if not self._put(IfMatch=self.etag):
            self.etag = None
            self.store.held.pop(self.name, None)
            raise LeaseLostError("the lease was taken over by another claimant", path=self.name)

    def dropped(self) -> None:
        """Deleted with the file's last move (see :meth:`S3Store.move`)."""
        self.etag = None
        if self.store.held.get(self.name) is self:
            del self.store.held[self.name]

    def release(self) -> None:
        """Drop the lease if it is still ours (best effort: an unreachable store lets it
        lapse instead)."""
        etag = self.etag
        if etag is None:
            return
        self.dropped()
        with contextlib.suppress(Conflict, FileNotFoundError, SpoolError):
            self.store.request(
                "cannot drop lease", self.name, "delete_object",
                Key=self.store.key("leases", self.name), IfMatch=etag,
            )  # fmt: skip


class S3Upload:
    """A multipart upload to a temp key, copied to its final key when complete."""

    def __init__(self, store: S3Store, hint: str) -> None:
        self.store = store
        self.tmp = f"{hint},{HOST},{os.getpid()},{time.time_ns()}.part"
        self._stream: pa.NativeFile | None = store.call(
            "cannot start upload",
            self.tmp,
            store.fs.open_output_stream,
            store.path("tmp", self.tmp),
        )

    @property
    def stream(self) -> pa.NativeFile:
        assert self._stream is not None, "upload already published or discarded"
        return self._stream

    def written(self) -> int:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            return int(self._stream.tell()) if self._stream is not None else 0
        return 0

    def error(self, exc: OSError) -> SpoolError:
        return self.store.unavailable(exc, self.tmp, "cannot write spool object")

    def publish(self, folder: str, name: str) -> None:
        assert self._stream is not None
        stream, self._stream = self._stream, None
        self.store.call("cannot complete upload", self.tmp, stream.close)
        crash_point("extract-before-rename")
        self.store.copy("tmp", self.tmp, folder, name)
        self.store.delete("tmp", self.tmp)

    def discard(self) -> None:
        """pyarrow cannot abort a multipart upload: close it (into the temp key) and delete."""
        if self._stream is not None:
            with contextlib.suppress(OSError):
                self._stream.close()
            self._stream = None
        self.store.delete("tmp", self.tmp)


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
    try:
        return get_session().create_client("s3", endpoint_url=endpoint, config=config)
    except (BotoCoreError, ValueError) as exc:
        raise ConfigError(f"cannot set up the S3 client: {exc}") from exc


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
    store = S3Store(_client(region), None, bucket, "")
    try:
        store.request("cannot reach bucket", bucket, "head_bucket")
        return False
    except ConfigError:
        pass  # missing (or refused: create_bucket says which)
    extra: dict[str, Any] = {}
    if region != "us-east-1" and _endpoint() is None:
        extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
    store.request("cannot create bucket", bucket, "create_bucket", **extra)
    return True


class S3Store:
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
        self.held: dict[str, S3Lease] = {}  # leases this store holds, by file name
        self._seen: tuple[float, float] | None = None  # (store's Date, monotonic then)
        self._counted = threading.Lock()
        self.requests = 0  # HTTP requests sent by the botocore client (retries included)
        client.meta.events.register("before-send.s3", self._count)

    def _count(self, **_: Any) -> None:
        with self._counted:
            self.requests += 1

    @classmethod
    def from_url(cls, url: str, *, clock: Callable[[], float] = time.time) -> S3Store:
        """Open an existing bucket (a missing one is a :class:`ConfigError`: see
        :func:`init_bucket`); credentials refused are a ConfigError too, an unreachable
        endpoint a :class:`SpoolUnavailableError`."""
        bucket, prefix = _parse(url)
        region = os.environ.get("AWS_REGION") or "us-east-1"
        store = cls(_client(region), _filesystem(region), bucket, prefix, clock=clock)
        store.request("cannot reach bucket", bucket, "head_bucket")
        return store

    @property
    def fs(self) -> pafs.S3FileSystem:
        assert self._fs is not None
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

    def unavailable(self, exc: Exception, name: str, what: str) -> SpoolError:
        return SpoolUnavailableError(f"{what} in {self.location}: {exc}", path=name)

    def space_hint(self) -> str:
        return "object storage quota"

    # --- requests ----------------------------------------------------------------------

    def request(self, what: str, name: str, op: str, **kwargs: Any) -> dict[str, Any]:
        """One botocore call on the bucket.  Raises FileNotFoundError (no such key),
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

    def _error(self, exc: ClientError, what: str, name: str, on_bucket: bool) -> Exception:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code in _CONFLICT or status in ("409", "412"):
            return Conflict(code)
        if code in _NO_BUCKET or (status == "404" and on_bucket):
            return ConfigError(
                f"bucket {self.bucket!r} does not exist (create it with "
                f"`wheels-etl spool init --spool {self.location}`)"
            )
        if code in _MISSING or status == "404":
            return FileNotFoundError(self.key("", name))
        if code in _REFUSED or status == "403":
            return ConfigError(
                f"the object store refused access to {self.location} ({code or status}): "
                "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket's permissions"
            )
        return self.unavailable(exc, name, what)

    def _saw(self, resp: dict[str, Any]) -> None:
        at = _date(resp)
        if at is not None:
            self._seen = (at, time.monotonic())

    def now(self) -> float:
        """The store's clock: the ``Date`` of its last answer plus the time elapsed since
        on this process's monotonic clock (never its wall clock)."""
        if self._seen is None:
            self.request("cannot reach bucket", self.bucket, "head_bucket")
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

    # --- objects -----------------------------------------------------------------------

    def _list(self, folder: str, prefix: str = "") -> list[ObjectInfo]:
        base = self.key(folder, "")
        out: list[ObjectInfo] = []
        kwargs: dict[str, Any] = {"Prefix": base + prefix, "Delimiter": "/"}
        while True:
            resp = self.request("cannot list", folder, "list_objects_v2", **kwargs)
            for o in resp.get("Contents", ()):
                name = o["Key"][len(base) :]
                if name:
                    out.append(
                        ObjectInfo(name, o["Size"], o["LastModified"].timestamp(), o["ETag"])
                    )
            if not resp.get("IsTruncated"):
                return out
            kwargs["ContinuationToken"] = resp["NextContinuationToken"]

    def list_folder(self, folder: str) -> list[ObjectInfo]:
        """The folder's objects, less the stale source copies of moves whose intent and
        destination copy are both there (read only: :meth:`reconcile` deletes them)."""
        objects = self._list(folder)
        if folder not in STATE_FOLDERS:
            return objects
        names = {o.name for o in objects}
        stale = set()
        for intent_obj in self._list("moves"):
            if intent_obj.name in names:
                intent = self.read_intent(intent_obj.name)
                if intent and intent["src"] == folder and self.info(intent["dst"], intent_obj.name):
                    stale.add(intent_obj.name)
        return [o for o in objects if o.name not in stale]

    def lookup(self, folder: str, name: str, suffixes: tuple[str, ...] = ()) -> list[ObjectInfo]:
        """``name`` and ``name + suffix`` for each suffix, those in ``folder``: one
        listing request for them all."""
        wanted = {name, *(name + s for s in suffixes)}
        return [o for o in self._list(folder, name) if o.name in wanted]

    def read_intent(self, name: str) -> dict[str, str] | None:
        with contextlib.suppress(ValueError):
            data = self.read_json("moves", name)
            if isinstance(data, dict) and {"src", "dst"} <= data.keys():
                return {"src": str(data["src"]), "dst": str(data["dst"])}
        return None

    def info(self, folder: str, name: str) -> ObjectInfo | None:
        try:
            resp = self.request("cannot stat", name, "head_object", Key=self.key(folder, name))
        except FileNotFoundError:
            return None
        return ObjectInfo(
            name, int(resp["ContentLength"]), resp["LastModified"].timestamp(), resp["ETag"]
        )

    def open_read(self, folder: str, name: str) -> GuardedInput:
        raw = self.call("cannot open", name, self.fs.open_input_file, self.path(folder, name))
        return GuardedInput(raw, name)

    def upload(self, hint: str) -> S3Upload:
        return S3Upload(self, hint)

    def copy(self, src: str, name: str, dst: str, dst_name: str | None = None) -> None:
        """Server-side copy (FileNotFoundError when the source is gone)."""
        self.request(
            "cannot copy", name, "copy_object",
            CopySource={"Bucket": self.bucket, "Key": self.key(src, name)},
            Key=self.key(dst, dst_name or name),
        )  # fmt: skip

    def move(self, name: str, src: str, dst: str, *, durable: bool = True) -> None:
        """Copy, then one delete request (see the module docstring): a forward move of a
        leased file needs no intent, any other writes ``moves/<name>`` first.  A file
        leaving ``loading`` for ``loaded`` takes the lease this store holds on it along in
        that delete.  Always durable: the store acknowledges each step once stored."""
        forward = (src, dst) in _FORWARD
        if not forward:
            self.write_json("moves", name, {"src": src, "dst": dst, "at": self.clock()})
        try:
            self.copy(src, name, dst)
        except FileNotFoundError:
            if not forward:
                self.delete("moves", name)
            raise
        doomed: list[tuple[str, str | None]] = [(self.key(src, name), None)]
        if not forward:
            doomed.append((self.key("moves", name), None))
        lease = self.held.get(name) if (src, dst) == ("loading", "loaded") else None
        if lease is not None and lease.etag is not None:
            doomed.append((self.key("leases", name), lease.etag))
            lease.dropped()
        self._delete(doomed, name)

    def _delete(self, keys: list[tuple[str, str | None]], name: str) -> set[str]:
        """Delete the keys (each with an optional ETag condition) in one request; a key
        already gone is no error.  Returns the keys whose condition did not hold (a lease
        renewed or taken over meanwhile): those are left as they are."""
        if len(keys) == 1 and keys[0][1] is None:
            self.request("cannot delete", name, "delete_object", Key=keys[0][0])
            return set()
        objects = [{"Key": k} | ({"ETag": e} if e else {}) for k, e in keys]
        resp = self.request(
            "cannot delete", name, "delete_objects", Delete={"Objects": objects, "Quiet": True}
        )
        kept = set()
        for err in resp.get("Errors", ()):
            if err.get("Code") in _CONFLICT:
                kept.add(str(err.get("Key")))
            elif err.get("Code") not in _MISSING:
                raise SpoolUnavailableError(
                    f"cannot delete {err.get('Key')} in {self.location}: {err.get('Code')}",
                    path=name,
                )
        return kept

    def delete(self, folder: str, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._delete([(self.key(folder, name), None)], name)

    def read_json(self, folder: str, name: str) -> Any:
        try:
            resp = self.request("cannot read", name, "get_object", Key=self.key(folder, name))
            data = resp["Body"].read()
        except FileNotFoundError:
            return None
        except (BotoCoreError, OSError) as exc:  # the body's stream broke
            raise self.unavailable(exc, name, "cannot read") from exc
        return json.loads(data)

    def write_json(self, folder: str, name: str, data: Any) -> None:
        """One PUT: S3 shows the whole object or the previous one, never half."""
        body = json.dumps(data, indent=2).encode()
        self.request("cannot write", name, "put_object", Key=self.key(folder, name), Body=body)

    # --- claims and repairs ------------------------------------------------------------

    def lock(self, folder: str, name: str, lease_seconds: float) -> S3Lease | None:
        """The lease on ``name``: created if there is none, taken over if it has lapsed
        (on the store's clock) or its owner is a dead process of this host; None while
        another claimant holds it.  Says nothing about whether the file exists."""
        lease = S3Lease(self, name)
        for _ in range(2):  # twice: a lease released between our create and our read
            if lease.create():
                return lease
            try:
                resp = self.request(
                    "cannot read lease", name, "get_object", Key=self.key("leases", name)
                )
                body = resp["Body"].read()
            except FileNotFoundError:
                continue
            except (BotoCoreError, OSError) as exc:
                raise self.unavailable(exc, name, "cannot read lease") from exc
            now = _date(resp)
            age = (now - resp["LastModified"].timestamp()) if now is not None else 0.0
            owner = ""
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                owner = str(json.loads(body).get("owner", ""))
            if age < lease_seconds and not _process_gone(owner):
                return None
            return lease if lease.take_over(resp["ETag"]) else None
        return None

    def clean_tmp(self, grace_seconds: float) -> int:
        """Delete temp objects of dead writers: of a process of this host that is gone, or
        older than the grace period on the store's clock (a complete temp object lives
        only seconds)."""
        objects = self._list("tmp")
        cutoff = self.now() - max(grace_seconds, TMP_GRACE_FLOOR if grace_seconds else 0.0)
        old = [
            o
            for o in objects
            if o.mtime <= cutoff
            or _process_gone(":".join(o.name.removesuffix(".part").split(",")[1:3]))
        ]
        for o in old:
            self.delete("tmp", o.name)
        return len(old)

    def reconcile(self, lease_seconds: float) -> list[str]:
        """Finish or drop half-done moves, keep the later (or newest) of duplicate
        copies, delete lapsed leases of files no longer in ``loading`` and temp objects
        of dead writers."""
        repaired: list[str] = []
        where: dict[str, dict[str, ObjectInfo]] = {}
        for folder in STATE_FOLDERS:
            for o in self._list(folder):
                where.setdefault(o.name, {})[folder] = o
        for name in {o.name for o in self._list("moves")}:
            intent = self.read_intent(name)
            copies = where.get(name, {})
            if intent and intent["dst"] in copies and intent["src"] in copies:
                self._delete([(self.key(intent["src"], name), None)], name)
                del copies[intent["src"]]
                repaired.append(f"{name}: move to {intent['dst']}/ finished")
            else:
                repaired.append(f"move intent {name} dropped")
            self.delete("moves", name)
        for name, copies in where.items():
            if len(copies) < 2:
                continue
            if all(f in ORDER for f in copies):
                keep = max(copies, key=ORDER.__getitem__)
            else:
                keep = max(copies, key=lambda f: copies[f].mtime)
            for folder in [f for f in copies if f != keep]:
                self.delete(folder, name)
                repaired.append(f"{name}: stale copy in {folder}/ deleted ({keep}/ kept)")
        loading = {n for n, c in where.items() if "loading" in c}
        leases = self._list("leases")
        now = self.now()
        for lease in leases:
            if lease.name not in loading and now - lease.mtime >= lease_seconds:
                key = self.key("leases", lease.name)
                if not self._delete([(key, lease.etag or None)], lease.name):
                    repaired.append(f"lease {lease.name} dropped")
        removed = self.clean_tmp(lease_seconds)
        if removed:
            repaired.append(f"{removed} temp object(s) of dead writers deleted")
        return repaired

    def arrow_paths(self, refs: list[tuple[str, str]]) -> tuple[pafs.FileSystem, list[str]]:
        return self.fs, [self.path(f, n) for f, n in refs]
