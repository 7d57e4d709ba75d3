"""The GitLab source on real Celery workers (the tests' own redis-server): enqueue lists the
project, one extract task per changed release; a rerun downloads nothing; changed links
re-extract that release alone; a bad release fails alone, named by tag and asset."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.cli import cli_env, run_cli
from tests.support.gitlabserver import TOKEN, FakeGitLab, Link, Release, example_project
from tests.support.redisserver import RedisServer
from tests.support.tarballs import fromager_tarball, sample, truncated
from tests.support.workers import Broker, redis_broker, workers

PROJECT = "wheels/ai/collection"


@pytest.fixture
def redis(redis_server: RedisServer) -> Iterator[Broker]:
    with redis_broker(redis_server) as broker:
        yield broker


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with FakeGitLab() as server:
        yield server
        assert server.leaks == [], "a credential reached the asset host"


def enqueue_wait(env: dict[str, str]) -> tuple[int, str, str]:
    r = run_cli("enqueue", "--wait", "--timeout", "150", env=env, timeout=180)
    return r.returncode, r.stdout, r.stderr


def test_workers_extract_gitlab_releases_incrementally(
    gitlab: FakeGitLab, tmp_path: Path, db_url: str, redis: Broker
) -> None:
    p = example_project(gitlab, PROJECT)
    bad = "v0.9.0+cpu-ubi9"
    gitlab.put_file(f"wheels-{bad[1:]}-x86_64.tar.gz", truncated(fromager_tarball(sample("flask"))))
    p.releases.append(
        Release(bad, "2026-10-01T00:00:00Z", links=[Link(f"wheels-{bad[1:]}-x86_64.tar.gz")])
    )
    env = cli_env(
        spool=tmp_path / "spool",
        source=gitlab.source_url(PROJECT),
        database_url=db_url,
        ETL_SOURCE_TOKEN=TOKEN,
        **redis.env(),
    )
    with workers(env, tmp_path / "logs", 2) as pool:
        code, out, err = enqueue_wait(env)
        assert code == 1, (out, err, pool.log_tail())
        assert "extract: 2 spooled, 0 unchanged, 1 failed" in out, out
        assert f"tag {bad}, asset wheels-{bad[1:]}-x86_64.tar.gz" in out + err
        first = gitlab.downloads()
        assert first == 4  # 3 good tarballs + the truncated one

        code, out, err = enqueue_wait(env)
        assert "extract: 0 spooled, 2 unchanged, 1 failed" in out, (out, err)
        assert gitlab.downloads() == first + 1  # only the failed release is tried again

        # a link added to a release, released_at unchanged: that release alone again
        rel = p.releases[1]
        gitlab.put_file(
            f"wheels-{rel.tag[1:]}-ppc64le.tar.gz", fromager_tarball(sample("stevedore"))
        )
        rel.links.append(Link(f"wheels-{rel.tag[1:]}-ppc64le.tar.gz"))
        code, out, err = enqueue_wait(env)
        assert "extract: 1 spooled, 1 unchanged, 1 failed" in out, (out, err)
        pool.stop()
    with psycopg.connect(db_url) as conn:
        archs = conn.execute(
            "SELECT architecture FROM artifacts WHERE release = %s ORDER BY 1", [rel.tag[1:]]
        ).fetchall()
    assert archs == [("ppc64le",), ("x86_64",)]
