"""The progress bar says what it counts, keeps "listed so far" apart from "done" until the
listing ends, and shows elapsed time and an ETA."""

from __future__ import annotations

import io

from etl.progress import Progress, clock


def test_listed_so_far_is_not_a_total() -> None:
    bar = Progress("extract", io.StringIO(), unit="releases", tty=True, timer=lambda: 0.0)
    text = bar.render(12, 40, 3 * 1024 * 1024, 65.0)
    assert "12 releases done, 40+ listed" in text
    assert "01:05 elapsed" in text and "eta" not in text and "3.0 MB fetched" in text


def test_eta_once_the_total_is_known() -> None:
    # A fixed clock: with time.monotonic(), (started + 100) - started can come out as
    # 99.999... and the ETA as 04:59.
    bar = Progress("extract", io.StringIO(), unit="releases", tty=True, timer=lambda: 7.0)
    bar.total_known()
    text = bar.render(10, 40, 0, 107.0)
    assert "10/40 releases" in text and "eta 05:00" in text  # 10 s each, 30 to go


def test_load_counts_files_and_json_bytes() -> None:
    bar = Progress("load", io.StringIO(), unit="files", tty=True, timer=lambda: 0.0)
    bar.total_known()
    text = bar.render(3, 4, 2048, 1.0)
    assert "3/4 files" in text and "of JSON" in text and "releases" not in text


def test_quiet_prints_nothing_and_a_pipe_gets_lines_only() -> None:
    out = io.StringIO()
    quiet = Progress("load", out, unit="files", tty=True, quiet=True)
    quiet.update(1, 2, 0)
    quiet.line("applied x")
    assert out.getvalue() == ""
    piped = Progress("load", out, unit="files", tty=False)
    piped.update(1, 2, 0)
    piped.line("applied x")
    assert out.getvalue() == "applied x\n"


def test_clock() -> None:
    assert clock(5) == "00:05" and clock(3725) == "1:02:05"
