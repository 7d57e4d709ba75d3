"""The sender reads the environment once per origin: the same answers as a
``requests.Session`` (``trust_env``) gives per request.  No sockets here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from etl.source.origins import BearerAuth
from etl.source.sender import EnvSettings, PoolKeyAdapter, Sender

URL = "http://src.example:8080/rhai/1.0/release.json"


def _session_settings(url: str, verify: bool | str) -> Any:
    with requests.Session() as s:
        return s.merge_environment_settings(url, {}, True, verify, None)


def test_proxies_and_no_proxy_as_a_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://tls-proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    for url in (URL, "https://src.example/x", "http://internal.example/x"):
        assert EnvSettings(url, True).proxies == _session_settings(url, True)["proxies"]
    assert EnvSettings(URL, True).proxies["http"] == "http://proxy.invalid:3128"
    assert EnvSettings("http://internal.example/x", True).proxies == {}


@pytest.mark.parametrize("verify", [True, False, "own-ca.pem"])
def test_ca_bundle_from_the_environment_as_a_session(
    monkeypatch: pytest.MonkeyPatch, verify: bool | str
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "env-ca.pem")
    assert EnvSettings(URL, verify).verify == _session_settings(URL, verify)["verify"]
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setenv("CURL_CA_BUNDLE", "curl-ca.pem")
    assert EnvSettings(URL, verify).verify == _session_settings(URL, verify)["verify"]


def test_netrc_only_when_no_credentials_apply(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine src.example login user password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    sender = Sender(PoolKeyAdapter(max_retries=0), "wheels-etl/test", True)
    with requests.Session() as s:
        s.headers["User-Agent"] = "wheels-etl/test"
        for auth in (None, BearerAuth("tok")):
            ours = sender.prepare(URL, headers={"If-None-Match": '"x"'}, auth=auth)
            theirs = s.prepare_request(
                requests.Request("GET", URL, headers={"If-None-Match": '"x"'}, auth=auth)
            )
            assert (ours.method, ours.url, dict(ours.headers)) == (
                theirs.method,
                theirs.url,
                dict(theirs.headers),
            )
    assert EnvSettings("http://other.example/", True).netrc is None
    sender.close()
