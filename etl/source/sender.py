"""One GET through requests' :class:`~requests.adapters.HTTPAdapter`, without the work
``Session.request`` redoes on every call.

``Session.request`` prepares each request through the session (merging headers, cookies,
hooks, looking up ``~/.netrc``), then asks the environment for proxies and CA bundles
(``get_environ_proxies`` walks ``os.environ`` twice per request) before the adapter sends
it.  Measured over HTTP on the bench's source (1,703 documents of ~53 KB), that was about
1 ms of CPU per request, as much as urllib3 needs for the whole exchange.  Here the
request is prepared directly (:class:`requests.PreparedRequest`, the same headers a
session sends) and what the environment says is read once per origin: the answers are the
same for the life of a run (the environment does not change under it), so nothing a
session would have done is lost: proxies and ``no_proxy`` from the environment,
``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` when verification is on, ``~/.netrc``
credentials when no other credentials apply.  No cookies are kept (the transport never
wanted them), and no redirect is followed (the transport follows them itself).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from requests.utils import default_headers, get_environ_proxies, get_netrc_auth

from etl.source.origins import origin

Origin = tuple[str, str, int | None]


class EnvSettings:
    """What the environment says for one origin (as ``Session`` with ``trust_env``)."""

    __slots__ = ("netrc", "proxies", "verify")

    def __init__(self, url: str, verify: bool | str) -> None:
        self.proxies: dict[str, str] = dict(get_environ_proxies(url, no_proxy=None))
        if verify is True:
            env = os.environ
            verify = env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE") or True
        self.verify: bool | str = verify
        creds = get_netrc_auth(url)
        self.netrc: AuthBase | None = requests.auth.HTTPBasicAuth(*creds) if creds else None


class PoolKeyAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` that works out a connection pool's key (scheme, host, port, TLS
    settings) once per origin and TLS setting, not once per request (requests does it
    with a ``urlparse`` and, when verification is a CA bundle path, an ``isdir``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._keys: dict[tuple[Origin, Any, Any], Any] = {}

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:  # (host params, pool kwargs), two dicts
        key = (origin(request.url or ""), verify, cert)
        got = self._keys.get(key)
        if got is None:
            got = super().build_connection_pool_key_attributes(request, verify, cert)
            self._keys[key] = got
        return dict(got[0]), dict(got[1])


class Sender:
    """Sends GETs through one adapter; thread-safe."""

    def __init__(self, adapter: HTTPAdapter, user_agent: str, verify: bool | str) -> None:
        self.adapter = adapter
        self._verify = verify
        self._headers = default_headers()
        self._headers["User-Agent"] = user_agent
        self._env: dict[Origin, EnvSettings] = {}
        self._lock = threading.Lock()

    def _settings(self, url: str) -> EnvSettings:
        key = origin(url)
        got = self._env.get(key)
        if got is None:
            got = EnvSettings(url, self._verify)
            with self._lock:
                self._env.setdefault(key, got)
        return got

    def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        auth: AuthBase | None,
        timeout: tuple[float, float],
    ) -> requests.Response:
        """``GET url`` streamed, no redirects followed (raises requests' exceptions)."""
        env = self._settings(url)
        return self.adapter.send(
            self.prepare(url, headers=headers, auth=auth),
            stream=True,
            timeout=timeout,
            verify=env.verify,
            proxies=env.proxies,
        )

    def prepare(
        self, url: str, *, headers: Mapping[str, str], auth: AuthBase | None
    ) -> requests.PreparedRequest:
        """The request ``Session.prepare_request`` would make (without a cookie jar)."""
        env = self._settings(url)
        merged = self._headers.copy()
        merged.update(headers)
        # PreparedRequest.prepare() without its cookie jar (no cookies are ever sent)
        prepared = requests.PreparedRequest()
        prepared.prepare_method("GET")
        prepared.prepare_url(url, None)
        prepared.prepare_headers(merged)
        prepared.prepare_body(None, None)
        prepared.prepare_auth(auth or env.netrc, url)
        prepared.prepare_hooks(None)
        return prepared

    def close(self) -> None:
        self.adapter.close()
