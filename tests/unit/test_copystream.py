"""The drops' timestamp text (:func:`etl.db.copystream.pg_timestamps`) against an
independent formatting: Python's own ``datetime`` arithmetic, value by value; the
identifiers :func:`etl.db.copystream.prepare` refuses."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from etl.db.copystream import ARTIFACT_READ, pg_timestamps, prepare
from etl.db.dropshold import DropsHold
from etl.errors import CorruptSpoolFileError
from etl.spooling import format as fmt
from etl.spooling.rows import artifact_table

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


def _batch_of(architecture: str, variant: str) -> None:
    drop = fmt.Drop("p-1.0-py3-none-any.whl", "p", "1.0", None, "py3", "none", "any",
                    "ab" * 32, 10, EPOCH)  # fmt: skip
    row = fmt.ArtifactRow(architecture, variant, "b1", EPOCH, "{}", "[]", "[]", (drop,))
    tbl = artifact_table("rhai", "1.0", EPOCH, row).select(ARTIFACT_READ)
    meta = fmt.FileMeta(1, "rhai", "1.0", EPOCH, EPOCH, "file:///x", "0" * 64, 1, 1, 7)
    prepare(tbl, meta, "a.parquet")


@pytest.mark.parametrize("good", ["x86_64", "cuda12.4-ubi9", "a", "A" * 128, "b+c_d.e-f"])
def test_identifiers_extract_writes_are_taken(good: str) -> None:
    _batch_of(good, good)


@pytest.mark.parametrize(
    "bad", ["", "../x", "x/y", "-x", ".x", "x\n", "x y", "é", "A" * 129, "x\x00"]
)
@pytest.mark.parametrize("column", ["architecture", "variant"])
def test_other_identifiers_are_refused(column: str, bad: str) -> None:
    arch, variant = (bad, "cpu") if column == "architecture" else ("x86_64", bad)
    with pytest.raises(CorruptSpoolFileError, match=f"invalid {column}"):
        _batch_of(arch, variant)
