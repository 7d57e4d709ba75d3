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
import json
import os
import time
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
from botocore.exceptions import BotoCoreError

from etl.crashpoint import crash_point
from etl.errors import SpoolError, SpoolUnavailableError
from etl.spooling.store.base import STATE_FOLDERS, ObjectInfo
from etl.spooling.store.s3bucket import (
    CONFLICT,
    MISSING,
    Bucket,
    Conflict,
    GuardedInput,
    init_bucket,
)
from etl.spooling.store.s3lease import HOST, S3Lease, acquire, process_gone

__all__ = ["Bucket", "Conflict", "S3Lease", "S3Store", "init_bucket"]

#: Read in one request when a file is opened: all of a spool file of usual size (and of a
#: larger one, its footer).  A read-ahead holds one file's at a time.
TAIL_BYTES = 4 * 1024 * 1024
TMP_GRACE_FLOOR = 60.0  # a complete temp object lives seconds: older ones are a dead writer's

#: The forward order of the states a claim moves through: a name found in two of them with
#: no intent is the trace of a forward move cut in half, and the later state wins.
ORDER = {"ready": 0, "loading": 1, "loaded": 2}
_FORWARD = frozenset({("ready", "loading"), ("loading", "loaded")})


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


class S3Store(Bucket):
    """A spool's objects in ``bucket/prefix`` (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held: dict[str, S3Lease] = {}  # leases this store holds, by file name

    # --- objects -----------------------------------------------------------------------

    def _list(self, folder: str, prefix: str = "") -> list[ObjectInfo]:
        base = self.key(folder, "")
        out: list[ObjectInfo] = []
        kwargs: dict[str, Any] = {"Prefix": base + prefix, "Delimiter": "/"}
        while True:
            resp = self.request(f"cannot list {folder}/", None, "list_objects_v2", **kwargs)
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

    def open_read(self, folder: str, name: str) -> pa.NativeFile | GuardedInput:
        """One GET of the object's last :data:`TAIL_BYTES` (a whole spool file of usual
        size: one request where pyarrow makes one per row group, plus a HEAD).  A file that
        came whole is read from memory by Arrow itself; a larger one's first bytes come
        through pyarrow's ranged reads when needed."""
        path = self.path(folder, name)
        try:
            resp = self.request(
                "cannot open", name, "get_object",
                Key=self.key(folder, name), Range=f"bytes=-{TAIL_BYTES}",
            )  # fmt: skip
            tail = resp["Body"].read()
        except SpoolUnavailableError as exc:
            if "InvalidRange" not in str(exc):  # an empty object has no last bytes
                raise
            tail, resp = b"", {}
        except FileNotFoundError:
            raise
        except (BotoCoreError, OSError) as exc:  # the body's stream broke
            raise self.unavailable(exc, name, "cannot read") from exc
        total = str(resp.get("ContentRange", "")).rpartition("/")[2]
        size = int(total) if total.isdigit() else len(tail)
        if size == len(tail):
            return pa.BufferReader(tail)
        opener = lambda: self.call("cannot open", name, self.fs.open_input_file, path)  # noqa: E731
        return GuardedInput(tail, size, opener, name)

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
            if err.get("Code") in CONFLICT:
                kept.add(str(err.get("Key")))
            elif err.get("Code") not in MISSING:
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
        """The lease on ``name`` (see :func:`etl.spooling.store.s3lease.acquire`)."""
        return acquire(self, self.held, name, lease_seconds)

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
            or process_gone(":".join(o.name.removesuffix(".part").split(",")[1:3]))
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
