"""Markdown building blocks and the statistics every section's report uses."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

MB = 1e6  # throughput and data sizes in decimal MB; RSS in MiB (as `ps` shows)
NAN = float("nan")

Run = dict[str, Any]  # one measured run (``Measurement.to_dict()`` plus extras)


def median(xs: list[float]) -> float:
    xs = [x for x in xs if x == x]  # drop NaN
    return statistics.median(xs) if xs else NAN


def ratios(runs: dict[str, list[Run]], num: str, den: str) -> list[float]:
    """Per-round wall ratio ``num / den`` (rounds paired by index, failed runs skipped)."""
    out = []
    for a, b in zip(runs.get(num, []), runs.get(den, []), strict=False):
        if not a.get("error") and not b.get("error") and b["wall_s"] > 0:
            out.append(a["wall_s"] / b["wall_s"])
    return out


def ok_runs(recs: list[Run]) -> list[Run]:
    return [r for r in recs if not r.get("error")]


def med(recs: list[Run], key: str) -> float:
    return median([float(r[key]) for r in ok_runs(recs) if r.get(key) is not None])


def fmt(x: float, nd: int = 1) -> str:
    if x != x:
        return "-"
    return f"{x:,.{nd}f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


@dataclass
class Target:
    """One pass/miss target of the report (shown in the Targets table and before/after)."""

    key: str
    what: str
    measured: float  # the median figure compared
    op: str  # ">=" or "<="
    limit: float
    unit: str = "x"
    note: str = ""

    @property
    def ok(self) -> bool | None:
        if self.measured != self.measured:  # NaN: not measured
            return None
        return self.measured >= self.limit if self.op == ">=" else self.measured <= self.limit

    def margin(self) -> str:
        if self.ok is None:
            return "not measured"
        up = self.op == ">="
        rel = self.measured / self.limit - 1 if up else self.limit / self.measured - 1
        word = "better than the target by" if rel >= 0 else "misses the target by"
        return f"{word} {abs(rel) * 100:.0f} %"

    def shown(self) -> str:
        if self.unit != "x":
            return f"{fmt(self.measured, 2)} {self.unit}"
        return fmt(self.measured, 2) + ("x" if self.op else "")
