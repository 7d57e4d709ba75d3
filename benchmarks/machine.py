"""The machine a run measured on: CPU, RAM, OS, library and Postgres versions and settings."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from benchmarks.harness import REPO


def _cmd_out(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info(server_url: str) -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = 0.0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 1024 / 1024
    os_name = platform.platform()
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"') + f" (kernel {platform.release()})"
    versions: dict[str, str] = {"python": platform.python_version()}
    for mod in ("pyarrow", "psycopg", "duckdb", "requests", "dlt", "psutil", "matplotlib"):
        try:
            from importlib.metadata import version

            versions[mod] = version(mod)
        except Exception:
            versions[mod] = "not installed"
    try:
        import psycopg

        with psycopg.connect(server_url) as conn:
            row = conn.execute("SELECT version()").fetchone()
            versions["postgres"] = str(row[0]).split(" on ")[0] if row else "?"
            settings = {
                name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
                for name in ("shared_buffers", "max_wal_size", "synchronous_commit", "fsync")
            }
    except Exception as exc:
        versions["postgres"] = f"unavailable: {exc}"
        settings = {}
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_gib, 1),
        "os": os_name,
        "versions": versions,
        "pg_settings": settings,
        "loadavg_start": os.getloadavg(),
        "git": _cmd_out(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
    }
