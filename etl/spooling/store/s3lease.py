"""Leases on object storage that exclude (see :mod:`etl.spooling.store.s3`).

``leases/<name>`` is created with ``If-None-Match: *`` (one of any number of racing
claimants succeeds), renewed with ``If-Match`` on its ETag, released with a delete
conditional on it.  Its age is the store's ``Date`` minus its ``Last-Modified``, both the
store's clock (one-second resolution); a lapsed lease, or one with no owner in it (a write
cut short), is taken over with ``If-Match`` on the ETag read, so of two claimants taking
over one lease, one wins.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import uuid

from botocore.exceptions import BotoCoreError

from etl.errors import SpoolError
from etl.spooling.store.s3bucket import Bucket, Conflict, response_date

HOST = socket.gethostname()


def process_gone(owner: str) -> bool:
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


class LeaseLostError(SpoolError):
    """The lease was taken over by another claimant (it had lapsed before a renewal)."""


class S3Lease:
    """``leases/<name>`` held by this process (see the module docstring)."""

    def __init__(self, store: Bucket, held: dict[str, S3Lease], name: str) -> None:
        self.store, self.held, self.name = store, held, name
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
        self.held[self.name] = self
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
            self.held.pop(self.name, None)
            raise LeaseLostError("the lease was taken over by another claimant", path=self.name)

    def dropped(self) -> None:
        """Deleted with the file's last move (see :meth:`S3Store.move`)."""
        self.etag = None
        if self.held.get(self.name) is self:
            del self.held[self.name]

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


def acquire(
    store: Bucket, held: dict[str, S3Lease], name: str, lease_seconds: float
) -> S3Lease | None:
    """The lease on ``name``: created if there is none, taken over if it has lapsed (on
    the store's clock) or its owner is a dead process of this host; None while another
    claimant holds it.  Says nothing about whether the file exists."""
    lease = S3Lease(store, held, name)
    for _ in range(2):  # twice: a lease released between our create and our read
        if lease.create():
            return lease
        try:
            resp = store.request(
                "cannot read lease", name, "get_object", Key=store.key("leases", name)
            )
            body = resp["Body"].read()
        except FileNotFoundError:
            continue
        except (BotoCoreError, OSError) as exc:
            raise store.unavailable(exc, name, "cannot read lease") from exc
        now = response_date(resp)
        age = (now - resp["LastModified"].timestamp()) if now is not None else 0.0
        owner = ""
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            owner = str(json.loads(body).get("owner", ""))
        # No owner in it: a write cut short (a holder SIGKILLed mid-PUT leaves an empty
        # object on SeaweedFS), which no live holder made: its PUT would have failed.
        if owner and age < lease_seconds and not process_gone(owner):
            return None
        return lease if lease.take_over(resp["ETag"]) else None
    return None
