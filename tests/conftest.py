"""Shared fixtures: a clean environment for every test, a real Postgres database per test
(never mocked, never skipped).

The server is ``ETL_TEST_DATABASE_URL`` or ``DATABASE_URL`` when set (read once, when this
file is imported, before any test cleans the environment); otherwise the embedded
PostgreSQL that wheels-etl itself uses (``etl.db.embedded.embedded_server``), started once per test
session in a temporary folder.  Each test gets a database of its own.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.support.env import is_leaky

#: The test server, if the caller named one (read before the environment is cleaned).
TEST_DATABASE_URL = os.environ.get("ETL_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs without ``ETL_*``, ``DATABASE_URL``, ``AWS_*``, ``PG*``, proxies…
    (see :func:`tests.support.env.is_leaky`); a test sets what it needs itself."""
    for name in list(os.environ):
        if is_leaky(name):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    url = TEST_DATABASE_URL
    if url:
        yield url
        return
    from etl.db.embedded import embedded_server

    with (
        tempfile.TemporaryDirectory(prefix="wheels-etl-test-pg-") as tmp,
        embedded_server(Path(tmp) / "pg") as server_url,
    ):
        yield server_url


@pytest.fixture
def db_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty database on the test server; dropped afterwards."""
    name = f"wetl_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(pg_server_url)
    params["dbname"] = name
    yield make_conninfo("", **params)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
