"""What the two sources share: the settings, the byte budget, one
:class:`~etl.source.transport.HttpTransport` (secrets, counters, backoff, TLS) and the
life cycle (:meth:`HttpSource.cancel`, :meth:`~HttpSource.close`, ``with``, ``stats``).

:class:`etl.source.client.SourceClient` (the wheel-collections protocol) and
:class:`etl.source.gitlabsource.GitLabSource` (GitLab releases) add what they read.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import requests

from etl.config import Settings
from etl.redact import redact_url
from etl.source.budget import ByteBudget
from etl.source.origins import tls_verify
from etl.source.stats import Counters
from etl.source.transport import HttpTransport


class HttpSource:
    """A source read over one transport; thread-safe (one session, shared by all workers)."""

    def __init__(
        self,
        settings: Settings,
        *,
        base_url: str,
        auth: requests.auth.AuthBase | None,
        secrets: tuple[str, ...],
        budget: ByteBudget | None,
        backoff_base: float | None,
    ) -> None:
        self.settings = settings
        self.budget = budget if budget is not None else ByteBudget(settings.max_inflight_bytes)
        self._secrets = secrets
        self._counters = Counters()
        self._http = HttpTransport(
            settings,
            base_url=base_url,
            auth=auth,
            secrets=secrets,
            counters=self._counters,
            # the first retry waits at most 1/64 of the whole retry budget (0.5 s by default)
            backoff_base=(
                backoff_base
                if backoff_base is not None
                else min(0.5, settings.retry_max_seconds / 64)
            ),
            verify=tls_verify(settings),
        )
        self._closed = False

    def cancel(self) -> None:
        """Ctrl-C: every wait and in-flight read of every thread ends now with a
        :class:`~etl.errors.FetchError`; nothing new starts.  :meth:`close` still follows."""
        self._closed = True
        self._http.cancel()
        self.budget.cancel()

    def close(self) -> None:
        self._closed = True
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def stats(self) -> dict[str, int]:
        """A snapshot of the counters: ``requests`` (HTTP requests sent, redirects and
        retries included, plus files read), ``not_modified``, ``retries``, ``retry_wait_ms``
        (time spent waiting to retry), ``bytes`` (decoded body bytes) and ``redirects``."""
        return self._counters.snapshot()

    def _show(self, url: str) -> str:
        return redact_url(url, self._secrets)
