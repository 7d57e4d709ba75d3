"""Run a command as in the worker pod: a memory cgroup of 512 MiB and one CPU.

``deploy/kubernetes`` gives a worker ``limits: {memory: 512Mi, cpu: "1"}``; a process
over the memory limit is killed by the kernel's OOM killer, as the pod's would be.  The
test makes a cgroup of its own under the one it runs in (cgroup v2, or the v1 memory and
cpu hierarchies), moves the child into it before ``exec`` and removes it afterwards; it
never touches any other cgroup.  The peak memory the kernel accounted (``memory.peak`` /
``memory.max_usage_in_bytes``) and whether the OOM killer struck are read back.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

POD_MEMORY = 512 * 1024 * 1024
CGROUP = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class PodResult:
    returncode: int
    stdout: str
    stderr: str
    peak_bytes: int  # the cgroup's peak memory (what the kernel charged it, from the fork)
    oom_killed: bool

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / 1e6


def _own(controller: str) -> Path | None:
    """This process's cgroup folder for a v1 ``controller`` (or v2 with ``""``)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if (controller and controller in names.split(",")) or (not controller and names == ""):
            return (CGROUP / controller if controller else CGROUP) / path.lstrip("/")
    return None


class _Cgroup:
    """A fresh cgroup (v1 memory + cpu, or v2) limited like the pod."""

    def __init__(self, memory: int, cpus: float) -> None:
        name = f"wheels-etl-test-{uuid.uuid4().hex[:8]}"
        self.dirs: list[Path] = []
        self.v2 = (CGROUP / "cgroup.controllers").is_file()
        if self.v2:
            parent = _own("")
            assert parent is not None, "no cgroup v2 path in /proc/self/cgroup"
            self.mem = self._make(parent / name)
            (self.mem / "memory.max").write_text(str(memory))
            with contextlib.suppress(OSError):
                (self.mem / "memory.swap.max").write_text("0")
            with contextlib.suppress(OSError):
                (self.mem / "cpu.max").write_text(f"{int(cpus * 100000)} 100000")
            return
        mem_parent = _own("memory")
        assert mem_parent is not None and mem_parent.is_dir(), "no cgroup v1 memory hierarchy"
        self.mem = self._make(mem_parent / name)
        (self.mem / "memory.limit_in_bytes").write_text(str(memory))
        with contextlib.suppress(OSError):  # no swap accounting: nothing to limit
            (self.mem / "memory.memsw.limit_in_bytes").write_text(str(memory))
        cpu_parent = _own("cpu")
        if cpu_parent is not None and cpu_parent.is_dir():
            with contextlib.suppress(OSError):
                cpu = self._make(cpu_parent / name)
                (cpu / "cpu.cfs_period_us").write_text("100000")
                (cpu / "cpu.cfs_quota_us").write_text(str(int(cpus * 100000)))

    def _make(self, path: Path) -> Path:
        path.mkdir()
        self.dirs.append(path)
        return path

    def enter(self) -> None:
        """In the child, before exec: join every cgroup made."""
        for d in self.dirs:
            (d / "cgroup.procs").write_text(str(os.getpid()))

    def peak(self) -> int:
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        with contextlib.suppress(OSError, ValueError):
            return int((self.mem / name).read_text())
        return 0

    def oom_killed(self) -> bool:
        if self.v2:
            events = (self.mem / "memory.events").read_text().split()
            pairs = dict(zip(events[::2], events[1::2], strict=True))
            return int(pairs.get("oom_kill", "0")) > 0
        text = (self.mem / "memory.oom_control").read_text().split()
        pairs = dict(zip(text[::2], text[1::2], strict=True))
        return int(pairs.get("oom_kill", "0")) > 0

    def remove(self) -> None:
        for d in reversed(self.dirs):
            for _ in range(50):  # the killed child's memory is released asynchronously
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


def run_in_pod(
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    memory: int = POD_MEMORY,
    cpus: float = 1.0,
    timeout: float = 300,
    cwd: Path | None = None,
) -> PodResult:
    """Run ``args`` in a fresh cgroup limited to ``memory`` bytes and ``cpus`` CPUs."""
    group = _Cgroup(memory, cpus)
    try:
        proc = subprocess.Popen(
            list(args),
            env=dict(env),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=group.enter,  # no threads are started by this helper
        )
        out: dict[str, str] = {}
        readers = [
            threading.Thread(target=lambda k=k, f=f: out.__setitem__(k, f.read()), daemon=True)
            for k, f in (("stdout", proc.stdout), ("stderr", proc.stderr))
        ]
        for t in readers:
            t.start()
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status = os.waitpid(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        for t in readers:
            t.join()
        return PodResult(
            proc.returncode,
            out.get("stdout", ""),
            out.get("stderr", ""),
            group.peak(),
            group.oom_killed(),
        )
    finally:
        group.remove()
