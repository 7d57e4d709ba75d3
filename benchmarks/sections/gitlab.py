"""Section 6: GitLab tarballs, extract's throughput against gunzip + sha256 (issue 21).

The measurement is :mod:`benchmarks.gitlab_tarball` (also runnable on its own); the
target is the issue's: at least 0.8 of the machine's own gunzip + sha256 of the same
bytes, with the default decoder (zlib-ng).  Ratios in wall seconds and in CPU seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import gitlab_tarball
from benchmarks.harness import Bench
from benchmarks.mdtable import Target
from benchmarks.sections import Rendered, Section, target_metrics

TARGET = 0.8


def measure(bench: Bench) -> dict[str, Any]:
    quick = bench.cfg.name == "quick"
    return gitlab_tarball.measure(bench.work / "gitlab", 120 if quick else 400, 1 if quick else 3)


def render(data: dict[str, Any], out_dir: Path) -> Rendered:
    if "ratios" not in data:
        err = data.get("error")
        return Rendered(body=["## 6. GitLab tarballs", "", f"Section failed: `{err}`", ""])
    ratios = data["ratios"]
    targets = [
        Target(
            "gitlab_cpu_ratio",
            "GitLab tarball extract vs gunzip + sha256 (CPU seconds, zlib-ng)",
            ratios.get("extract-zlib_ng-cpu_s", float("nan")),
            ">=",
            TARGET,
        ),
        Target(
            "gitlab_wall_ratio",
            "GitLab tarball extract vs gunzip + sha256 (wall seconds, zlib-ng)",
            ratios.get("extract-zlib_ng-wall_s", float("nan")),
            ">=",
            TARGET,
            note="noisy on a shared machine",
        ),
    ]
    body = [
        "## 6. GitLab tarballs: extract vs gunzip + sha256",
        "",
        "One release with one wheels tarball, served by the tests' GitLab in another "
        "process; the limit reads the same file and gunzips + hashes it in one process "
        "(standard zlib), no HTTP.",
        "",
        *gitlab_tarball.summary(data),
        "",
    ]
    return Rendered(targets=targets, body=body, metrics=target_metrics(targets))


SECTION = Section(name="gitlab", order=60, measure=measure, render=render)
