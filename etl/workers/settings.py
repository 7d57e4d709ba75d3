"""Broker settings of the workers, from the environment (source, spool and database come
from :class:`etl.config.Settings` as for every command).  Each variable is declared once
in :data:`VARIABLES`: its name, its type (durations take ``90s``, ``5m``), its default and
its help, which the README's settings table and ``--help`` repeat."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import click

from etl.config import DURATION
from etl.errors import ConfigError


class _Seconds(click.ParamType[float]):
    name = "duration"

    def __init__(self, minimum: float) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = float(DURATION.convert(value, param, ctx))
        if seconds < self.minimum:
            self.fail(f"must be at least {self.minimum:g} s, got {value!r}", param, ctx)
        return seconds


@dataclass(frozen=True)
class Variable:
    field: str
    env: str
    type: click.ParamType[Any]
    default: Any
    help: str


VARIABLES: tuple[Variable, ...] = (
    Variable("broker_url", "ETL_BROKER_URL", click.STRING, "",
             "Celery broker: redis://host:6379/0 or amqp://user:pass@host:5672//"),
    Variable("visibility_timeout", "ETL_BROKER_VISIBILITY_TIMEOUT", _Seconds(1), 60.0,
             "Redis: seconds before an unacknowledged task is delivered again"),
    Variable("queue", "ETL_QUEUE", click.STRING, "wheels-etl", "Celery queue name"),
    Variable("max_retries", "ETL_TASK_MAX_RETRIES", click.IntRange(min=0), 5,
             "retries of a task after a transient error"),
    Variable("reconcile_interval", "ETL_RECONCILE_INTERVAL", _Seconds(1), 300.0,
             "seconds between periodic reconciles under celery beat"),
    Variable("wait_poll_seconds", "ETL_WAIT_POLL_SECONDS", _Seconds(0.05), 1.0,
             "how often enqueue --wait looks at the spool"),
)  # fmt: skip

#: The environment variables read here (the Kubernetes manifests may set only known names).
ENV_VARS = tuple(v.env for v in VARIABLES)


@dataclass(frozen=True)
class WorkerSettings:
    """What :data:`VARIABLES` hold (each field's meaning is its variable's help)."""

    broker_url: str = field(repr=False)
    visibility_timeout: float  # Redis: a task unacknowledged this long is delivered again
    queue: str  # lets two deployments share one broker
    max_retries: int
    reconcile_interval: float
    wait_poll_seconds: float

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerSettings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for var in VARIABLES:
            text = env.get(var.env)
            try:
                values[var.field] = var.type.convert(text, None, None) if text else var.default
            except click.BadParameter as exc:
                raise ConfigError(f"{var.env}: {exc.message}") from None
        if not values["broker_url"]:
            raise ConfigError(
                "ETL_BROKER_URL is not set: e.g. redis://127.0.0.1:6379/0 or "
                "amqp://guest:guest@127.0.0.1:5672//"
            )
        return cls(**values)
