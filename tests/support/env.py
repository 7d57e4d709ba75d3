"""The environment tests and their child processes see (httpx's conftest is the model).

Settings leak into tests from the developer's shell or CI: ``ETL_*`` and ``DATABASE_URL``
would point the code under test elsewhere, ``AWS_*``/``PG*`` carry credentials, proxies and
CA-bundle variables change how ``requests`` connects.  :func:`is_leaky` names them; the
autouse fixture in ``tests/conftest.py`` removes them from ``os.environ`` for every test,
and :func:`child_env` is the one way to build a child process's environment: a short list
of harmless variables plus what the test sets explicitly, never ``{**os.environ}``.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_LEAKY_PREFIXES = ("ETL_", "AWS_", "PG", "BENCH_", "CELERY_", "REQUESTS_", "CURL_", "SSL_CERT_")
_LEAKY_NAMES = frozenset({"DATABASE_URL", "NETRC", "BROKER_URL", "REDIS_URL"})

#: What a child inherits from the test process (all else must be passed explicitly).
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "USER", "LOGNAME")


def is_leaky(name: str) -> bool:
    """A variable that may change what the code under test talks to, or how."""
    upper = name.upper()
    return (
        upper.startswith(_LEAKY_PREFIXES)
        or upper in _LEAKY_NAMES
        or upper.endswith("_PROXY")  # http_proxy, HTTPS_PROXY, all_proxy, no_proxy
    )


def child_env(**settings: str | Path | None) -> dict[str, str]:
    """A child process's whole environment: the harmless basics, then ``settings``.

    ``PYTHONPATH`` points at the repository (so ``tests.support`` imports in a child) and
    output is unbuffered; a setting of ``None`` removes the variable.
    """
    env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONUNBUFFERED"] = "1"
    for name, value in settings.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = str(value)
    return env
