"""The Celery app: ``celery -A etl.workers.app worker`` (or ``wheels-etl worker``).

Configured lazily from the environment (:class:`WorkerSettings`) the first time the
configuration is read, so importing the app needs no broker.  What the settings buy:

* ``task_acks_late`` + ``task_reject_on_worker_lost``: a task is acknowledged when it has
  finished, so a worker killed mid-task leaves it to be delivered again;
* ``worker_prefetch_multiplier=1``: a worker holds one task it is not yet running, no more
  (a killed worker delays few tasks; long tasks do not pile up behind one worker);
* Redis ``visibility_timeout`` (``ETL_BROKER_VISIBILITY_TIMEOUT``, 60 s): how long an
  unacknowledged task waits before Redis hands it to another worker.  Redis' default is an
  hour.  A task still running after that long is delivered a second time: harmless (the
  spool claim and the ledger make the second run a no-op) but wasted work, so keep it above
  the longest extract or load of one release.  RabbitMQ redelivers as soon as the dead
  worker's connection drops and ignores this setting.
* results are ignored: progress is read from the spool and the ledger, never from Celery.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import Celery, signals
from kombu.exceptions import OperationalError
from kombu.transport import resolve_transport

from etl import logs
from etl.config import Settings
from etl.errors import BrokerError, ConfigError
from etl.redact import redact_url
from etl.spool import Spool
from etl.workers.settings import WorkerSettings

TASKS = "etl.workers.tasks"


def check_broker_url(url: str) -> None:
    """A broker URL whose scheme no kombu transport serves is a bad setting (exit 2), found
    before anything is sent (kombu would raise a bare ``KeyError`` while connecting).  The
    message names the scheme only: the URL may hold a password."""
    head = url.split("://", 1)[0] if "://" in url else url
    scheme = head.split("+", 1)[0]  # kombu's "transport+url" form, e.g. redis+socket://
    try:
        resolve_transport(scheme)
    except (KeyError, ImportError, ValueError) as exc:
        raise ConfigError(
            f"ETL_BROKER_URL: no broker transport for the scheme {scheme!r}: use e.g. "
            "redis://host:6379/0 or amqp://user:pass@host:5672//"
        ) from exc


def celery_config(ws: WorkerSettings) -> dict[str, Any]:
    check_broker_url(ws.broker_url)
    return {
        "broker_url": ws.broker_url,
        "broker_transport_options": {"visibility_timeout": ws.visibility_timeout},
        "broker_connection_retry_on_startup": True,
        "task_default_queue": ws.queue,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "result_backend": None,
        "task_serializer": "json",
        "accept_content": ["json"],
        "beat_schedule": {
            "reconcile": {
                "task": f"{TASKS}.reconcile",
                "schedule": ws.reconcile_interval,
                "options": {"expires": ws.reconcile_interval},
            },
        },
        "etl_max_retries": ws.max_retries,
        "etl_wait_poll_seconds": ws.wait_poll_seconds,
    }


app = Celery("wheels-etl", include=[TASKS], set_as_current=False)
app.add_defaults(lambda: celery_config(WorkerSettings.from_env()))


def _logging(loglevel: int | str | None = None, **_: Any) -> None:
    """Workers log like every command (``etl.logs``: UTC timestamps, ``ETL_LOG_FORMAT``),
    at the level of ``-l/--loglevel`` for celery's own loggers and ours."""
    level = logging.getLevelName(loglevel) if isinstance(loglevel, str) else loglevel
    level = level if isinstance(level, int) else logging.WARNING
    json_lines = os.environ.get("ETL_LOG_FORMAT") == "json"
    logs.setup(1 if level <= logging.INFO else 0, "json" if json_lines else "text")
    logging.captureWarnings(json_lines)  # a warning is one JSON line, not several lines
    for name in ("celery", "etl"):
        logging.getLogger(name).setLevel(level)


signals.setup_logging.connect(_logging, weak=False)

_registered: list[str] = []


def _register(sender: str | None = None, instance: Any = None, **_: Any) -> None:
    """The worker registers its node name and pid for its probes (etl.workers.health).
    With JSON logs Celery's banner is not printed: its facts are one log line instead."""
    from etl.workers import health

    if instance is not None and os.environ.get("ETL_LOG_FORMAT") == "json":
        instance.quiet = True
        pool = getattr(instance.pool_cls, "__module__", str(instance.pool_cls))
        logging.getLogger("etl.workers").info(
            "worker %s starting", sender,
            extra={"node": sender, "concurrency": instance.concurrency,
                   "pool": pool.rsplit(".", 1)[-1], "queues": sorted(instance.app.amqp.queues)},
        )  # fmt: skip
    if sender:
        health.register(sender)
        _registered.append(sender)


def _unregister(**_: Any) -> None:
    from etl.workers import health

    for node in _registered:
        health.unregister(node)


signals.celeryd_after_setup.connect(_register, weak=False)
signals.worker_shutdown.connect(_unregister, weak=False)


def worker_spool(settings: Settings) -> Spool:
    """The spool as the workers see it (claims on object storage last the lease)."""
    return Spool(settings.spool_dir, lease_seconds=settings.lease_seconds)


@contextmanager
def broker_errors() -> Iterator[None]:
    """Turn kombu's and the socket layer's errors while sending into :class:`BrokerError`."""
    try:
        yield
    except (OperationalError, OSError) as exc:
        url = redact_url(str(app.conf.broker_url))
        raise BrokerError(f"cannot send to the broker {url}: {exc}") from exc
