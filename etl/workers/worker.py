"""``wheels-etl worker``: run a Celery worker of :data:`etl.workers.app.app`, or check one."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from etl.config import options_for
from etl.workers import jsonlines
from etl.workers.app import app, broker_errors


def run_worker(
    celery_args: Sequence[str], env: Mapping[str, str] | None = None, *, json_lines: bool = False
) -> int:
    """Same as ``celery -A etl.workers.app worker <celery_args>``; ``env`` (settings given
    as flags) is set in this process's environment first, where the tasks read it.  With
    ``json_lines`` every line the worker prints is one JSON object (:mod:`.jsonlines`)."""
    os.environ.update(env or {})
    if json_lines:
        os.environ["ETL_LOG_FORMAT"] = "json"  # for Celery's logging set-up (app._logging)
        logging.captureWarnings(True)  # warnings as log records, one JSON line each
        jsonlines.wrap_output()
    with broker_errors():
        app.worker_main(["worker", *celery_args])
    return 0


def flags_as_env(given: Mapping[str, Any]) -> dict[str, str]:
    """The settings given as ``worker`` flags, as the variables the tasks read."""
    out: dict[str, str] = {}
    for opt in options_for("worker"):
        value = given.get(opt.field)
        if opt.env and value is not None and value is not False:
            out[opt.env] = (
                ",".join(value)
                if isinstance(value, list)
                else ("1" if value is True else str(value))
            )
    return out
