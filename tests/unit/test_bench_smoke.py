"""Smoke test of the benchmark harness: modules import, the report renders from fake
numbers, profiles summarise, a measured subprocess reports back.  No timing assertions."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path


def _runs(walls: list[float], rss: float = 100.0) -> list[dict[str, object]]:
    return [
        {"wall_s": w, "peak_rss_mb": rss, "cpu_s": w / 2, "server_cpu_s": w / 3, "error": ""}
        for w in walls
    ]


def fake_results() -> dict[str, object]:
    load_runs = {
        name: _runs([w, w * 1.1])
        for name, w in {
            "ceiling-lz4": 1.0,
            "etl-w1-lz4": 1.1,
            "etl-cmd-lz4": 1.05,
            "executemany-lz4": 2.0,
            "ceiling-pglz": 2.0,
            "etl-w1-pglz": 2.3,
            "etl-w2-lz4": 1.5,
            "etl-w2-pglz": 1.5,
            "copy-text-lz4": 1.6,
            "copy-binary-lz4": 1.1,
            "etl-w1-lz4-parquet-zstd": 1.1,
            "etl-w1-lz4-parquet-none": 1.2,
        }.items()
    }
    return {
        "config": "fake",
        "command": "python -m benchmarks.run --fake",
        "started": "2026-01-01T00:00:00+00:00",
        "total_seconds": 60,
        "errors": {},
        "machine": {"cpu": "test", "cores": 2, "ram_gib": 1, "os": "test", "versions": {}},
        "sections": {
            "extract": {
                "runs": {
                    "wheels-etl": {"10": _runs([1.0], 100), "1000": _runs([9.0], 104)},
                    "accumulate-all": {"10": _runs([1.0], 60), "1000": _runs([9.0], 2500)},
                    "per-release": {"10": _runs([1.0], 50), "1000": _runs([9.0], 50)},
                },
                "trees": {"10": {"bytes": 1e7}, "1000": {"bytes": 1e9}},
                "shape": {"artifacts": 4, "packages": 10, "drops": 10},
                "profile": {
                    "samples": 10,
                    "wall_s": 0.2,
                    "self": [["f (etl/x.py)", 0.6]],
                    "inclusive": [["g (etl/x.py)", 1.0]],
                },
            },
            "load": {
                "totals": {
                    "files": 3,
                    "artifacts": 12,
                    "drops": 100,
                    "json_bytes": 5e7,
                    "file_bytes": 1e7,
                },
                "runs": load_runs,
                "checksums": {"a": "x", "b": "x"},
                "codecs": {
                    c: {"bytes": b, "encode_s": [0.1], "decode_s": [0.1]}
                    for c, b in (("lz4", 2e6), ("zstd", 1e6), ("none", 5e6))
                },
                "profile": {"error": "py-spy not installed"},
            },
            "smallfiles": {
                "totals": {
                    "files": 16,
                    "artifacts": 64,
                    "drops": 960,
                    "json_bytes": 1.3e7,
                    "file_bytes": 3.7e6,
                },
                "runs": {"ceiling-lz4": _runs([0.7, 0.8]), "etl-w1-lz4": _runs([0.8, 0.9])},
            },
            "bigload": {
                "files": {
                    "small": {"artifacts": 3, "json_bytes": 1e8, "file_bytes": 1e7},
                    "big": {"artifacts": 30, "json_bytes": 1e9, "file_bytes": 1e8},
                },
                "runs": {"small": _runs([1.0], 140), "big": _runs([9.0], 150)},
            },
            "dlt": {"skipped": "dlt is not installed"},
        },
    }


def test_modules_import() -> None:
    names = ("measure", "baselines", "ceiling", "benchdb", "spoolfiles", "plots", "dlt_peer")
    for name in (*names, "run", "report", "harness", "machine", "sourceserver", "profiling"):
        importlib.import_module(f"benchmarks.{name}")


def test_sections_are_found_in_order() -> None:
    from benchmarks.sections import all_sections

    names = ["extract", "load", "smallfiles", "bigload", "dlt", "workers", "gitlab", "s3"]
    names += ["answers"]
    assert [s.name for s in all_sections()] == names


def test_report_renders_fake_numbers(tmp_path: Path) -> None:
    from benchmarks.report import render_report

    text = render_report(fake_results(), tmp_path)
    assert "## Targets" in text
    assert "PASS" in text and "MISS" in text  # load vs ceiling passes; --workers 2 (1.33x) misses
    assert "Skipped: dlt is not installed" in text
    assert "accumulate-all" in text
    assert "## 2b. Load on small files" in text and "load-vs-ceiling-small" not in text
    if importlib.util.find_spec("matplotlib") is None:  # the bench extra is optional
        assert "(matplotlib missing: no plot)" in text
    else:
        assert (tmp_path / "rss_vs_releases.png").stat().st_size > 0
        assert (tmp_path / "load_throughput.png").stat().st_size > 0


def test_profile_summary() -> None:
    from benchmarks.profiling import summarize_profile

    raw = "main (a.py:1);f (etl/load.py:2) 3\nmain (a.py:1);g (etl/pgcopy.py:9) 1\n"
    out = summarize_profile(raw)
    assert out["samples"] == 4
    assert out["self"][0] == ("f (etl/load.py)", 0.75)


def test_measure_reports_a_subprocess() -> None:
    from benchmarks.measure import run_command, run_python

    m = run_python("benchmarks.measure:self_rss_kb")
    assert m.ok, m.error
    assert m.peak_rss_mb > 0
    bad = run_command(["python3", "-c", "raise SystemExit(3)"])
    assert bad.rc == 3 and not bad.ok


def test_report_shows_before_and_after(tmp_path: Path) -> None:
    from benchmarks.run import write_report

    out = tmp_path / "REPORT.md"
    first = fake_results()
    write_report(first, out)
    assert "## Before / after" not in out.read_text()  # no previous run yet
    second = fake_results()
    second["started"] = "2026-01-02T00:00:00+00:00"
    second["sections"]["bigload"]["runs"]["big"] = _runs([9.0], 300)  # type: ignore[index]
    write_report(second, out)
    text = out.read_text()
    assert "## Before / after" in text and "2026-01-01T00:00:00+00:00" in text
    table = text.split("## Before / after", 1)[1].split("\n## ", 1)[0]
    (row,) = [line for line in table.splitlines() if line.startswith("| `wheels-etl load` peak")]
    assert "| 150.00 MB | 300.00 MB | +100% | worse |" in row
    write_report(second, out)  # re-rendering the same run keeps the same "before"
    assert out.read_text() == text


def test_workers_section_renders(tmp_path: Path) -> None:
    from benchmarks.sections.workers import render

    runs = {
        "cli": [{"seconds": 10.0, "peak_rss_mb": 150.0}],
        "celery x2": [{"seconds": 5.0, "peak_rss_mb": 120.0, "per_worker_mb": [120.0, 110.0]}],
    }
    out = render({"releases": 8, "runs": runs}, tmp_path)
    text = "\n".join(out.body)
    assert "## 5. Celery workers" in text
    assert "| celery x2 | 5.0 | 2.00 | 120 |" in text
    (target,) = out.targets
    assert target.key == "worker-rss" and target.measured == 120.0 and target.ok
    assert out.metrics["worker-rss"].value == 120.0
