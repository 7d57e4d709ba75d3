"""py-spy profiles: summarise collapsed stacks, render them as a report table."""

from __future__ import annotations

import re
from typing import Any

from benchmarks.mdtable import fmt, table

_GENERIC = re.compile(
    r"\((threading\.py|thread\.py|<frozen [^)]*|measure\.py|wheels-etl|cli\.py|run\.py)\)$"
    r"|^<module>|^_WorkItem\.run|^_worker"
)


def summarize_profile(raw: str, top: int = 14) -> dict[str, Any]:
    """py-spy ``raw`` (collapsed stacks) → self time and inclusive time per function."""
    self_t: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        leaf = _frame_name(frames[-1])
        self_t[leaf] = self_t.get(leaf, 0) + n
        for name in {_frame_name(f) for f in frames}:
            if not _GENERIC.search(name):
                incl[name] = incl.get(name, 0) + n

    def top_of(d: dict[str, int]) -> list[tuple[str, float]]:
        return [(k, v / total) for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:top]]

    return {"samples": total, "self": top_of(self_t), "inclusive": top_of(incl)}


def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` → ``func (file.py)``; keeps etl/ paths recognisable."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    short = (
        "/".join(path.split("/")[-2:])
        if "etl/" in path or "benchmarks/" in path
        else (path.split("/")[-1])
    )
    return f"{name} ({short})" if short else name


def profile_md(title: str, prof: dict[str, Any] | None) -> list[str]:
    if not prof:
        return []
    if "self" not in prof:
        return [f"{title}: profiling failed: {prof.get('error')}", ""]
    wall = prof.get("wall_s") or float("nan")
    held = prof["samples"] / 100 / wall if wall == wall else float("nan")
    return [
        f"### {title} (py-spy)",
        "",
        f"`py-spy record --gil -r 100 -- {prof.get('command', '')}`: {prof['samples']} samples"
        f" of the thread holding the GIL in {fmt(wall)} s of wall, i.e. Python code ran"
        f" {fmt(held * 100, 0)} % of the time (the rest: C code without the GIL, I/O,"
        " waiting for Postgres).",
        "",
        table(
            ["self time (top of stack)", "share", "inclusive time", "share"],
            [
                [f"`{a[0]}`", f"{a[1] * 100:.1f} %", f"`{b[0]}`", f"{b[1] * 100:.1f} %"]
                for a, b in zip(prof["self"], prof["inclusive"], strict=False)
            ],
        ),
        "",
    ]
