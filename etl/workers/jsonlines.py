"""JSON lines from a worker, whoever writes them: with ``--log-format json`` (or
``ETL_LOG_FORMAT=json``) the worker's standard output and error go through a small filter
process that passes JSON objects through and turns every other non-empty line (Celery's
shutdown notices printed to ``sys.__stdout__``, a library's ``print``, a C extension's
message, Python's own fatal-error output) into one JSON object with the fields of
:class:`etl.logs.JsonFormatter`: ``ts``, ``level`` (``info`` from stdout, ``warning`` from
stderr), ``logger`` (``stdout`` / ``stderr``) and ``message``.

Warnings go through :mod:`logging` (``logging.captureWarnings``) and the banner is not
printed (its facts are one log line instead), so neither needs the filter; it is the
safety net for everything else.  The filter ignores SIGINT and SIGTERM (a Ctrl+C or the
process group's TERM must not cut off the worker's last lines) and ends when the worker
and its pool processes have all closed their ends of the pipes.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import subprocess
import sys

from etl.logs import JsonFormatter

_LEVELS = {1: logging.INFO, 2: logging.WARNING}
_NAMES = {1: "stdout", 2: "stderr"}


def json_line(raw: bytes, stream: int, formatter: logging.Formatter) -> bytes | None:
    """``raw`` (one line, no newline) as a JSON object line; ``None`` for a blank line."""
    text = raw.decode("utf-8", errors="replace").rstrip("\r")
    if not text.strip():
        return None
    if text.startswith("{"):
        try:
            if isinstance(json.loads(text), dict):
                return text.encode() + b"\n"
        except ValueError:
            pass
    record = logging.makeLogRecord(
        {"name": _NAMES[stream], "levelno": _LEVELS[stream], "msg": text.strip("\n"), "args": ()}
    )
    record.levelname = logging.getLevelName(_LEVELS[stream])
    return formatter.format(record).encode() + b"\n"


def pump(sources: dict[int, int]) -> None:
    """Copy each read fd to its stream (``{read fd: 1 or 2}``) as JSON lines until EOF."""
    formatter = JsonFormatter()
    pending = {fd: b"" for fd in sources}
    with selectors.DefaultSelector() as sel:
        for fd in sources:
            sel.register(fd, selectors.EVENT_READ)
        while pending:
            for key, _ in sel.select():
                fd = int(key.fd)
                chunk = os.read(fd, 65536)
                lines = (pending[fd] + chunk).split(b"\n")
                if chunk:
                    pending[fd] = lines.pop()
                else:
                    sel.unregister(fd)
                    del pending[fd]
                for line in lines:
                    out = json_line(line, sources[fd], formatter)
                    if out:
                        os.write(sources[fd], out)


def wrap_output() -> None:
    """From now on this process's fds 1 and 2 (and those of processes it starts) go
    through the filter process to the original stdout and stderr."""
    sys.stdout.flush()
    sys.stderr.flush()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    subprocess.Popen(
        [sys.executable, "-m", "etl.workers.jsonlines", str(out_r), str(err_r)],
        pass_fds=(out_r, err_r),
        stdin=subprocess.DEVNULL,
    )
    for fd in (out_r, err_r):
        os.close(fd)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os.close(out_w)
    os.close(err_w)


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out_r, err_r = (int(a) for a in argv)
    pump({out_r: 1, err_r: 2})


if __name__ == "__main__":
    main(sys.argv[1:])
