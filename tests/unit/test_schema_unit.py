"""Pure decisions of schema and load: no database needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from etl import load
from etl.db import releases, schema
from etl.errors import ConfigError
from etl.spooling import format as fmt

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def meta(updated: datetime, extracted: datetime, sha: str = "a" * 64) -> fmt.FileMeta:
    return fmt.FileMeta(1, "p", "r", updated, extracted, "u", sha, 1, 1, 1)


def test_lz4_falls_back_to_pglz_without_server_support() -> None:
    assert schema.choose_compression("auto", supported=False, recorded=None) == "pglz"
    assert schema.choose_compression("auto", supported=False, recorded="lz4") == "pglz"
    assert schema.choose_compression("auto", supported=True, recorded=None) == "lz4"
    assert schema.choose_compression("auto", supported=True, recorded="pglz") == "pglz"
    assert schema.choose_compression("pglz", supported=True, recorded="lz4") == "pglz"
    with pytest.raises(ConfigError, match="not built with lz4"):
        schema.choose_compression("lz4", supported=False, recorded=None)
    with pytest.raises(ConfigError, match="unknown compression"):
        schema.choose_compression("zstd", supported=True, recorded=None)


def test_migrations_are_ordered_and_unique() -> None:
    versions = [v for v, _, _ in schema.MIGRATIONS]
    assert versions == sorted(set(versions)) and versions[0] == 1
    assert versions[-1] == schema.SCHEMA_VERSION


def test_decide() -> None:
    new = meta(T0 + timedelta(days=1), T0 + timedelta(days=1), sha="b" * 64)
    assert releases.decide(new, None) == "applied"
    assert releases.decide(new, ("b" * 64, T0, T0)) == "unchanged"
    assert releases.decide(new, ("a" * 64, T0, T0)) == "applied"
    old = meta(T0, T0)
    later = T0 + timedelta(hours=1)
    assert releases.decide(old, ("c" * 64, later, later)) == "superseded"
    # same updated_at: the later extraction wins
    assert releases.decide(old, ("c" * 64, T0, later)) == "superseded"
    assert releases.decide(meta(T0, later), ("c" * 64, T0, T0)) == "applied"
    assert releases.decide(old, ("c" * 64, T0, None)) == "applied"


def test_report_ok() -> None:
    assert load.LoadReport().ok
    assert not load.LoadReport(failed=[("f", "why")]).ok
    assert not load.LoadReport(requeued=["f"]).ok
    assert not load.LoadReport(error="gave up").ok
    assert str(load.LoadEvent("applied", "f.parquet", rows=3)) == "applied f.parquet (3 rows)"
