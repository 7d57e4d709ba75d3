"""The incremental memory (stored through the spool): several extractors writing it at the
same instant all succeed, and what they wrote reads back."""

from __future__ import annotations

import multiprocessing as mp
from datetime import UTC, datetime
from pathlib import Path

from etl.spool import Spool
from etl.spooling.memory import ExtractMemory


def _open(path: str, barrier: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    state = ExtractMemory(Spool(Path(path)))
    state.remember(
        "p", "1.0", datetime(2026, 1, 1, tzinfo=UTC), etag=None, last_modified=None, file_name=None
    )


def test_concurrent_first_open(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    for i in range(15):  # without the setup lock this failed ~1 time in 20 ("database is locked")
        path = tmp_path / f"s{i}"
        barrier = ctx.Barrier(4)
        procs = [ctx.Process(target=_open, args=(str(path), barrier)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0]
        state = ExtractMemory(Spool(path))
        known = state.release("p", "1.0")
        assert known is not None and known.updated_at.year == 2026


def test_products_with_their_failures(tmp_path: Path) -> None:
    """A product's kept failures go with its run record; a product with failures and no
    run record (its releases failed on a worker) is listed too."""
    state = ExtractMemory(Spool(tmp_path / "s"))
    state.product_done("p", seen=3, failed=2)
    state.release_failed("p", "2.0", "http://src/p/2.0", "HTTP 500\n  twice")
    state.release_failed("p", "1.0", "http://src/p/1.0", "HTTP 404")
    state.release_failed("q", "5.0", "http://src/q/5.0", "bad JSON")
    p, q = state.products()
    assert (p.product, p.releases_seen, p.releases_failed) == ("p", 3, 2)
    assert [(f.release, f.reason) for f in p.failures] == [
        ("1.0", "HTTP 404"),
        ("2.0", "HTTP 500 twice"),
    ]
    assert (q.product, q.releases_seen, q.releases_failed) == ("q", 0, 1)
    assert [f.url for f in q.failures] == [
        "http://src/q/5.0"
    ] and q.last_extracted_at == q.failures[0].at
    state.remember(
        "q", "5.0", datetime(2026, 1, 1, tzinfo=UTC), etag=None, last_modified=None, file_name=None
    )
    assert [x.product for x in state.products()] == ["p"]
