"""REPORT.md from a run's results: header, targets, before/after, the sections, findings.

The findings are hand-written prose in ``benchmarks/FINDINGS.md`` (kept on re-render).
Every run's headline numbers (each target, plus what a section adds) are stored in
``benchmarks/REPORT.json`` per configuration, with the run before it, so the report can show
a before/after table against the previous run of the same configuration.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.mdtable import Target, fmt, table
from benchmarks.sections import Metric, all_sections

FINDINGS = Path(__file__).resolve().parent / "FINDINGS.md"

Numbers = dict[str, Any]  # {"started", "config", "git", "command", "metrics": {key: Metric}}
History = dict[str, dict[str, Numbers | None]]  # config -> {"current": .., "previous": ..}


@dataclass
class Report:
    text: str
    numbers: Numbers


def _loadavg(v: Any) -> str:
    if not v:
        return "?"
    return " ".join(f"{x:.2f}" for x in v)


def load_history(path: Path) -> History:
    if not path.exists():
        return {}
    data: History = json.loads(path.read_text())
    return data


def previous_numbers(history: History, res: dict[str, Any]) -> Numbers | None:
    """The run before ``res`` in the same configuration (re-rendering keeps its 'before')."""
    entry = history.get(str(res.get("config")))
    if not entry:
        return None
    current = entry.get("current")
    if current and current.get("started") == res.get("started"):
        return entry.get("previous")
    return current


def record(history: History, numbers: Numbers) -> History:
    """``history`` with ``numbers`` as the current run of its configuration."""
    config = str(numbers.get("config"))
    entry = history.get(config) or {}
    current = entry.get("current")
    if current and current.get("started") == numbers.get("started"):
        previous = entry.get("previous")
    else:
        previous = current
    return {**history, config: {"current": numbers, "previous": previous}}


def before_after(previous: Numbers | None, numbers: Numbers) -> list[str]:
    if previous is None:
        return []
    before: dict[str, Any] = previous.get("metrics", {})
    after: dict[str, Any] = numbers.get("metrics", {})
    rows = []
    for key in [*after, *(k for k in before if k not in after)]:
        b, a = before.get(key), after.get(key)
        info = a or b
        assert info is not None
        bv = float(b["value"]) if b else float("nan")
        av = float(a["value"]) if a else float("nan")
        change = av / bv - 1 if bv == bv and av == av and bv else float("nan")
        if change != change or abs(change) < 0.005:
            verdict = "-" if change != change else "same"
        else:
            up = info["better"] == "higher"
            verdict = "better" if (change > 0) == up else "worse"
        unit = " MB" if info["unit"] == "MB" else "x" if info["unit"] == "x" else f" {info['unit']}"
        rows.append(
            [
                info["what"],
                fmt(bv, 2) + unit if bv == bv else "-",
                fmt(av, 2) + unit if av == av else "-",
                "-" if change != change else "0 %" if verdict == "same" else f"{change:+.0%}",
                verdict,
            ]
        )
    return [
        "## Before / after",
        "",
        f"Before: the previous {previous.get('config')} run ({previous.get('started', '?')},"
        f" git {previous.get('git', '?')}); after: this run. Headline numbers are stored in"
        " `benchmarks/REPORT.json`.",
        "",
        table(["number", "before", "after", "change", "verdict"], rows)
        if rows
        else "No number in common.",
        "",
    ]


def build_report(res: dict[str, Any], out_dir: Path, previous: Numbers | None = None) -> Report:
    sec = res.get("sections", {})
    mach = res.get("machine", {})
    ver = mach.get("versions", {})
    targets: list[Target] = []
    body: list[str] = []
    metrics: dict[str, Metric] = {}
    for section in all_sections():
        data = sec.get(section.name)
        if not data:
            continue
        rendered = section.render(data, out_dir)
        targets += rendered.targets
        body += rendered.body
        metrics.update(rendered.metrics)
    numbers: Numbers = {
        "config": res.get("config"),
        "started": res.get("started"),
        "git": mach.get("git"),
        "command": res.get("command"),
        "metrics": {k: asdict(m) for k, m in metrics.items() if m.value == m.value},
    }
    head = [
        "# wheels-etl benchmark report",
        "",
        f"Generated {res.get('started', '?')} by `{res.get('command', 'python -m benchmarks.run')}`"
        f" ({res.get('config')} configuration, {res.get('total_seconds', 0) / 60:.1f} min"
        f" in total, git {mach.get('git', '?')}). Regenerate with `make bench` (full) or"
        " `make bench-quick`; see `benchmarks/README.md` for how it measures.",
        "",
        "## Machine",
        "",
        f"* CPU: {mach.get('cpu')}, {mach.get('cores')} cores; RAM {mach.get('ram_gib')} GiB;"
        f" {mach.get('os')}",
        f"* Load average at start / end: {_loadavg(mach.get('loadavg_start'))} /"
        f" {_loadavg(mach.get('loadavg_end'))} (the machine is shared: absolute seconds are"
        " noisy, ratios are taken within a round and medians quoted)",
        "* Versions: " + ", ".join(f"{k} {v}" for k, v in ver.items()),
        "* Postgres settings: "
        + ", ".join(f"{k}={v}" for k, v in (mach.get("pg_settings") or {}).items()),
        "",
        "## Targets",
        "",
        table(
            ["target", "measured (median)", "target", "result", "margin", "detail"],
            [
                [
                    t.what,
                    t.shown(),
                    f"{t.op} {fmt(t.limit, 2)}{'x' if t.unit == 'x' else ' ' + t.unit}",
                    "PASS" if t.ok else "MISS" if t.ok is False else "n/a",
                    t.margin(),
                    t.note,
                ]
                for t in targets
            ],
        )
        if targets
        else "No target measured.",
        "",
    ]
    if res.get("config") == "quick":
        head += [
            "*Quick run*: small sizes and one round. The targets are defined for the full"
            " sizes (1,000 releases, a 1 GB release, a data set large enough for dlt's buffers"
            " to matter), so the size-dependent ones can MISS here; see the committed full"
            " report.",
            "",
        ]
    misses = [t for t in targets if t.ok is False]
    if misses:
        head += [
            "Missed: "
            + "; ".join(f"**{t.key}** ({t.margin()})" for t in misses)
            + ". See the sections below and *Findings*.",
            "",
        ]
    if res.get("errors"):
        head += [
            "Sections that failed: " + ", ".join(f"{k}: `{v}`" for k, v in res["errors"].items()),
            "",
        ]
    head += before_after(previous, numbers)
    findings = res.get("findings") or FINDINGS.read_text()
    tail = ["## Findings", "", findings.strip(), ""] if findings.strip() else []
    return Report("\n".join(head + body + tail) + "\n", numbers)


def render_report(res: dict[str, Any], out_dir: Path, previous: Numbers | None = None) -> str:
    return build_report(res, out_dir, previous).text
