"""Fetching one body over HTTP(S): the mechanics behind :meth:`etl.source.SourceClient.get`.

* Redirects are followed here, one hop at a time, and the credentials are attached per
  request by origin: the token reaches the base URL's origin only, never another one.
* Retries: connection errors, timeouts (a stalled body is a read timeout), the transient
  statuses of :func:`~etl.source.responses.classify_status`, a connection reset mid-body and a
  body shorter than its ``Content-Length``; the one policy of :mod:`etl.backoff`, at least the
  server's ``Retry-After``, at most ``settings.retries`` attempts and
  ``settings.retry_max_seconds`` in all.
* The size limit is checked on ``Content-Length`` before any byte of body is read, then on
  the decoded bytes as they stream in; every byte is reserved in the :class:`ByteBudget`
  before it is kept.
"""

from __future__ import annotations

import logging
import random
import threading
import warnings
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import InsecureRequestWarning

from etl.backoff import Backoff, sleep
from etl.config import Settings
from etl.errors import FatalFetchError, FetchError, TransientFetchError
from etl.redact import redact_url, scrub, strip_userinfo
from etl.source import deadline
from etl.source.budget import Reservation
from etl.source.files import Fetched
from etl.source.origins import same_origin
from etl.source.responses import (
    Decision,
    Validators,
    classify_status,
    parse_retry_after,
    reason_of,
)
from etl.source.sender import PoolKeyAdapter, Sender
from etl.source.stats import Counters
from etl.source.streambody import RetrySignal as _Retry
from etl.source.streambody import StreamBody, read_document

log = logging.getLogger("etl.source")

MAX_REDIRECTS = 5
BACKOFF_CAP = 30.0
T = TypeVar("T")


class _ScrubFilter(logging.Filter):
    """Masks the secrets in urllib3's debug lines (they show request URLs as sent)."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = scrub(text, self._secrets)
        if clean != text:
            record.msg, record.args = clean, ()
        return True


_URLLIB3_LOG = logging.getLogger("urllib3.connectionpool")


class HttpTransport:
    """One connection pool (requests' ``HTTPAdapter``) shared by every worker thread."""

    def __init__(
        self,
        settings: Settings,
        *,
        base_url: str,
        auth: requests.auth.AuthBase | None,
        secrets: tuple[str, ...],
        counters: Counters,
        backoff_base: float,
        verify: bool | str,
    ) -> None:
        self.settings = settings
        self.base_url = base_url
        self._auth = auth
        self._secrets = secrets
        self._counters = counters
        self._backoff_base = backoff_base
        self._rng = random.Random()  # one for all fetches: seeding one per fetch costs
        self._timeout = (settings.connect_timeout, settings.read_timeout)
        adapter = PoolKeyAdapter(
            pool_connections=4, pool_maxsize=max(10, 2 * settings.workers + 2), max_retries=0
        )
        deadline.install(adapter.poolmanager)
        # no Session: no cookies (nothing to share between threads, nothing to carry across
        # origins), and none of its per-request work (see etl.source.sender)
        self._sender = Sender(adapter, "wheels-etl/0.1", verify)
        if verify is False:
            _warn_insecure_once()
        self._closed = threading.Event()
        self._watchdog = deadline.Watchdog()
        self._log_filter = _ScrubFilter(secrets) if secrets else None
        if self._log_filter is not None:
            _URLLIB3_LOG.addFilter(self._log_filter)

    def cancel(self) -> None:
        """Stop every fetch now: waits end, in-flight reads are cut, nothing new starts."""
        self._closed.set()
        self._watchdog.cancel()

    def close(self) -> None:
        self._closed.set()
        self._watchdog.close()
        self._sender.close()
        if self._log_filter is not None:
            _URLLIB3_LOG.removeFilter(self._log_filter)

    def show(self, url: str) -> str:
        return redact_url(url, self._secrets)

    def fetch(
        self, url: str, res: Reservation, release: str | None, conditional: Validators | None
    ) -> Fetched | None:
        """The body of ``url`` (``None``: 304), retrying what is transient."""

        def whole(resp: requests.Response, current: str) -> Fetched:
            data = read_document(
                resp,
                res,
                current,
                release,
                limit=self.settings.max_file_bytes,
                shown=self.show(current),
                read_timeout=self._timeout[1],
                counters=self._counters,
            )
            validators = Validators(resp.headers.get("ETag"), resp.headers.get("Last-Modified"))
            return self.show(current), data, validators

        return self._retrying(
            url,
            release,
            self.settings.document_timeout,
            lambda: self._exchange(url, release, conditional, whole),
            res.reset,
        )

    def stream(
        self,
        url: str,
        release: str | None,
        consume: Callable[[StreamBody], T],
        *,
        seconds: float,
    ) -> T:
        """GET ``url`` and hand its body, as it arrives, to ``consume``; its result.

        The same rules as :meth:`fetch` (redirects one hop at a time with the credentials
        decided per origin, the retry policy of :mod:`etl.backoff`), except that the body
        is never gathered: ``consume`` reads :class:`StreamBody` chunk by chunk.  A
        connection broken mid-body is retried from the start (``consume`` is called
        again, so it must keep nothing from a previous call); ``seconds`` bounds the whole
        answer (a multi-GB body needs more than ``--document-timeout``)."""

        def on_body(resp: requests.Response, current: str) -> T:
            return consume(StreamBody(resp, current, self.show(current), self._counters))

        got = self._retrying(
            url, release, seconds, lambda: self._exchange(url, release, None, on_body), _no_reset
        )
        assert got is not None  # not conditional: a 304 is an error
        return got

    def _retrying(
        self,
        url: str,
        release: str | None,
        seconds: float,
        attempt: Callable[[], T | None],
        reset: Callable[[], None],
    ) -> T | None:
        """``attempt()`` until it succeeds, fails for good, or the retry budget or the
        ``seconds`` deadline of the whole answer is spent."""
        backoff = Backoff(
            base=self._backoff_base,
            cap=BACKOFF_CAP,
            budget=self.settings.retry_max_seconds,
            attempts=self.settings.retries,
            rng=self._rng,
        )
        backoff.start()
        with self._watchdog.watch(seconds) as watch:
            while True:
                if watch.expired is not None:
                    raise self._expired(watch, url, release)
                try:
                    got = attempt()
                except _Retry as exc:
                    if watch.expired is not None:
                        raise self._expired(watch, exc.target, release) from exc
                    reset()
                    self._wait_before_retry(exc, backoff, release, watch)
                    continue
                except FetchError as exc:
                    if watch.expired is not None:
                        raise self._expired(watch, url, release) from exc
                    raise
                if watch.expired is not None:  # the cut read may have looked like an end
                    raise self._expired(watch, url, release)
                return got

    def _expired(self, watch: deadline.Watch, url: str, release: str | None) -> FetchError:
        shown = self.show(url)
        if watch.expired == "cancelled":
            return FetchError("interrupted", url=shown, release=release)
        return TransientFetchError(
            f"no complete answer within the {watch.seconds:g}s document deadline "
            "(--document-timeout)",
            url=shown,
            release=release,
        )

    def _wait_before_retry(
        self, exc: _Retry, backoff: Backoff, release: str | None, watch: deadline.Watch
    ) -> None:
        shown = self.show(exc.target)
        reason = scrub(exc.reason, self._secrets)
        delay = backoff.next_delay(minimum=exc.retry_after)
        if delay is not None and delay > watch.remaining():
            raise TransientFetchError(
                f"{reason}; gave up after {backoff.failures} attempts (waiting {delay:.1f}s more "
                f"would pass the {watch.seconds:g}s document deadline)",
                url=shown,
                release=release,
            )
        if delay is None:
            gave_up = backoff.gave_up
            attempts = backoff.failures
            if gave_up is not None and gave_up.reason == "budget":
                raise TransientFetchError(
                    f"{reason}; gave up after {attempts} attempts (waiting {gave_up.wanted:.1f}s "
                    f"more would exceed the {self.settings.retry_max_seconds:g}s retry budget)",
                    url=shown,
                    release=release,
                )
            raise TransientFetchError(
                f"{reason}; gave up after {attempts} attempts", url=shown, release=release
            )
        attempt = backoff.failures
        self._counters.add("retries")
        self._counters.add("retry_wait_ms", round(delay * 1000))
        log.warning(
            "%s: %s; retry %d of %d in %.2fs",
            shown,
            reason,
            attempt,
            self.settings.retries - 1,
            delay,
        )
        if sleep(delay, self._closed):
            raise FetchError("interrupted while waiting to retry", url=shown, release=release)

    def _exchange(
        self,
        target: str,
        release: str | None,
        conditional: Validators | None,
        on_ok: Callable[[requests.Response, str], T],
    ) -> T | None:
        """One attempt: follow redirects (credentials per origin), map the status; the
        body of a 2xx goes to ``on_ok(response, url)``; ``None``: 304."""
        current = target
        for _hop in range(MAX_REDIRECTS + 1):
            with self._send(current, release, conditional) as resp:
                status = resp.status_code
                what = f"HTTP {status} {resp.reason or ''}".rstrip()
                decision = classify_status(status)
                if decision is Decision.REDIRECT:
                    location = resp.headers.get("Location")
                    if not location:
                        raise FatalFetchError(
                            f"{what} without a Location", url=self.show(current), release=release
                        )
                    current = self._redirect_target(current, location, release)
                    self._counters.add("redirects")
                    continue
                if decision is Decision.NOT_MODIFIED:
                    if conditional is None:
                        raise FatalFetchError(
                            f"{what} to a request that was not conditional",
                            url=self.show(current),
                            release=release,
                        )
                    self._counters.add("not_modified")
                    return None
                if decision is Decision.RETRY:
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                    raise _Retry(what, current, retry_after)
                if decision is Decision.FATAL:
                    raise FatalFetchError(what, url=self.show(current), release=release)
                return on_ok(resp, current)
        raise FatalFetchError(
            f"more than {MAX_REDIRECTS} redirects", url=self.show(target), release=release
        )

    def _redirect_target(self, current: str, location: str, release: str | None) -> str:
        target = strip_userinfo(urljoin(current, location)).split("#", 1)[0]
        if urlsplit(target).scheme.lower() not in ("http", "https"):
            raise FatalFetchError(
                "redirect to a non-HTTP URL refused", url=self.show(current), release=release
            )
        return target

    def _send(
        self, url: str, release: str | None, conditional: Validators | None
    ) -> requests.Response:
        headers: dict[str, str] = {}
        if conditional is not None:
            if conditional.etag:
                headers["If-None-Match"] = conditional.etag
            if conditional.last_modified:
                headers["If-Modified-Since"] = conditional.last_modified
        # credentials go to the base URL's origin only, decided again on every hop
        auth = self._auth if same_origin(url, self.base_url) else None
        self._counters.add("requests")
        try:
            return self._sender.get(url, headers=headers, auth=auth, timeout=self._timeout)
        except requests.exceptions.SSLError as exc:
            raise FatalFetchError(
                f"TLS error: {scrub(reason_of(exc), self._secrets)}",
                url=self.show(url),
                release=release,
            ) from exc
        except requests.exceptions.ConnectTimeout as exc:
            raise _Retry(f"connect timed out after {self._timeout[0]:g}s", url) from exc
        except requests.exceptions.Timeout as exc:
            raise _Retry(f"no response within {self._timeout[1]:g}s (read timeout)", url) from exc
        except requests.exceptions.ConnectionError as exc:
            raise _Retry(f"connection failed: {reason_of(exc)}", url) from exc
        except requests.RequestException as exc:
            raise FatalFetchError(
                f"bad request: {scrub(reason_of(exc), self._secrets)}",
                url=self.show(url),
                release=release,
            ) from exc


_INSECURE_WARNED = threading.Event()


def _no_reset() -> None:
    """Nothing to give back between attempts of a streamed answer."""


def _warn_insecure_once() -> None:
    """``--insecure`` is said once per process, not once per request (urllib3's own
    per-request warning is silenced: the user asked for this)."""
    warnings.filterwarnings("ignore", category=InsecureRequestWarning)
    if not _INSECURE_WARNED.is_set():
        _INSECURE_WARNED.set()
        log.warning(
            "TLS certificate verification is off (--insecure): the source's identity is not "
            "checked, and the token (if any) may reach an impostor"
        )
