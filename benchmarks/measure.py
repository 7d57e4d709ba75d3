"""Run one measured thing in its own process and report wall time, peak RSS and CPU.

Two ways in, both through a small wrapper process (``python -m benchmarks.measure``) so
every measurement starts from a fresh interpreter and ``getrusage`` sees only it:

* :func:`run_python` calls ``module:function(**kwargs)`` inside the wrapper.  The function
  returns a JSON-able dict (its own counters), and peak RSS is the wrapper's own
  high-water mark (``VmHWM``; ``ru_maxrss`` would include the RSS of the parent it was
  forked from, which Linux carries across ``execve``) -- exact, not sampled.
* :func:`run_command` runs an external command (e.g. ``wheels-etl load``) as the wrapper's
  child; peak RSS is ``RUSAGE_CHILDREN.ru_maxrss`` read by the wrapper after the wait
  (the largest single process of the command's tree).

In both cases the parent also samples (:mod:`benchmarks.poller`, every 20 ms) the *sum*
of RSS over the process tree (matters for multi-process loaders), and the CPU seconds of
the Postgres backends serving ``pg_database`` (found by their process title), so a run
reports client and server CPU -- figures that CPU contention from other users of the
machine hardly changes, unlike wall time.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.poller import Poller

MB = 1024 * 1024


@dataclass
class Measurement:
    label: str
    wall_s: float
    peak_rss_mb: float  # largest single process (exact, from getrusage)
    tree_rss_mb: float  # largest sum over the process tree (sampled)
    cpu_s: float  # user + system of the measured process(es)
    server_cpu_s: float  # Postgres backends of the measured database (sampled)
    rc: int
    result: dict[str, Any] = field(default_factory=dict)
    base_rss_mb: float = 0.0  # RSS right after imports (run_python only)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.error

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _spawn(
    wrapper_args: list[str],
    *,
    label: str,
    env: dict[str, str] | None,
    timeout: float | None,
    cwd: str | None,
    skip_root: bool,
    pg_database: str | None,
    log_path: Path | None,
) -> Measurement:
    with tempfile.NamedTemporaryFile(prefix="bench-result-", suffix=".json", delete=False) as tf:
        result_path = tf.name
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env["BENCH_RESULT_FILE"] = result_path
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.measure", *wrapper_args],
        env=full_env,
        cwd=cwd,
        stdout=out,
        stderr=subprocess.STDOUT if log_path else subprocess.PIPE,
    )
    poller = Poller(proc.pid, skip_root=skip_root, pg_database=pg_database)
    poller.start()
    error = ""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        error = f"timeout after {timeout}s"
    outer_wall = time.perf_counter() - t0
    poller.stop()
    if log_path:
        out.close()  # type: ignore[union-attr]
    try:
        data = json.loads(Path(result_path).read_text() or "{}")
    except (OSError, ValueError):
        data = {}
    finally:
        Path(result_path).unlink(missing_ok=True)
    if proc.returncode != 0 and not error:
        tail = (err or b"").decode(errors="replace")[-2000:] if err else ""
        if log_path and not tail:
            tail = log_path.read_text(errors="replace")[-2000:]
        error = data.get("error") or f"exit {proc.returncode}: {tail}"
    return Measurement(
        label=label,
        wall_s=float(data.get("wall_s", outer_wall)),
        peak_rss_mb=float(data.get("maxrss_kb", 0)) / 1024,
        tree_rss_mb=poller.tree_peak / MB,
        cpu_s=float(data.get("cpu_s", 0.0)),
        server_cpu_s=sum(poller.backend_cpu.values()),
        rc=int(data.get("rc", proc.returncode)),
        result=data.get("result") or {},
        base_rss_mb=float(data.get("base_rss_kb", 0)) / 1024,
        error=error,
    )


def run_python(
    target: str,
    kwargs: dict[str, Any] | None = None,
    *,
    label: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    pg_database: str | None = None,
    log_path: Path | None = None,
) -> Measurement:
    """Call ``module:function(**kwargs)`` in a fresh process; see the module docstring."""
    return _spawn(
        ["call", target, json.dumps(kwargs or {})],
        label=label or target,
        env=env,
        timeout=timeout,
        cwd=None,
        skip_root=False,
        pg_database=pg_database,
        log_path=log_path,
    )


def run_command(
    argv: list[str],
    *,
    label: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    cwd: str | None = None,
    pg_database: str | None = None,
    log_path: Path | None = None,
) -> Measurement:
    """Run ``argv`` as the wrapper's child; see the module docstring."""
    return _spawn(
        ["exec", "--", *argv],
        label=label or " ".join(argv),
        env=env,
        timeout=timeout,
        cwd=cwd,
        skip_root=True,
        pg_database=pg_database,
        log_path=log_path,
    )


def self_hwm_kb() -> int:
    """Peak RSS of this process's address space (``VmHWM``), in KiB.

    Unlike ``ru_maxrss`` it starts afresh at ``execve``: a process forked from a big parent
    does not inherit the parent's high-water mark.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:  # pragma: no cover
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def self_rss_kb() -> int:
    """Current RSS of this process in KiB (from /proc, no psutil needed)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except OSError:  # pragma: no cover
        return 0


# --- the wrapper side ----------------------------------------------------------------


def _write_result(data: dict[str, Any]) -> None:
    path = os.environ.get("BENCH_RESULT_FILE")
    if path:
        Path(path).write_text(json.dumps(data, default=str))


def _call(target: str, kwargs_json: str) -> int:
    module_name, _, func_name = target.partition(":")
    func = getattr(importlib.import_module(module_name), func_name)
    kwargs = json.loads(kwargs_json)
    base = self_rss_kb()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    rc = 0
    error = ""
    try:
        result = func(**kwargs) or {}
    except Exception as exc:  # reported to the parent, which marks the run failed
        import traceback

        traceback.print_exc()
        result, rc, error = {}, 1, f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    rc_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    _write_result(
        {
            "wall_s": wall,
            "maxrss_kb": max(self_hwm_kb(), rc_children.ru_maxrss),
            "base_rss_kb": base,
            "cpu_s": (r1.ru_utime - r0.ru_utime)
            + (r1.ru_stime - r0.ru_stime)
            + rc_children.ru_utime
            + rc_children.ru_stime,
            "rc": rc,
            "error": error,
            "result": result,
        }
    )
    return rc


def _exec(argv: list[str]) -> int:
    t0 = time.perf_counter()
    rc = subprocess.call(argv)
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    _write_result(
        {
            "wall_s": wall,
            "maxrss_kb": ru.ru_maxrss,
            "cpu_s": ru.ru_utime + ru.ru_stime,
            "rc": rc,
            "error": "" if rc == 0 else f"{argv[0]} exited {rc}",
        }
    )
    return rc


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "call":
        return _call(argv[1], argv[2])
    if len(argv) >= 3 and argv[0] == "exec" and argv[1] == "--":
        return _exec(argv[2:])
    print("usage: python -m benchmarks.measure call MODULE:FUNC JSON | exec -- CMD...")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
