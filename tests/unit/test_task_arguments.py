"""Task arguments from the broker are checked with the rules their values have everywhere
else (issue 23, item 8); the worker-level test is in tests/integration/test_workers_hostile.py."""

from __future__ import annotations

from typing import Any

import pytest

from etl.workers.arguments import (
    TaskArgumentError,
    check_file,
    check_run_id,
    listing_args,
    release_args,
)

GOOD_FILE = "rhai~3.0.0~20261001T120000Z~36d678f08ba7019f.parquet"


@pytest.mark.parametrize(
    "name",
    [
        "..",
        ".",
        "x" * 300,
        "",
        "../ready/" + GOOD_FILE,
        "/etc/passwd",
        GOOD_FILE + "\x00",
        "rhai~3.0.0~20261399T120000Z~36d678f08ba7019f.parquet",  # no 99th day
        7,
        None,
    ],
)
def test_bad_file_names_are_refused(name: Any) -> None:
    with pytest.raises(TaskArgumentError) as info:
        check_file(name)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def test_a_spool_name_passes() -> None:
    assert check_file(GOOD_FILE) == GOOD_FILE


@pytest.mark.parametrize(
    "data",
    [
        {"product": "../../x", "version": "1.0", "updated_at": None, "url": "u"},
        {"product": "rhai", "version": "..", "updated_at": None, "url": "u"},
        {"product": "rhai", "version": "1.0", "updated_at": "yesterday", "url": "u"},
        {"product": "rhai", "version": "1.0", "updated_at": "2026-10-01T12:00:00", "url": "u"},
        {"version": "1.0"},
        ["rhai", "1.0"],
    ],
)
def test_bad_releases_are_refused(data: Any) -> None:
    with pytest.raises(TaskArgumentError):
        release_args(data)


def test_a_release_passes() -> None:
    data = {"product": "rhai", "version": "3.0.0", "updated_at": "2026-10-01T12:00:00+00:00"}
    assert release_args(data) is data


@pytest.mark.parametrize(
    ("run_id", "products", "full"),
    [
        ("../x", [], False),
        ("r1", ["../../x"], False),
        ("r1", "rhai", False),
        ("r1", [], "yes"),
    ],
)
def test_bad_listing_arguments_are_refused(run_id: Any, products: Any, full: Any) -> None:
    with pytest.raises(TaskArgumentError):
        listing_args(run_id, products, full)


def test_run_ids_of_enqueue_and_reconcile_pass() -> None:
    assert check_run_id("20261207T211013-1a2b3c4d") and check_run_id("reconcile")
    listing_args("20261207T211013-1a2b3c4d", ["rhai"], True)
