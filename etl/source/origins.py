"""Origins: the unit of trust for credentials.  The bearer token (or the URL's userinfo, or
GitLab's ``PRIVATE-TOKEN``) goes to the base URL's origin only, decided again on every
redirect hop by the transport."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import requests

from etl.config import Settings
from etl.errors import ConfigError

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the default port filled in: the unit of trust for tokens."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, host, port if port is not None else DEFAULT_PORTS.get(scheme)


def same_origin(a: str, b: str) -> bool:
    return origin(a) == origin(b)


class BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def __repr__(self) -> str:
        return "BearerAuth(***)"


class PrivateTokenAuth(requests.auth.AuthBase):
    """GitLab's ``PRIVATE-TOKEN`` header (attached per origin by the transport, like
    :class:`BearerAuth`)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["PRIVATE-TOKEN"] = self._token
        return r

    def __repr__(self) -> str:
        return "PrivateTokenAuth(***)"


def tls_verify(settings: Settings) -> bool | str:
    """``requests``' ``verify``: off (``--insecure``), on, or the CA bundle's path."""
    if settings.verify_tls and settings.ca_bundle:
        if not Path(settings.ca_bundle).is_file():
            raise ConfigError(f"CA bundle not found: {settings.ca_bundle}")
        return settings.ca_bundle
    return settings.verify_tls
