"""Broker settings of the workers, from the environment (source, spool and database come
from :class:`etl.config.Settings` as for every command)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from etl.errors import ConfigError

#: The environment variables read here (the Kubernetes manifests may set only known names).
ENV_VARS = (
    "ETL_BROKER_URL",
    "ETL_BROKER_VISIBILITY_TIMEOUT",
    "ETL_QUEUE",
    "ETL_TASK_MAX_RETRIES",
    "ETL_RECONCILE_INTERVAL",
    "ETL_WAIT_POLL_SECONDS",
    "ETL_SPOOL_LEASE_SECONDS",
)


def _number(env: dict[str, str], name: str, default: float, minimum: float) -> float:
    text = env.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {text!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, got {text!r}")
    return value


@dataclass(frozen=True)
class WorkerSettings:
    broker_url: str = field(repr=False)
    #: Redis only: an unacknowledged task goes back to the queue after this many seconds
    #: (a dead worker's task runs again elsewhere; a task running longer runs twice).
    visibility_timeout: float = 60.0
    #: Queue name prefix: ``<queue>`` (tasks); lets two deployments share one broker.
    queue: str = "wheels-etl"
    #: Retries of a task after a transient source or database error (exponential backoff).
    max_retries: int = 5
    #: Seconds between two periodic reconciles (Celery beat).
    reconcile_interval: float = 300.0
    #: How often ``enqueue --wait`` looks at the spool and the ledger.
    wait_poll_seconds: float = 1.0
    #: Object-storage spool: a claim older than this is an orphan (keep it above the
    #: longest load of one file; a local spool's claims end with their process instead).
    lease_seconds: float = 900.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> WorkerSettings:
        env = dict(os.environ) if env is None else env
        url = env.get("ETL_BROKER_URL") or ""
        if not url:
            raise ConfigError(
                "ETL_BROKER_URL is not set: e.g. redis://127.0.0.1:6379/0 or "
                "amqp://guest:guest@127.0.0.1:5672//"
            )
        return cls(
            broker_url=url,
            visibility_timeout=_number(env, "ETL_BROKER_VISIBILITY_TIMEOUT", 60.0, 1.0),
            queue=env.get("ETL_QUEUE") or "wheels-etl",
            max_retries=int(_number(env, "ETL_TASK_MAX_RETRIES", 5, 0)),
            reconcile_interval=_number(env, "ETL_RECONCILE_INTERVAL", 300.0, 1.0),
            wait_poll_seconds=_number(env, "ETL_WAIT_POLL_SECONDS", 1.0, 0.05),
            lease_seconds=_number(env, "ETL_SPOOL_LEASE_SECONDS", 900.0, 1.0),
        )
