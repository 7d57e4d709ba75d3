"""How many CPUs this process may really use: the cores it may run on, capped by a
container's CPU quota (a Kubernetes ``limits.cpu: 1`` on a 16-core node is one CPU, while
``os.cpu_count()`` says 16).

Read from cgroup v2 (``cpu.max``) or v1 (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``);
no quota, or nothing readable, means no cap.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _quota(quota: str, period: str) -> float | None:
    """CPUs a quota grants (``quota / period``), or None for no quota."""
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None  # "max" (v2) or garbage
    return q / p if q > 0 and p > 0 else None  # v1 writes -1 for no quota


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup, in CPUs (``1.5``), or None when unlimited."""
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        parts = v2.split()
        return _quota(parts[0], parts[1]) if len(parts) == 2 else None
    quota = _read(root / "cpu" / "cpu.cfs_quota_us")
    period = _read(root / "cpu" / "cpu.cfs_period_us")
    return _quota(quota, period) if quota is not None and period is not None else None


def usable_cpus(root: Path = CGROUP_ROOT) -> int:
    """Cores this process may run on (its affinity), capped by its cgroup's quota rounded
    up; at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cores = min(cores, math.ceil(limit))
    return max(1, cores)


def release_threads(workers: int, cpus: int | None = None) -> int:
    """Release threads for ``workers`` fetch threads: no more than the usable CPUs
    (:func:`usable_cpus`), at least two, never more than ``workers``: extract's release
    threads, whose work once their files are in is CPU-bound."""
    cpus = usable_cpus() if cpus is None else cpus
    return max(1, min(workers, max(2, cpus)))
