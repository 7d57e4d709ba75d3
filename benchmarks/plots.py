"""PNG plots for the benchmark report (matplotlib, Agg backend; plain dicts in).

Each function takes the medians the report already holds and returns the path written,
or ``None`` when matplotlib is missing (the report then says so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLORS = {
    "wheels-etl": "#1b7837",
    "accumulate-all": "#c51b7d",
    "per-release": "#2166ac",
}


def _plt() -> Any:
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def rss_vs_releases(
    series: dict[str, dict[int, list[float]]], path: Path, *, title: str = ""
) -> Path | None:
    """``series[approach][releases] = [peak RSS MB per repeat]``: median line, min-max bars."""
    plt = _plt()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, by_n in series.items():
        xs = sorted(by_n)
        if not xs:
            continue
        med = [_median(by_n[x]) for x in xs]
        lo = [m - min(by_n[x]) for m, x in zip(med, xs, strict=True)]
        hi = [max(by_n[x]) - m for m, x in zip(med, xs, strict=True)]
        ax.errorbar(
            xs, med, yerr=[lo, hi], marker="o", capsize=3, label=name, color=COLORS.get(name)
        )
        ax.annotate(
            f"{med[-1]:.0f} MB",
            (xs[-1], med[-1]),
            textcoords="offset points",
            xytext=(6, 0),
            fontsize=8,
            va="center",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("releases extracted (same artifact size)")
    ax.set_ylabel("peak RSS, MB (log)")
    ax.set_title(title or "Extract: peak memory vs number of releases")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def load_throughput(
    bars: list[tuple[str, float]],
    ceilings: dict[str, float],
    path: Path,
    *,
    unit: str = "MB of JSON / s",
    title: str = "",
) -> Path | None:
    """Horizontal bars (label, median throughput) with the server ceilings as lines."""
    plt = _plt()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(bars) + 1.6))
    labels = [b[0] for b in bars]
    values = [b[1] for b in bars]
    ys = range(len(bars))
    colors = [
        "#999999"
        if lbl.startswith("server COPY")
        else "#1b7837"
        if lbl.startswith("wheels-etl")
        else "#2166ac"
        for lbl in labels
    ]
    ax.barh(list(ys), values, color=colors)
    for y, v in zip(ys, values, strict=True):
        ax.text(v, y, f" {v:.1f}", va="center", fontsize=8)
    styles = ["--", ":", "-."]
    for i, (name, value) in enumerate(ceilings.items()):
        ax.axvline(value, color="black", linestyle=styles[i % 3], linewidth=1, label=name)
    ax.set_yticks(list(ys))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_title(title or "Load throughput (median) vs the server-side COPY ceiling")
    if ceilings:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def e2e_bars(rows: list[tuple[str, float, float]], path: Path) -> Path | None:
    """End-to-end ``(label, wall s, peak RSS MB)`` side by side."""
    plt = _plt()
    if plt is None:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 0.45 * len(rows) + 1.8))
    labels = [r[0] for r in rows]
    ys = list(range(len(rows)))
    colors = ["#1b7837" if lbl.startswith("wheels-etl") else "#b35806" for lbl in labels]
    for ax, idx, unit in ((a1, 1, "wall s"), (a2, 2, "peak RSS MB")):
        vals = [float(r[idx]) for r in rows]
        ax.barh(ys, vals, color=colors)
        for y, v in zip(ys, vals, strict=True):
            ax.text(v, y, f" {v:.0f}" if v >= 10 else f" {v:.1f}", va="center", fontsize=8)
        ax.set_yticks(ys)
        ax.set_yticklabels(labels if ax is a1 else [""] * len(ys), fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(unit)
    fig.suptitle("End to end (extract + load), medians")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return float("nan")
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
