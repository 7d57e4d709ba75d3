"""The storage interface under the spool: named objects in a few folders, nothing more.

A store knows nothing of spool states or Parquet.  It holds objects addressed by
``(folder, name)`` and offers only what both a local folder and an object store can do
safely:

* an upload that becomes visible **only complete** (:meth:`SpoolStore.upload` then
  :meth:`Upload.publish`);
* reads through a random-access stream (a ``pyarrow.NativeFile`` or a file object that
  Arrow reads row group by row group);
* listing with size and modification time; a move from one folder to another (atomic
  ``rename(2)`` locally; copy then delete on object storage, see ``s3.py`` for how a move
  cut in half is resolved); delete;
* small JSON objects written whole (sidecars, incremental-extract memory);
* a per-name lock for claims (``flock`` locally, a lease object written with conditional
  requests on object storage), which excludes: of two claimants, one gets it;
* a clock (:meth:`SpoolStore.now`): the store's own, on which object ages are judged.

Missing objects are reported as :class:`FileNotFoundError` (the spool treats them as
"someone else got there first"); every other failure as a :class:`~etl.errors.SpoolError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from etl.errors import SpoolError

if TYPE_CHECKING:
    import pyarrow.fs as pafs

#: Every folder a store holds.  ``state/`` is the incremental-extract memory.
STATE_FOLDERS = ("ready", "loading", "loaded", "failed")
FOLDERS = ("tmp", *STATE_FOLDERS, "state")


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    size: int
    mtime: float  # seconds since the epoch, on the store's clock
    etag: str = ""  # object storage's version tag ("" locally)


class Lock(Protocol):
    """Held by one claimant until released (a dead holder's lock lapses)."""

    def release(self) -> None: ...

    def renew(self) -> None:
        """Still at work: push the lapse back (a no-op where the lock cannot lapse)."""
        ...


class Upload(Protocol):
    """An object being written; invisible to every reader until :meth:`publish`."""

    @property
    def stream(self) -> IO[bytes] | pa.NativeFile: ...

    def written(self) -> int: ...

    def publish(self, folder: str, name: str) -> None: ...

    def discard(self) -> None: ...

    def error(self, exc: OSError) -> SpoolError:
        """A write failure as the store's SpoolError (full, unavailable, ...)."""
        ...


class SpoolStore(Protocol):
    """What the spool needs from a storage backend (see the module docstring)."""

    @property
    def location(self) -> str:
        """Where the store is, for messages (a folder or ``s3://bucket/prefix``; no secrets)."""
        ...

    def list_folder(self, folder: str) -> list[ObjectInfo]: ...

    def info(self, folder: str, name: str) -> ObjectInfo | None: ...

    def lookup(self, folder: str, name: str, suffixes: tuple[str, ...] = ()) -> list[ObjectInfo]:
        """``name`` and each ``name + suffix`` that is in ``folder`` (one request on object
        storage: a claim learns the file's size and whether its sidecar is there at once)."""
        ...

    def now(self) -> float:
        """The store's clock (epoch seconds), the one object ages are judged on."""
        ...

    def open_read(self, folder: str, name: str) -> pa.NativeFile | IO[bytes]: ...

    def upload(self, hint: str) -> Upload: ...

    def move(self, name: str, src: str, dst: str, *, durable: bool = True) -> None:
        """``durable=False``: the move may be undone by a power loss (never half done)."""
        ...

    def delete(self, folder: str, name: str) -> None: ...

    def read_json(self, folder: str, name: str) -> Any: ...

    def write_json(self, folder: str, name: str, data: Any) -> None: ...

    def lock(self, folder: str, name: str, lease_seconds: float) -> Lock | None: ...

    def clean_tmp(self, grace_seconds: float) -> int: ...

    def reconcile(self, lease_seconds: float) -> list[str]: ...

    def arrow_paths(self, refs: list[tuple[str, str]]) -> tuple[pafs.FileSystem, list[str]]: ...

    def space_hint(self) -> str: ...
