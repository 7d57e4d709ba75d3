"""Spool storage backends behind one interface: a local folder, or S3-compatible storage.

``open_store("spool")`` or ``open_store(Path(...))`` gives a :class:`LocalStore`;
``open_store("s3://bucket/prefix")`` an :class:`~etl.spooling.store.s3.S3Store` (endpoint and
credentials from ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_REGION``; never from the command line).
"""

from __future__ import annotations

from pathlib import Path

from etl.spooling.store.base import FOLDERS, STATE_FOLDERS, Lock, ObjectInfo, SpoolStore, Upload
from etl.spooling.store.local import LocalStore

__all__ = [
    "FOLDERS",
    "STATE_FOLDERS",
    "LocalStore",
    "Lock",
    "ObjectInfo",
    "SpoolStore",
    "Upload",
    "init_store",
    "is_object_store",
    "open_store",
]


def is_object_store(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith("s3://")


def open_store(location: str | Path, *, create: bool = True) -> SpoolStore:
    """The store at ``location``; ``create=False``: a local folder must already be a spool
    (object storage creates nothing on open either way: a missing bucket is a
    :class:`~etl.errors.ConfigError` naming ``wheels-etl spool init``)."""
    if is_object_store(location):
        from etl.spooling.store.s3 import S3Store

        return S3Store.from_url(str(location))
    return LocalStore(Path(location), create=create)


def init_store(location: str | Path) -> str:
    """Make ``location`` ready to be a spool: the folders of a local one, the bucket of an
    object store (the only place a bucket is ever created).  Returns what was done."""
    if is_object_store(location):
        from etl.spooling.store.s3 import S3Store, init_bucket

        created = init_bucket(str(location))
        where = S3Store.from_url(str(location)).location
        return f"{'created the bucket of' if created else 'the bucket exists:'} {where}"
    return f"spool folders in {LocalStore(Path(location), create=True).location}"
