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
    """The settings given as ``worker`` flags (option name -> value), as the variables the
    tasks read (:meth:`etl.config.Settings.from_env` reads them back)."""
    out: dict[str, str] = {}
    for setting in options_for("worker"):
        if setting.option.name in given:
            value = given[setting.option.name]
            if isinstance(value, tuple | list):
                out[setting.env] = ",".join(value)
            elif isinstance(value, bool):
                out[setting.env] = "1" if value else "0"
            else:
                out[setting.env] = str(value)
    return out
