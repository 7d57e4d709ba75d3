"""Fixtures for talking to a real source: a small valid tree and HTTP servers serving it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.httpserver import SourceServer
from tests.support.redisserver import RedisServer
from tests.support.s3server import S3Server
from tests.support.sourcetree import write_source_tree
from tests.support.tls import TlsFiles, make_tls_files


@pytest.fixture
def source_tree(tmp_path: Path) -> Path:
    """``tmp_path/src``: product ``rhai`` with releases 3.0.0 and 3.0.1, two artifacts each."""
    return write_source_tree(tmp_path / "src")


@pytest.fixture
def http_source(source_tree: Path) -> Iterator[SourceServer]:
    """A started :class:`SourceServer` serving ``source_tree``; closed after the test."""
    with SourceServer(source_tree) as server:
        yield server


@pytest.fixture
def other_origin(tmp_path: Path) -> Iterator[SourceServer]:
    """A second server (another port, so another origin) serving the same tree."""
    tree = tmp_path / "src"
    if not (tree / "index.json").exists():
        write_source_tree(tree)
    with SourceServer(tree) as server:
        yield server


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA and a certificate it issued for 127.0.0.1 (made in-process by trustme)."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One SeaweedFS for the session (tests that kill the store start their own)."""
    server = S3Server(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_spool(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """``s3://<bucket>/<a fresh prefix>/spool``, with this process's AWS_* set to reach it."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return f"{s3_server.new_spool_url()}/spool"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The tests' own ``redis-server`` (free port, temp folder, no persistence), stopped at
    the end of the session: no test touches a Redis it did not start."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server
