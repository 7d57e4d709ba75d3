"""A GitLab release's spool file says when its release was read (``extracted_at``), as a
protocol release's does: of two reads of one ``released_at`` that saw different wheels
links, the later read wins at load, whichever finished first."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from tests.support.cli import cli_env, run_cli
from tests.support.gitlabserver import TOKEN, FakeGitLab, Link, Release
from tests.support.tarballs import fromager_tarball, sample


def test_extracted_at_is_before_the_tarball_was_served(tmp_path: Path) -> None:
    data = fromager_tarball(sample("flask"))
    served: list[datetime] = []

    def body() -> Iterator[bytes]:
        served.append(datetime.now(UTC))
        yield data

    with FakeGitLab() as gitlab:
        asset = "wheels-1.0.0+cpu-ubi9-x86_64.tar.gz"
        gitlab.put_file(asset, body)
        gitlab.project("wheels/one").releases.append(
            Release("v1.0.0+cpu-ubi9", "2026-11-02T08:00:00Z", links=[Link(asset)])
        )
        env = cli_env(
            spool=tmp_path / "spool", source=gitlab.source_url("wheels/one"), ETL_SOURCE_TOKEN=TOKEN
        )
        done = run_cli("extract", env=env)
        assert done.returncode == 0, done
        assert gitlab.leaks == []
    (ready,) = (tmp_path / "spool" / "ready").iterdir()
    meta = pq.read_metadata(ready).metadata
    text = meta[b"wheels_etl.extracted_at"].decode()
    extracted_at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert len(served) == 1 and extracted_at < served[0], (text, served)
