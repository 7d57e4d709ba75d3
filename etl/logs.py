"""Log set-up for every command: verbosity, timestamps, and a JSON line format.

* ``-q``: errors only; ``(default)``: warnings; ``-v``: wheels-etl's own progress (INFO) with
  third-party libraries kept at WARNING; ``-vv``: DEBUG for everything, urllib3 and friends
  included.
* Every line carries a UTC timestamp (``2026-12-02T06:30:01.123Z``).
* ``--log-format json`` (or ``ETL_LOG_FORMAT=json``) prints one JSON object per line with
  ``ts``, ``level``, ``logger``, ``message`` and any ``extra`` fields, for log shippers.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Literal, TextIO

LogFormat = Literal["text", "json"]
Verbosity = Literal[-1, 0, 1, 2]  # -q, default, -v, -vv

_STANDARD = set(vars(logging.makeLogRecord({})))


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = f"{_timestamp(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def setup(verbosity: int, fmt: LogFormat = "text", stream: TextIO | None = None) -> None:
    """Configure the root logger once per process (idempotent: handlers are replaced)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    ours = logging.getLogger("etl")
    if verbosity >= 2:
        root.setLevel(logging.DEBUG)
        ours.setLevel(logging.DEBUG)
    elif verbosity == 1:
        root.setLevel(logging.WARNING)
        ours.setLevel(logging.INFO)
    elif verbosity == 0:
        root.setLevel(logging.WARNING)
        ours.setLevel(logging.WARNING)
    else:
        root.setLevel(logging.ERROR)
        ours.setLevel(logging.ERROR)
