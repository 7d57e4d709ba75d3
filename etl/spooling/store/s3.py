"""A spool on S3-compatible object storage, through ``pyarrow.fs.S3FileSystem``.

Object storage has no atomic rename and no ``flock``; this is how each promise is kept:

* **Visible only complete.**  A release file is streamed to ``tmp/<release>.<pid>.<ns>
  .part`` as a multipart upload (parts go out as the row groups are written; memory holds
  one part).  S3 makes an object visible only when its upload completes, and only then is
  the name known (it carries the content hash), so publishing is a server-side copy to
  ``ready/<name>`` (atomic) and a delete of the temp object.  A writer that dies leaves an
  invisible incomplete upload (give the bucket an ``AbortIncompleteMultipartUpload``
  lifecycle rule) or, between the close and the copy, a complete temp object, which
  ``clean_tmp`` deletes once it is older than the grace period.
* **A move is copy + delete**, with an intent written first: ``moves/<name>`` says
  ``{src, dst}``; then ``dst`` is copied from ``src``, ``src`` deleted, the intent deleted.
  A move cut anywhere is resolved by whoever lists the source folder next: with the
  intent present and the copy in ``dst``, the destination wins (the later state) and the
  copy left in ``src`` is deleted; with no copy in ``dst`` yet, the file is where it was.
  A name found in two states with no intent (not produced by this code) is left to
  :meth:`S3Store.reconcile`: the newest copy wins.
* **Claims are leases**: ``leases/<name>`` holds ``{owner, renewed_at}``, written and read
  back (S3 has no portable conditional create).  Two claimants racing in the same instant
  can both believe they won; the Postgres ledger and the per-release advisory lock make
  the second apply a no-op (``unchanged``).  A lease older than the reader's lease period
  has lapsed: the file is an orphan.

Endpoint and credentials come from ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY`` (read by the AWS SDK itself) and ``AWS_REGION``; they never
appear in :attr:`S3Store.location` or in any message.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

from etl.crashpoint import crash_point
from etl.errors import ConfigError, SpoolError, SpoolUnavailableError
from etl.spooling.store.base import STATE_FOLDERS, ObjectInfo

CALL_ATTEMPTS = 3
TMP_GRACE_FLOOR = 60.0  # a complete temp object lives seconds: older ones are a dead writer's


HOST = socket.gethostname()


def _process_gone(host_pid: list[str]) -> bool:
    """True when ``[host, pid]`` names a process of this host that no longer runs (its
    lease or temp object is then a dead one's, whatever its age)."""
    if len(host_pid) < 2 or host_pid[0] != HOST or not host_pid[1].isdigit():
        return False
    try:
        os.kill(int(host_pid[1]), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


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


class S3Lease:
    def __init__(self, store: S3Store, name: str, owner: str) -> None:
        self.store, self.name, self.owner = store, name, owner

    def renew(self) -> None:
        """Still at work: rewrite the lease with the current time."""
        self.store.write_json("leases", self.name, {"owner": self.owner, "renewed_at": time.time()})

    def release(self) -> None:
        """Drop the lease if it is still ours (best effort: an unreachable store lets it
        lapse instead)."""
        with contextlib.suppress(SpoolError, ValueError):
            held = self.store.read_json("leases", self.name)
            if isinstance(held, dict) and held.get("owner") == self.owner:
                self.store.delete("leases", self.name)


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
        src, dst = self.store.path("tmp", self.tmp), self.store.path(folder, name)
        self.store.call("cannot publish spool object", name, self.store.fs.copy_file, src, dst)
        self.store.delete("tmp", self.tmp)

    def discard(self) -> None:
        """pyarrow cannot abort a multipart upload: close it (into the temp key) and delete."""
        if self._stream is not None:
            with contextlib.suppress(OSError):
                self._stream.close()
            self._stream = None
        self.store.delete("tmp", self.tmp)


class S3Store:
    def __init__(self, fs: pafs.FileSystem, bucket: str, prefix: str) -> None:
        self.fs = fs
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.root = f"{bucket}/{self.prefix}" if self.prefix else bucket

    @classmethod
    def from_url(cls, url: str) -> S3Store:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or "@" in parts.netloc:
            raise ConfigError("spool URL must be s3://bucket[/prefix] (credentials from AWS_*)")
        kwargs: dict[str, Any] = {
            "region": os.environ.get("AWS_REGION") or "us-east-1",
            "allow_bucket_creation": True,
            "background_writes": False,  # one part in memory at a time: memory stays flat
            "connect_timeout": 5,
            "request_timeout": 60,
            "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=4),
        }
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            ep = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
            kwargs["endpoint_override"] = ep.netloc
            kwargs["scheme"] = ep.scheme
        try:
            fs = pafs.S3FileSystem(**kwargs)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise ConfigError(f"cannot set up the S3 client: {exc}") from exc
        store = cls(fs, parts.netloc, parts.path)
        if store.fs.get_file_info(parts.netloc).type == pafs.FileType.NotFound:
            store.call("cannot create bucket", parts.netloc, fs.create_dir, parts.netloc)
        return store

    @property
    def location(self) -> str:
        return f"s3://{self.root}"

    def path(self, folder: str, name: str) -> str:
        return f"{self.root}/{folder}/{name}"

    def unavailable(self, exc: Exception, name: str, what: str) -> SpoolError:
        return SpoolUnavailableError(f"{what} in {self.location}: {exc}", path=name)

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

    def space_hint(self) -> str:
        return "object storage quota"

    # --- objects -----------------------------------------------------------------------

    def _list(self, folder: str) -> list[ObjectInfo]:
        sel = pafs.FileSelector(f"{self.root}/{folder}", allow_not_found=True)
        infos = self.call("cannot list", folder, self.fs.get_file_info, sel)
        return [
            ObjectInfo(i.base_name, i.size or 0, i.mtime.timestamp() if i.mtime else 0.0)
            for i in infos
            if i.type == pafs.FileType.File
        ]

    def list_folder(self, folder: str) -> list[ObjectInfo]:
        """The folder's objects, with half-done moves out of it finished (see module doc)."""
        objects = self._list(folder)
        if folder not in STATE_FOLDERS:
            return objects
        intents = {o.name for o in self._list("moves")}
        done = set()
        for o in objects:
            if o.name in intents:
                intent = self.read_intent(o.name)
                if intent and intent["src"] == folder and self.info(intent["dst"], o.name):
                    self.delete(folder, o.name)  # the copy in dst won: finish the move
                    self.delete("moves", o.name)
                    done.add(o.name)
        return [o for o in objects if o.name not in done]

    def read_intent(self, name: str) -> dict[str, str] | None:
        with contextlib.suppress(ValueError):
            data = self.read_json("moves", name)
            if isinstance(data, dict) and {"src", "dst"} <= data.keys():
                return {"src": str(data["src"]), "dst": str(data["dst"])}
        return None

    def info(self, folder: str, name: str) -> ObjectInfo | None:
        i = self.call("cannot stat", name, self.fs.get_file_info, self.path(folder, name))
        if i.type != pafs.FileType.File:
            return None
        return ObjectInfo(name, i.size or 0, i.mtime.timestamp() if i.mtime else 0.0)

    def open_read(self, folder: str, name: str) -> GuardedInput:
        raw = self.call("cannot open", name, self.fs.open_input_file, self.path(folder, name))
        return GuardedInput(raw, name)

    def upload(self, hint: str) -> S3Upload:
        return S3Upload(self, hint)

    def move(self, name: str, src: str, dst: str, *, durable: bool = True) -> None:
        """Intent, copy, delete, delete intent (each step safe to cut; see module doc).
        Always durable: the object store acknowledges each step once it is stored."""
        if self.info(src, name) is None:
            raise FileNotFoundError(self.path(src, name))
        self.write_json("moves", name, {"src": src, "dst": dst, "at": time.time()})
        self.call(
            "cannot copy", name, self.fs.copy_file, self.path(src, name), self.path(dst, name)
        )
        self.delete(src, name)
        self.delete("moves", name)

    def delete(self, folder: str, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.call("cannot delete", name, self.fs.delete_file, self.path(folder, name))

    def read_json(self, folder: str, name: str) -> Any:
        def get() -> bytes:
            with self.fs.open_input_stream(self.path(folder, name)) as f:
                return bytes(f.read())

        try:
            data = self.call("cannot read", name, get)
        except FileNotFoundError:
            return None
        return json.loads(data)

    def write_json(self, folder: str, name: str, data: Any) -> None:
        """One PUT: S3 shows the whole object or the previous one, never half."""
        body = json.dumps(data, indent=2).encode()

        def put() -> None:
            with self.fs.open_output_stream(self.path(folder, name)) as f:
                f.write(body)

        self.call("cannot write", name, put)

    # --- claims and repairs ------------------------------------------------------------

    def lock(self, folder: str, name: str, lease_seconds: float) -> S3Lease | None:
        """A lease on the name: None while another holder's is younger than the lease."""
        if self.info(folder, name) is None:
            return None
        with contextlib.suppress(ValueError):
            held = self.read_json("leases", name)
            if (
                isinstance(held, dict)
                and time.time() - float(held.get("renewed_at", 0)) < lease_seconds
                and not _process_gone(str(held.get("owner", "")).split(":"))
            ):
                return None
        owner = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex}"
        self.write_json("leases", name, {"owner": owner, "renewed_at": time.time()})
        back = self.read_json("leases", name)
        if not isinstance(back, dict) or back.get("owner") != owner:
            return None  # another claimant wrote after us: theirs
        return S3Lease(self, name, owner)

    def clean_tmp(self, grace_seconds: float) -> int:
        """Delete temp objects of dead writers: of a process of this host that is gone, or
        older than the grace period (a complete temp object lives only seconds)."""
        cutoff = time.time() - max(grace_seconds, TMP_GRACE_FLOOR if grace_seconds else 0.0)
        old = [
            o
            for o in self._list("tmp")
            if o.mtime <= cutoff or _process_gone(o.name.removesuffix(".part").split(",")[1:3])
        ]
        for o in old:
            self.delete("tmp", o.name)
        return len(old)

    def reconcile(self, lease_seconds: float) -> list[str]:
        """Finish or drop half-done moves, keep the newest of duplicate copies, delete
        lapsed leases of files no longer claimed and temp objects of dead writers."""
        repaired: list[str] = []
        where: dict[str, list[tuple[str, ObjectInfo]]] = {}
        for folder in STATE_FOLDERS:
            for o in self.list_folder(folder):
                where.setdefault(o.name, []).append((folder, o))
        for name in {o.name for o in self._list("moves")}:
            intent = self.read_intent(name)
            if intent is None or name not in where or len(where[name]) == 1:
                self.delete("moves", name)  # finished, never started, or unreadable
                repaired.append(f"move intent {name} dropped")
        for name, copies in where.items():
            if len(copies) > 1:
                copies.sort(key=lambda c: c[1].mtime)
                for folder, _ in copies[:-1]:
                    self.delete(folder, name)
                    repaired.append(f"{name}: stale copy in {folder}/ deleted")
        loading = {n for n, c in where.items() if any(f == "loading" for f, _ in c)}
        now = time.time()
        for lease in self._list("leases"):
            if lease.name not in loading and now - lease.mtime >= lease_seconds:
                self.delete("leases", lease.name)
                repaired.append(f"lease {lease.name} dropped")
        removed = self.clean_tmp(lease_seconds)
        if removed:
            repaired.append(f"{removed} temp object(s) of dead writers deleted")
        return repaired

    def arrow_paths(self, refs: list[tuple[str, str]]) -> tuple[pafs.FileSystem, list[str]]:
        return self.fs, [self.path(f, n) for f, n in refs]
