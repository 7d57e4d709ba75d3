"""Which Postgres to load into: ``DATABASE_URL``, or the embedded server of our own.

``resolve_database_url`` returns ``DATABASE_URL`` unchanged when it is set.  When it is not,
it starts (or reuses) the embedded server (see :mod:`etl.db.embedded` for where its data
lives, its lifetime, and what it does, and does not do, when run as root).  Passwords are
removed from URLs shown to people by :func:`etl.redact.redact_database_url`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from etl.db.embedded import db_start

log = logging.getLogger(__name__)


def resolve_database_url(settings_database_url: str | None, *, data_dir: Path | None = None) -> str:
    """``DATABASE_URL`` if given; else the conninfo of the embedded server in ``data_dir``.

    The embedded server is started if it is not running (and initialised if ``data_dir`` is
    new); a running one is reused and left running.  Prints nothing; logs through
    :mod:`logging`.
    """
    if settings_database_url:
        return settings_database_url
    url = db_start(data_dir)
    log.info("DATABASE_URL is not set: using the embedded PostgreSQL (%s)", url)
    return url


def db_url(settings_database_url: str | None, *, data_dir: Path | None = None) -> str:
    """What ``wheels-etl db url`` prints: the conninfo every command would use."""
    return resolve_database_url(settings_database_url, data_dir=data_dir)
