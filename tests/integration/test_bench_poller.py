"""The bench's sampler (``benchmarks.poller``) on a real server: it counts the CPU of the
backends of the measured database only, and keeps a backend's CPU after it exits."""

from __future__ import annotations

import os

import psycopg

from benchmarks.poller import Poller
from tests.support.procs import fresh_database

_BUSY = "SELECT count(*) FROM generate_series(1, 2000000)"


def test_poller_counts_the_measured_databases_backends_only(pg_server_url: str) -> None:
    with fresh_database(pg_server_url) as ours, fresh_database(pg_server_url) as other:
        ours_name = psycopg.conninfo.conninfo_to_dict(ours)["dbname"]
        poller = Poller(os.getpid(), skip_root=False, pg_database=str(ours_name))
        poller.start()
        with psycopg.connect(other) as busy_elsewhere:
            busy_elsewhere.execute(_BUSY)
            with psycopg.connect(ours) as conn:  # opened after the sampler started
                pid = conn.info.backend_pid
                for _ in range(3):
                    conn.execute(_BUSY)
            other_pid = busy_elsewhere.info.backend_pid
        poller.stop()  # our backend has exited by now: its last reading stays
    assert set(poller.backend_cpu) == {pid}, (poller.backend_cpu, pid, other_pid)
    assert poller.backend_cpu[pid] > 0
    assert poller.tree_peak > 0
