"""Which Postgres to load into: ``DATABASE_URL``, or the embedded server of our own.

``resolve_database_url`` returns ``DATABASE_URL`` unchanged when it is set.  When it is not,
it starts (or reuses) the embedded server (see :mod:`etl.db.embedded` for where its data
lives, its lifetime, and what it does, and does not do, when run as root).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from urllib.parse import unquote

from psycopg.conninfo import conninfo_to_dict, make_conninfo

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


def redact(url: str) -> str:
    """``url`` (URI or ``key=value`` conninfo) with any password removed, for messages."""
    if "://" in url:
        scheme, sep, rest = url.partition("://")
        authority_end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=-1)
        authority = rest if authority_end < 0 else rest[:authority_end]
        tail = "" if authority_end < 0 else rest[authority_end:]
        userinfo, at, hosts = authority.rpartition("@")
        if at:
            authority = f"{userinfo.partition(':')[0]}@{hosts}"
        path, qmark, query = tail.partition("?")
        if qmark:
            kept = [
                item
                for item in query.split("&")
                if unquote(item.partition("=")[0]).strip().lower() != "password"
            ]
            tail = f"{path}?{'&'.join(kept)}" if kept else path
        return f"{scheme}{sep}{authority}{tail}"
    try:
        params = conninfo_to_dict(url)
    except Exception:  # unparsable: scrub up to the next "key=", never fail while reporting
        scrubbed = re.sub(r"\s*\bpassword\s*=.*?(?=\s+\w+\s*=|$)", "", url, flags=re.I | re.S)
        return scrubbed.strip()
    if "password" not in params:
        return url
    del params["password"]
    return make_conninfo("", **params)
