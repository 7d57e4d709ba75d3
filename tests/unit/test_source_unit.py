"""Pure helpers of the source transport: no sockets here."""

from __future__ import annotations

import os
import random
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from etl.backoff import exponential_delay
from etl.errors import ConfigError
from etl.source import ByteBudget, Document, Validators, normalize_base
from etl.source.files import file_validators
from etl.source.origins import origin, same_origin
from etl.source.responses import (
    Decision,
    classify_status,
    content_length,
    parse_retry_after,
    unchanged,
)
from etl.source.stats import Counters

NOW = datetime(2026, 10, 1, 12, 0, 0, tzinfo=UTC)


# --- statuses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "decision"),
    [
        (200, Decision.OK),
        (203, Decision.OK),
        (206, Decision.FATAL),
        (304, Decision.NOT_MODIFIED),
        (301, Decision.REDIRECT),
        (302, Decision.REDIRECT),
        (303, Decision.REDIRECT),
        (307, Decision.REDIRECT),
        (308, Decision.REDIRECT),
        (300, Decision.FATAL),
        (429, Decision.RETRY),
        (502, Decision.RETRY),
        (503, Decision.RETRY),
        (504, Decision.RETRY),
        (400, Decision.FATAL),
        (401, Decision.FATAL),
        (403, Decision.FATAL),
        (404, Decision.FATAL),
        (408, Decision.FATAL),
        (500, Decision.FATAL),
        (501, Decision.FATAL),
    ],
)
def test_classify_status(status: int, decision: Decision) -> None:
    assert classify_status(status) is decision


# --- Retry-After ------------------------------------------------------------------------


def test_retry_after_seconds() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("120") == 120.0


def test_retry_after_http_date() -> None:
    later = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=NOW) == 30.0
    earlier = format_datetime(NOW - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(earlier, now=NOW) == 0.0
    # the obsolete RFC 850 form is an HTTP date too
    assert parse_retry_after("Thursday, 01-Oct-26 12:01:00 GMT", now=NOW) == 60.0


@pytest.mark.parametrize("value", [None, "", "  ", "-1", "1.5", "soon", "Mon, 99 Foo 2026"])
def test_retry_after_unusable(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


# --- backoff ---------------------------------------------------------------------------


def test_backoff_bounds_grow_and_are_capped() -> None:
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(4.0, 0.25 * 2 ** (attempt - 1))
        for _ in range(200):
            delay = exponential_delay(attempt, base=0.25, cap=4.0, rng=rng)
            assert ceiling / 2 <= delay <= ceiling


def test_backoff_is_jittered() -> None:
    rng = random.Random(1)
    delays = {exponential_delay(3, base=1.0, cap=30.0, rng=rng) for _ in range(20)}
    assert len(delays) > 10


# --- origins (redaction: test_redact.py) ---------------------------------------


def test_origin_fills_default_ports_and_lowercases() -> None:
    assert origin("HTTPS://Example.ORG/a") == ("https", "example.org", 443)
    assert origin("http://example.org:8080/") == ("http", "example.org", 8080)
    assert same_origin("http://example.org/a", "http://example.org:80/b?c")
    assert same_origin("https://u:p@example.org/a", "https://example.org/")


@pytest.mark.parametrize(
    "other",
    [
        "https://example.org/x",  # scheme
        "http://example.org:8080/x",  # port
        "http://cdn.example.org/x",  # host
        "http://example.org.evil.net/x",
        "http://evil.net/http://example.org/",
    ],
)
def test_different_origins(other: str) -> None:
    assert not same_origin("http://example.org/base/", other)


# --- base URLs ------------------------------------------------------------------------


def test_normalize_http_base() -> None:
    assert normalize_base("https://h.org/coll") == ("https://h.org/coll/", None)
    assert normalize_base("https://h.org") == ("https://h.org/", None)
    assert normalize_base("http://h.org/coll/#x") == ("http://h.org/coll/", None)
    base, creds = normalize_base("https://bob:p%40ss@h.org/c/")
    assert base == "https://h.org/c/"
    assert creds == ("bob", "p@ss")


def test_normalize_directory_bases(tmp_path: Path) -> None:
    expected = tmp_path.resolve().as_uri() + "/"
    assert normalize_base(str(tmp_path)) == (expected, None)
    assert normalize_base(str(tmp_path) + "/") == (expected, None)
    assert normalize_base(tmp_path.as_uri()) == (expected, None)
    assert normalize_base("file://localhost" + str(tmp_path)) == (expected, None)
    old = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert normalize_base("sub") == ((tmp_path / "sub").resolve().as_uri() + "/", None)
    finally:
        os.chdir(old)


@pytest.mark.parametrize("bad", ["", "   ", "ftp://h.org/x", "s3://bucket/x", "http:///nohost"])
def test_bad_bases(bad: str) -> None:
    with pytest.raises(ConfigError):
        normalize_base(bad)


# --- small pieces ---------------------------------------------------------------------


def test_content_length() -> None:
    assert content_length("123") == 123
    assert content_length(" 7 ") == 7
    assert content_length(None) is None
    assert content_length("12, 12") is None
    assert content_length("-1") is None


def test_file_validators_and_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    os.utime(path, (1_800_000_000, 1_800_000_000))
    st = path.stat()
    v = file_validators(st)
    assert v.etag and v.etag.startswith('"') and v.last_modified
    assert v.last_modified.endswith("GMT")
    assert unchanged(v, v, st.st_mtime)
    assert unchanged(Validators(etag="W/" + (v.etag or "")), v, st.st_mtime)
    assert not unchanged(Validators(etag='"x"', last_modified=v.last_modified), v, st.st_mtime)
    assert unchanged(Validators(last_modified=v.last_modified), v, st.st_mtime)
    assert not unchanged(Validators(last_modified=v.last_modified), v, st.st_mtime + 5)
    assert not unchanged(Validators(last_modified="garbage"), v, st.st_mtime)
    assert not unchanged(Validators(), v, st.st_mtime)


def test_counters_are_thread_safe() -> None:
    counters = Counters()

    def bump() -> None:
        for _ in range(10_000):
            counters.add("requests")

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counters.snapshot()["requests"] == 80_000


# --- the byte budget (single-threaded rules) -------------------------------------------


def test_budget_counts_and_release_is_idempotent() -> None:
    budget = ByteBudget(100)
    r = budget.open()
    r.reserve(40)
    r.top_up(60)
    r.top_up(10)  # already holds more
    assert (budget.in_use, budget.peak) == (60, 60)
    r.finish()
    r.release()
    r.release()
    assert (budget.in_use, budget.peak) == (0, 60)
    with pytest.raises(ValueError, match="already released"):
        r.reserve(1)


def test_budget_reset_keeps_the_reservation_open() -> None:
    budget = ByteBudget(100)
    r = budget.open()
    r.reserve(70)
    r.reset()
    assert budget.in_use == 0
    r.reserve(90)
    assert budget.in_use == 90
    r.release()


def test_budget_lone_document_larger_than_the_cap_goes_through() -> None:
    budget = ByteBudget(100)
    r = budget.open()
    r.reserve(1000)
    assert budget.in_use == 1000 and budget.overdrafts == 1
    r.release()
    assert budget.in_use == 0


def test_budget_waits_for_a_release_then_proceeds() -> None:
    budget = ByteBudget(100, stall_grace=60.0)
    held = budget.open()
    held.reserve(80)
    held.finish()
    done = threading.Event()

    def second() -> None:
        r = budget.open()
        r.reserve(50)  # must wait for `held`
        done.set()
        r.release()

    t = threading.Thread(target=second, daemon=True)
    t.start()
    assert not done.wait(0.2)  # still waiting: 80 + 50 > 100, and the holder is not stalled
    held.release()
    assert done.wait(30)
    t.join(30)
    assert budget.peak <= 100 and budget.overdrafts == 0


def test_budget_rejects_a_non_positive_cap() -> None:
    with pytest.raises(ValueError):
        ByteBudget(0)


def test_document_release_is_idempotent() -> None:
    budget = ByteBudget(10)
    r = budget.open()
    r.reserve(5)
    doc = Document("file:///x", b"12345", Validators(), r)
    doc.release()
    doc.release()
    assert budget.in_use == 0
    Document("file:///y", b"", Validators()).release()  # no reservation: a no-op
