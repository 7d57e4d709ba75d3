"""Small spool files written straight through a :class:`~etl.spool.Spool`, for the tests
of the object-storage spool (claims, leases, moves): one drop per artifact, fixed times."""

from __future__ import annotations

from datetime import UTC, datetime

from etl.spool import Spool
from etl.spooling import format as fmt
from etl.spooling.store.s3 import S3Store

T0 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def artifact_row(arch: str, graph: str = '{"a": 1}') -> fmt.ArtifactRow:
    drop = fmt.Drop(
        "pkg-1.0-0-py3-none-any.whl", "pkg", "1.0", "0", "py3", "none", "any", "ab" * 32, 10, None
    )
    return fmt.ArtifactRow(arch, "cpu", "b1", T0, graph, "[]", "[]", (drop,))


def write_release(spool: Spool, release: str, rows: int = 2) -> str:
    """A release file of product ``prod`` with ``rows`` artifacts; its name."""
    with spool.writer("prod", release, T0, "http://src/") as w:
        for i in range(rows):
            w.add(artifact_row(f"arch{i}"))
        return w.commit().name


def s3_store(spool: Spool) -> S3Store:
    assert isinstance(spool.store, S3Store)
    return spool.store
