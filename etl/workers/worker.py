"""``wheels-etl worker``: run a Celery worker of :data:`etl.workers.app.app`, or check one."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence

from etl.workers.app import app, broker_errors


def run_worker(celery_args: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Same as ``celery -A etl.workers.app worker <celery_args>``; ``env`` (settings given
    as flags) is set in this process's environment first, where the tasks read it."""
    os.environ.update(env or {})
    with broker_errors():
        app.worker_main(["worker", *celery_args])
    return 0


def healthcheck(timeout: float = 5.0) -> bool:
    """True if a worker named ``celery@<this host name>`` answers a ping (the default
    node name of a worker started here: a Kubernetes pod's host name is its own)."""
    node = f"celery@{socket.gethostname()}"
    with broker_errors():
        replies = app.control.ping(destination=[node], timeout=timeout)
    return any(node in reply for reply in replies)
