"""Usable CPUs (affinity capped by a cgroup quota) and the release threads they allow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from etl.cpus import cgroup_cpu_limit, release_threads, usable_cpus


def _v2(root: Path, text: str) -> Path:
    (root / "cpu.max").write_text(text)
    return root


def _v1(root: Path, quota: str, period: str) -> Path:
    (root / "cpu").mkdir()
    (root / "cpu" / "cpu.cfs_quota_us").write_text(quota)
    (root / "cpu" / "cpu.cfs_period_us").write_text(period)
    return root


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("max 100000\n", None),
        ("100000 100000\n", 1.0),
        ("150000 100000", 1.5),
        ("50000 100000", 0.5),
        ("garbage", None),
        ("", None),
        ("-1 100000", None),
    ],
)
def test_cgroup_v2_quota(tmp_path: Path, text: str, limit: float | None) -> None:
    assert cgroup_cpu_limit(_v2(tmp_path, text)) == limit


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(_v1(tmp_path, "200000", "100000")) == 2.0


def test_cgroup_v1_without_quota(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(_v1(tmp_path, "-1", "100000")) is None


def test_no_cgroup_files_mean_no_limit(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(tmp_path) is None
    assert usable_cpus(tmp_path) == len(os.sched_getaffinity(0))


def test_a_quota_caps_the_cores_rounded_up(tmp_path: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    assert usable_cpus(_v2(tmp_path, "50000 100000")) == 1  # half a CPU is still one
    (tmp_path / "cpu.max").write_text("150000 100000")
    assert usable_cpus(tmp_path) == min(cores, 2)
    (tmp_path / "cpu.max").write_text(f"{(cores + 4) * 100000} 100000")
    assert usable_cpus(tmp_path) == cores  # a quota above the cores does not add any


@pytest.mark.parametrize(
    ("workers", "cpus", "threads"),
    [
        (4, 2, 2),  # the CPU-bound threads stop at the cores
        (8, 16, 8),  # never more than the fetch workers
        (4, 1, 2),  # at least two: one release's round trip overlaps another's artifacts
        (1, 1, 1),
        (1, 8, 1),
        (8, 4, 4),
    ],
)
def test_release_threads(workers: int, cpus: int, threads: int) -> None:
    assert release_threads(workers, cpus) == threads
