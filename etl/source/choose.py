"""Which source reads a source URL: GitLab releases (``gitlab+https://``) or the
wheel-collections protocol (everything else)."""

from __future__ import annotations

from etl.config import Settings
from etl.source.budget import ByteBudget
from etl.source.client import SourceClient
from etl.source.gitlab import is_gitlab_url
from etl.source.gitlabsource import GitLabSource

Source = SourceClient | GitLabSource


def open_source(settings: Settings, *, budget: ByteBudget | None = None) -> Source:
    """The source client for ``settings.source_url`` (raises ConfigError)."""
    if is_gitlab_url(settings.source_url):
        return GitLabSource(settings, budget=budget)
    return SourceClient(settings, budget=budget)
