"""The parent's sampler during a measured run: RSS summed over the measured process tree,
and the CPU seconds of the Postgres backends serving the measured database.

It shares the machine with what it measures (two cores here), so it is kept cheap:

* the tree's members are looked up every tick for the first :data:`TREE_EVERY` ticks, then
  every :data:`TREE_EVERY` (``children()`` reads ``/proc/*/stat`` of every process); their
  RSS is read every tick (``POLL_S``);
* backends are found by their process title, but each process is classified once:
  only processes not yet titled by Postgres (a backend just forked still shows the
  postmaster's command line) are looked at again.  New backends are looked for every
  :data:`SCAN_EVERY` ticks; the CPU times of those found are read every tick and once
  more at the end.  A backend's cumulative CPU survives in the last reading taken before
  it exited, so what it did in its last tick (20 ms at most) is not counted.

``python -m benchmarks.poller`` measures what it costs (5 s): 0.02-0.03 CPU-s per second on
this 2-core machine, against 0.15-0.17 for the sampler it replaced (``children(recursive=
True)`` every tick and ``process_iter(["name", "cmdline"])`` every fifth).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

try:  # psutil is in the bench extra; without it only getrusage figures are reported
    import psutil
except ImportError:  # pragma: no cover
    psutil = None

POLL_S = 0.02
TREE_EVERY = 10  # 200 ms
SCAN_EVERY = 5  # 100 ms


class Poller(threading.Thread):
    """Samples the RSS of a process tree and the CPU of matching Postgres backends."""

    def __init__(self, pid: int, *, skip_root: bool, pg_database: str | None) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.skip_root = skip_root
        self.pg_database = pg_database
        self.tree_peak = 0
        self.backend_cpu: dict[int, float] = {}
        self._halt = threading.Event()
        self._tree: list[psutil.Process] = []
        self._backends: dict[int, psutil.Process] = {}
        self._not_ours: set[int] = set()

    def run(self) -> None:
        if psutil is None:
            return
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        tick = 0
        while not self._halt.is_set():
            if tick < TREE_EVERY or tick % TREE_EVERY == 0:  # children appear early
                self._find_tree(root)
            total = 0
            for p in self._tree:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            self.tree_peak = max(self.tree_peak, total)
            if self.pg_database:
                self._sample_backends(scan=tick % SCAN_EVERY == 0)
            tick += 1
            self._halt.wait(POLL_S)
        if self.pg_database:
            self._sample_backends(scan=True)

    def _find_tree(self, root: psutil.Process) -> None:
        try:
            procs = root.children(recursive=True)
        except psutil.Error:
            procs = []
        self._tree = procs if self.skip_root else [root, *procs]

    def _sample_backends(self, *, scan: bool) -> None:
        if scan:
            self._scan_backends()
        for pid, p in list(self._backends.items()):
            try:
                t = p.cpu_times()
            except psutil.Error:
                del self._backends[pid]  # exited: its last reading stays
                continue
            self.backend_cpu[pid] = t.user + t.system

    def _scan_backends(self) -> None:
        assert psutil is not None and self.pg_database is not None
        needle = f" {self.pg_database} "
        for pid in psutil.pids():
            if pid in self._not_ours or pid in self._backends:
                continue
            try:
                p = psutil.Process(pid)
                if p.name() != "postgres":
                    self._not_ours.add(pid)
                    continue
                title = " ".join(p.cmdline())
            except psutil.Error:
                self._not_ours.add(pid)
                continue
            if not title.startswith("postgres: "):
                continue  # not titled yet: look again next time
            if needle in title + " ":
                self._backends[pid] = p
            else:
                self._not_ours.add(pid)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def _overhead(seconds: float = 5.0) -> float:
    """CPU-seconds per second the sampler costs, sampling this process and ``postgres``."""
    p = Poller(os.getpid(), skip_root=False, pg_database="postgres")
    c0, w0 = time.process_time(), time.perf_counter()
    p.start()
    time.sleep(seconds)
    p.stop()
    return (time.process_time() - c0) / (time.perf_counter() - w0)


if __name__ == "__main__":
    print(f"sampler: {_overhead():.4f} CPU-s per second")
