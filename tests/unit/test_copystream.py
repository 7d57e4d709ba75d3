"""The drops' timestamp text (:func:`etl.db.copystream.pg_timestamps`) against an
independent formatting: Python's own ``datetime`` arithmetic, value by value."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from etl.db.copystream import pg_timestamps
from etl.db.dropshold import DropsHold

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _expected(value: datetime | None) -> str | None:
    if value is None:
        return None
    v = value.astimezone(UTC)
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d} {v.hour:02d}:{v.minute:02d}:{v.second:02d}"
        f".{v.microsecond:06d}+00"
    )


def test_every_instant_formats_as_python_does() -> None:
    rng = random.Random(11)
    low = int((datetime(1, 1, 1, tzinfo=UTC) - EPOCH) / timedelta(microseconds=1))
    high = int((datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - EPOCH).total_seconds())
    values: list[datetime | None] = [
        EPOCH + timedelta(microseconds=rng.randrange(low, high * 1_000_000)) for _ in range(5000)
    ]
    values += [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC),  # before the epoch: floor, not trunc
        EPOCH,
        datetime(2024, 2, 29, 12, 0, 0, 500000, tzinfo=UTC),
        None,
    ]
    got = pg_timestamps(pa.array(values, pa.timestamp("us", tz="UTC"))).to_pylist()
    assert got == [_expected(v) for v in values]


def test_all_null_and_empty() -> None:
    ts = pa.timestamp("us", tz="UTC")
    assert pg_timestamps(pa.nulls(3, ts)).to_pylist() == [None, None, None]
    assert pg_timestamps(pa.array([], ts)).to_pylist() == []


def test_drops_hold_keeps_views_under_the_limit_and_spills_over_it() -> None:
    pieces = [memoryview(bytes([65 + i]) * (100 + i)) for i in range(20)]
    whole = b"".join(bytes(p) for p in pieces)
    with DropsHold(limit=10_000) as small:
        for p in pieces:
            small.add(p)
        assert not small.spilled and small.size == len(whole)
        assert b"".join(bytes(c) for c in small.chunks()) == whole
    with DropsHold(limit=500) as big:
        for p in pieces:
            big.add(p)
        assert big.spilled and big.size == len(whole)
        assert b"".join(bytes(c) for c in big.chunks()) == whole
    assert not big.spilled  # closed (and, unnamed, gone) on exit
