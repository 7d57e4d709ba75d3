"""Probes of a worker: liveness (this worker process runs) and readiness (it can reach the
broker), each answered within :data:`PROBE_SECONDS` with one line saying why.

A worker registers itself when Celery has set it up (``celeryd_after_setup``): a small
JSON file ``<node name>.json`` in :func:`state_dir` (the temp folder: ``TMPDIR``, an
``emptyDir`` in Kubernetes) with its node name, as ``-n`` made it (``%h`` expanded), its
pid and the start time of that pid (so a pid reused by another process does not pass).
It removes the file when it shuts down, and a starting worker removes those of workers
that are gone (killed, or a container restarted with the same ``emptyDir``).

* Liveness (``wheels-etl worker --healthcheck [-n NAME]``) reads those files only: it never
  talks to the broker, so a broker outage does not restart the workers.  With ``-n`` (the
  same value as the worker's) the worker of that node name must be running; without, every
  worker registered on this host (at least one).
* Readiness (``wheels-etl worker --readiness [-n NAME]``): liveness, then the broker
  accepts a connection within the time left.  A broker outage shows here, as not ready.

This module imports neither Celery nor the app unless the broker is checked, so the
liveness probe is a short Python start-up.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Both probes answer within this many seconds (the Kubernetes probes' timeoutSeconds).
PROBE_SECONDS = 2.0
#: Start-up of the Python process that runs the probe is part of the budget above.
_BROKER_SECONDS = 1.0


def state_dir() -> Path:
    """Where workers register: ``<temp folder>/wheels-etl-<uid>/workers``."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"wheels-etl-{uid}" / "workers"


def _file_for(node: str) -> Path:
    return state_dir() / (re.sub(r"[^A-Za-z0-9@._-]", "_", node) + ".json")


def _started(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, OSError):
        return None


def register(node: str) -> Path:
    """Write this process's registration (called in the worker once Celery set it up)."""
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = _file_for(node)
    for stale in folder.glob("*.json"):  # workers gone without unregistering (SIGKILL,
        # a container restarted with the same emptyDir): they would fail every probe
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
            old = json.loads(stale.read_text())
            if _started(int(old.get("pid"))) != old.get("started"):
                stale.unlink()
    record = {"node": node, "pid": os.getpid(), "started": _started(os.getpid())}
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)
    return path


def unregister(node: str) -> None:
    path = _file_for(node)
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    line: str  # printed by the CLI: why it passed or failed


def node_from_args(celery_args: Sequence[str]) -> str | None:
    """The ``-n/--hostname`` value among ``celery worker`` options, ``%h`` etc. expanded as
    Celery does (``w1@%h`` -> ``w1@<host name>``; a name without ``@`` gets ``celery@``)."""
    value: str | None = None
    args = list(celery_args)
    for i, arg in enumerate(args):
        if arg in ("-n", "--hostname") and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--hostname="):
            value = arg.split("=", 1)[1]
        elif arg.startswith("-n") and len(arg) > 2:
            value = arg[2:]
    if value is None:
        return None
    host = socket.gethostname()
    name = (
        value.replace("%h", host)
        .replace("%n", host.split(".")[0])
        .replace("%d", host.partition(".")[2])
    )
    return name if "@" in name else f"celery@{name}"


def _records(node: str | None) -> list[dict[str, object]]:
    paths = [_file_for(node)] if node else sorted(state_dir().glob("*.json"))
    out = []
    for path in paths:
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(path.read_text())
            if isinstance(record, dict):
                out.append(record)
    return out


def liveness(node: str | None) -> Verdict:
    """The worker named ``node`` (or every worker registered here) is running."""
    records = _records(node)
    if not records:
        who = f"no worker named {node}" if node else "no worker"
        return Verdict(False, f"not alive: {who} registered in {state_dir()} (not started yet, "
                              "exited, or started with another -n or TMPDIR)")  # fmt: skip
    alive = []
    for record in records:
        pid, name = record.get("pid"), record.get("node")
        if not isinstance(pid, int):
            return Verdict(False, f"not alive: unreadable registration of {name}")
        started = _started(pid)
        if started is None or started != record.get("started"):
            return Verdict(False, f"not alive: worker {name} (pid {pid}) is not running")
        alive.append(f"{name} (pid {pid})")
    return Verdict(True, "alive: " + ", ".join(alive))


def _connect(conn: Any, url: str, verdicts: list[Verdict]) -> None:
    from etl.redact import redact_url

    try:
        conn.ensure_connection(max_retries=0)  # no retry: the probe is retried
        verdicts.append(Verdict(True, f"the broker {redact_url(url)} answers"))
    except Exception as exc:  # any failure to connect is "not ready"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        line = f"not ready: the broker {redact_url(url)} does not answer: {reason}"
        verdicts.append(Verdict(False, line))
    finally:
        conn.release()


def _age() -> float:
    """Seconds since this process started (the probe's Python start-up included)."""
    import psutil

    return max(0.0, time.time() - float(psutil.Process().create_time()))


def readiness(node: str | None) -> Verdict:
    """Liveness, then the broker accepts a connection, within :data:`PROBE_SECONDS` of
    this process's start."""
    alive = liveness(node)
    if not alive.ok:
        return alive
    from kombu.connection import Connection

    from etl.errors import ConfigError
    from etl.workers.settings import WorkerSettings

    try:
        url = WorkerSettings.from_env().broker_url
    except ConfigError as exc:
        return Verdict(False, f"not ready: {exc}")
    conn = Connection(url, connect_timeout=_BROKER_SECONDS)  # type: ignore[no-untyped-call]
    conn.transport  # noqa: B018 (imports the transport here, before the clock below)
    verdicts: list[Verdict] = []
    thread = threading.Thread(target=_connect, args=(conn, url, verdicts), daemon=True)
    thread.start()
    # what is left of the 2 s after this process's start-up, but at least one connect
    # timeout: on a starved machine a slow start-up must not make a live broker "down"
    budget = max(_BROKER_SECONDS + 0.1, PROBE_SECONDS - 0.2 - _age())
    thread.join(budget)
    if not verdicts:
        return Verdict(False, f"not ready: the broker did not answer within {budget:.1f} s")
    verdict = verdicts[0]
    return Verdict(verdict.ok, f"{alive.line}; {verdict.line}" if verdict.ok else verdict.line)
