"""Which Postgres to load into: ``DATABASE_URL``, or the embedded server of our own.

``resolve_database_url`` returns ``DATABASE_URL`` unchanged when it is set.  When it is not,
it starts (or reuses) the embedded server of this installation, or with ``start=False``
only finds the running one (see :mod:`etl.db.embedded`).  Passwords are removed from URLs
shown to people by :func:`etl.redact.redact_database_url`.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def resolve_database_url(
    settings_database_url: str | None, *, data_dir: Path | None = None, start: bool = True
) -> str:
    """``DATABASE_URL`` if given; else the conninfo of the embedded server in ``data_dir``.

    With ``start`` the embedded server is started if it is not running (and initialised if
    ``data_dir`` is new), and left running; without it, a server that is not running is a
    TransientLoadError ("embedded database not running").  Prints nothing.
    """
    if settings_database_url:
        return settings_database_url
    from etl.db.embedded import db_start, running_url  # psutil, platformdirs: only here

    url = db_start(data_dir) if start else running_url(data_dir)
    log.info("DATABASE_URL is not set: using the embedded PostgreSQL (%s)", url)
    return url
