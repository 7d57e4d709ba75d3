"""etl.backoff: the one retry policy, driven by a fake clock (no sleeping, no timing)."""

from __future__ import annotations

import random
import threading

import pytest

from etl.backoff import Backoff, exponential_delay, sleep


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_delays_double_up_to_the_cap_without_jitter() -> None:
    b = Backoff(base=0.5, cap=10.0, jitter=False)
    assert [b.next_delay() for _ in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


@pytest.mark.parametrize("attempt", [1, 2, 3, 6, 12])
def test_equal_jitter_stays_in_the_upper_half(attempt: int) -> None:
    rng = random.Random(7)
    ceiling = min(4.0, 0.25 * 2 ** (attempt - 1))
    for _ in range(200):
        d = exponential_delay(attempt, base=0.25, cap=4.0, rng=rng)
        assert ceiling / 2 <= d <= ceiling


def test_attempts_count_the_first_one() -> None:
    b = Backoff(base=1.0, cap=30.0, attempts=3, jitter=False)
    assert b.next_delay() == 1.0
    assert b.next_delay() == 2.0
    assert b.next_delay() is None
    assert b.gave_up is not None and b.gave_up.reason == "attempts" and b.gave_up.attempts == 3


def test_minimum_raises_the_delay() -> None:
    b = Backoff(base=0.5, cap=10.0, jitter=False)
    assert b.next_delay(minimum=7.0) == 7.0
    assert b.next_delay(minimum=None) == 1.0
    assert b.next_delay(minimum=-3.0) == 2.0


def test_budget_from_start_gives_up_when_the_wait_would_overrun() -> None:
    clock = Clock()
    b = Backoff(base=1.0, cap=30.0, budget=10.0, jitter=False, clock=clock)
    b.start()
    clock.now += 8.0
    assert b.next_delay() == 1.0  # ends at 9 s
    clock.now += 1.0
    assert b.next_delay() is None  # 2 s more would end at 11 s
    assert b.gave_up is not None
    assert (b.gave_up.reason, b.gave_up.wanted, b.gave_up.budget) == ("budget", 2.0, 10.0)


def test_retry_after_past_the_budget_gives_up_even_when_clamping() -> None:
    clock = Clock()
    b = Backoff(base=1.0, cap=30.0, budget=10.0, jitter=False, clamp=True, clock=clock)
    assert b.next_delay(minimum=60.0) is None
    assert b.gave_up is not None and b.gave_up.wanted == 60.0


def test_clamp_shortens_to_what_is_left_and_the_budget_counts_from_the_first_failure() -> None:
    clock = Clock()
    b = Backoff(base=0.5, cap=10.0, budget=3.0, jitter=False, clamp=True, clock=clock)
    clock.now += 100.0  # before the first failure: does not count
    assert b.next_delay() == 0.5
    clock.now += 2.5
    assert b.next_delay() == 0.5  # 1.0 wanted, 0.5 left
    clock.now += 0.5
    assert b.next_delay() is None
    b.reset()
    assert b.gave_up is None and b.next_delay() == 0.5


def test_sleep_wakes_when_cancelled() -> None:
    cancel = threading.Event()
    threading.Timer(0.05, cancel.set).start()
    assert sleep(3600.0, cancel) is True
    assert sleep(0.0, threading.Event()) is False
    assert sleep(0.0) is False


def test_negative_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        Backoff(base=-1.0, cap=1.0)
