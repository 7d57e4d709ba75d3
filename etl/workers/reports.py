"""Task errors, from the worker to the person who ran ``enqueue --wait``.

A task's error may be one that keeps it from writing anything to the spool (credentials
refused by the object store, the bucket missing), so the run notes cannot carry it.  The
broker can: it brought the task.  A worker sends a Celery event (type
:data:`EVENT`, custom fields, on the ``celeryev`` exchange Celery already uses) when a
task meets its first error and when it gives up; ``enqueue --wait`` listens from before it
sends the listing task (:class:`Listener`) and reports, for each task that gave up, its
first error in one line, with the exit code of its class (:attr:`EtlError.exit_code`).  Events only
reach a listener connected at the time: nothing accumulates when nobody waits.

The worker logs the same error once per task, not once per retry.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from celery import Task
from celery.events.receiver import EventReceiver

from etl.errors import EtlError

log = logging.getLogger(__name__)

EVENT = "etl-task-error"
_ROUTING = "etl.#"  # Celery routes an event of type a-b-c with the key a.b.c
LISTING = "(listing)"


def _what(task: Task) -> tuple[str, str, str]:
    """(short task name, run id, key) of the task being run: the key is the release of an
    extract task, the file of a load task, ``(listing)`` for the listing task."""
    name = str(task.name).rsplit(".", 1)[-1]
    args = list(task.request.args or ())
    run_id = str(args[0]) if args else ""
    key = LISTING
    if name == "extract_release" and len(args) > 1 and isinstance(args[1], dict):
        key = f"{args[1].get('product')}/{args[1].get('version')}"
    elif name == "load_file" and len(args) > 1:
        key = str(args[1])
    return name, run_id, key


def _send(task: Task, exc: EtlError, *, final: bool) -> None:
    name, run_id, key = _what(task)
    try:
        task.send_event(
            EVENT, retry=False, run_id=run_id, task=name, key=key, message=str(exc),
            code=exc.exit_code, final=final,
        )  # fmt: skip
    except Exception as err:  # the broker went away: the log still has the error
        log.debug("could not send the %s event: %s", EVENT, err)


def first_error(task: Task, exc: EtlError) -> None:
    """The task met an error: logged and sent once per task (not per retry)."""
    if task.request.retries or getattr(task.request, "etl_reported", False):
        return
    task.request.etl_reported = True
    name, _, key = _what(task)
    log.error("%s %s: %s", name, key, exc)
    _send(task, exc, final=False)


def gave_up(task: Task, exc: EtlError) -> None:
    """The task ends on ``exc`` (not retryable, or retries used up)."""
    first_error(task, exc)
    if getattr(task.request, "etl_gave_up", False):
        return
    task.request.etl_gave_up = True
    retries = int(task.request.retries)
    if retries:
        name, _, key = _what(task)
        log.error("%s %s: gave up after %d retries (the first error is above)", name, key, retries)
    _send(task, exc, final=True)


@dataclass
class TaskError:
    """The first error of one task of the run, and whether the task gave up."""

    task: str
    key: str
    message: str
    code: int
    final: bool = False


class _Receiver(EventReceiver):  # type: ignore[misc]
    ready: threading.Event
    iterations: int = 0

    def on_iteration(self) -> None:
        self.iterations += 1
        if self.iterations >= 2:  # one drain done: subscribed (Redis) or bound (AMQP)
            self.ready.set()


class Listener:
    """Collects the task errors of one run while ``enqueue --wait`` waits (a thread)."""

    def __init__(self, app: Any, run_id: str) -> None:
        self.run_id = run_id
        self.errors: dict[tuple[str, str], TaskError] = {}
        self.failure: Exception | None = None
        self._lock = threading.Lock()
        self._conn = app.connection_for_read()
        self._receiver = _Receiver(
            self._conn, handlers={EVENT: self._on_event}, routing_key=_ROUTING, app=app
        )
        self._receiver.ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="etl-events", daemon=True)

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("run_id") != self.run_id:
            return
        key = (str(event.get("task")), str(event.get("key")))
        with self._lock:
            known = self.errors.get(key)
            if known is None:
                known = TaskError(key[0], key[1], str(event.get("message")), int(event["code"]))
                self.errors[key] = known
            known.final = known.final or bool(event.get("final"))

    def _run(self) -> None:
        try:
            for _ in self._receiver.consume(
                limit=None, timeout=None, safety_interval=0.1, wakeup=False
            ):
                pass
        except Exception as exc:  # the broker went away: the wait goes on without events
            self.failure = exc
            self._receiver.ready.set()

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        self._receiver.ready.wait(timeout)

    def failed(self) -> list[TaskError]:
        """Tasks that gave up, each with its first error."""
        with self._lock:
            return [e for e in self.errors.values() if e.final]

    def stop(self) -> None:
        self._receiver.should_stop = True
        self._thread.join(5)
        self._conn.release()
