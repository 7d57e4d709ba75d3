"""The source transport against a real HTTP server (and real files): every hostile case."""

from __future__ import annotations

import gzip
import json
import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from etl.config import Settings
from etl.errors import (
    ConfigError,
    FatalFetchError,
    FetchError,
    ProtocolError,
    TransientFetchError,
)
from etl.source import ByteBudget, ProductRef, SourceClient, Validators
from etl.source.jsontext import parse_json
from tests.support.httpserver import Fault, SourceServer
from tests.support.sourcetree import sample_bodies, write_source_tree
from tests.support.tls import TlsFiles

TOKEN = "tok-3f9a-SECRET-7c21"
GRAPH = "/rhai/3.0.0/x86_64/cpu/graph.json"
MIB = 1024 * 1024


def settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "source_url": url,
        "retries": 4,
        "retry_max_seconds": 20.0,
        "connect_timeout": 2.0,
        "read_timeout": 0.5,
        "workers": 4,
    }
    values.update(overrides)
    return Settings(**values)


def client(url: str, **overrides: Any) -> SourceClient:
    budget = overrides.pop("budget", None)
    return SourceClient(settings(url, **overrides), budget=budget, backoff_base=0.01)


def graph_bytes() -> bytes:
    return sample_bodies()["graph.json"]


# --- the protocol documents --------------------------------------------------------------


def test_index_and_releases_over_http(http_source: SourceServer) -> None:
    with client(http_source.url) as c:
        [product] = c.products()
        assert product.error is None
        assert product.releases_url == http_source.link("rhai/releases.json")
        refs = list(c.releases(product))
    assert [r.version for r in refs] == ["3.0.0", "3.0.1"]
    assert all(r.error is None for r in refs)
    assert refs[0].url == http_source.link("rhai/3.0.0/release.json")
    assert refs[0].updated_at is not None and refs[0].updated_at.utcoffset() is not None


def test_pages_are_streamed_and_relative_next_resolves(tmp_path: Path) -> None:
    tree = write_source_tree(tmp_path / "t", {"rhai": ["1.0", "1.1", "1.2"]}, page_size=1)
    with SourceServer(tree) as server, client(server.url) as c:
        [product] = c.products()
        pages = c.releases(product)
        first = next(pages)
        assert first.version == "1.0"
        assert server.count("/rhai/releases.json?page=2") == 0  # not read ahead
        rest = list(pages)
        assert [r.version for r in rest] == ["1.1", "1.2"]
        assert server.count("/rhai/releases.json?page=2") == 1
        assert server.count("/rhai/releases.json?page=3") == 1
        assert rest[-1].url == server.link("rhai/1.2/release.json")


def test_next_looping_back_is_fatal_after_what_was_read(tmp_path: Path) -> None:
    tree = write_source_tree(tmp_path / "t", {"rhai": ["1.0", "1.1"]}, page_size=1)
    page2 = tree / "rhai" / "releases.json@page=2"
    doc = json.loads(page2.read_text())
    doc["next"] = "releases.json"  # back to page 1
    page2.write_text(json.dumps(doc))
    with SourceServer(tree) as server, client(server.url) as c:
        [product] = c.products()
        seen: list[str] = []
        with pytest.raises(FatalFetchError, match="loops back") as info:
            for ref in c.releases(product):
                seen.append(ref.version)
    assert seen == ["1.0", "1.1"]
    assert "rhai" in str(info.value)


def test_page_for_another_product_is_a_protocol_error(http_source: SourceServer) -> None:
    http_source.put(
        "/rhai/releases.json", json.dumps({"product": "other", "releases": []}).encode()
    )
    with client(http_source.url) as c:
        [product] = c.products()
        with pytest.raises(ProtocolError, match="'other'"):
            list(c.releases(product))


def test_unknown_index_format_names_the_value(http_source: SourceServer) -> None:
    http_source.put("/index.json", b'{"format": "wheel-collections/9", "products": []}')
    with client(http_source.url) as c, pytest.raises(ProtocolError) as info:
        c.products()
    assert "wheel-collections/9" in str(info.value)
    assert "index.json" in str(info.value)


def test_invalid_entries_become_error_refs(http_source: SourceServer) -> None:
    index = {
        "format": "wheel-collections/1",
        "products": [
            {"name": "rhai", "releases": "rhai/releases.json"},
            {"name": "../evil", "releases": "evil/releases.json"},
            {"name": "nourl"},
            "not-an-object",
        ],
    }
    http_source.put("/index.json", json.dumps(index).encode())
    releases = {
        "product": "rhai",
        "releases": [
            {"version": "1.0", "updated_at": "2026-10-01T12:00:00Z", "url": "1.0/release.json"},
            {"version": "a/../b", "updated_at": "2026-10-01T12:00:00Z", "url": "x"},
            {"version": "1.1", "updated_at": "yesterday", "url": "1.1/release.json"},
            {"version": "1.2", "updated_at": "2026-10-01T12:00:00Z"},
            {"version": "1.0", "updated_at": "2026-10-01T12:00:00Z", "url": "1.0/release.json"},
            {"version": "1.3", "updated_at": "2026-10-01T12:00:00Z", "url": "file:///etc/passwd"},
            {"version": "1.4", "updated_at": "2026-10-01T12:00:00Z", "url": "/abs/1.4.json"},
        ],
    }
    http_source.put("/rhai/releases.json", json.dumps(releases).encode())
    with client(http_source.url) as c:
        products = c.products()
        assert [p.error is None for p in products] == [True, False, False, False]
        assert "'../evil'" in str(products[1].error)
        assert products[1].name == "products[1]"
        assert "'releases'" in str(products[2].error)
        refs = list(c.releases(products[0]))
        with pytest.raises(FetchError, match="evil"):
            next(iter(c.releases(products[1])))
    assert [r.error is None for r in refs] == [True, False, False, False, False, False, True]
    assert "invalid version 'a/../b'" in str(refs[1].error)
    assert refs[1].version == ""
    assert "yesterday" in str(refs[2].error) and "rhai/1.1" in str(refs[2].error)
    assert "missing key 'url'" in str(refs[3].error)
    assert "listed twice" in str(refs[4].error)
    assert "file://" in str(refs[5].error)
    assert refs[6].url == http_source.link("abs/1.4.json")


def test_malformed_json_gives_line_and_column_and_frees_the_budget(
    http_source: SourceServer,
) -> None:
    http_source.put("/bad.json", b'{\n  "a": 1,\n  "b": }\n')
    budget = ByteBudget(10 * MIB)
    with client(http_source.url, budget=budget) as c:
        assert [p.name for p in c.products()] == ["rhai"]
        # a listing page is parsed and its bytes given back at once, even when malformed
        with pytest.raises(FatalFetchError, match="line 3 column 8") as listing:
            list(c.releases(ProductRef("rhai", http_source.link("bad.json"))))
        assert budget.in_use == 0
        doc = c.get(http_source.link("bad.json"), release="rhai/1.0")
        assert doc is not None
        try:
            with pytest.raises(FatalFetchError, match="line 3 column 8") as info:
                parse_json(doc.data, url=doc.url, release="rhai/1.0")
        finally:
            doc.release()
    assert listing.value.url == http_source.link("bad.json")
    assert info.value.release == "rhai/1.0"
    assert info.value.url == http_source.link("bad.json")
    assert budget.in_use == 0


# --- retries -----------------------------------------------------------------------------


def test_429_with_retry_after_seconds_is_honoured(http_source: SourceServer) -> None:
    http_source.script(GRAPH, [Fault.status(429, {"Retry-After": "1"})])
    with client(http_source.url) as c:
        doc = c.get(http_source.link(GRAPH))
        assert doc is not None and doc.data == graph_bytes()
        stats = c.stats
    assert http_source.count(GRAPH) == 2
    assert stats["retries"] == 1
    assert stats["retry_wait_ms"] >= 1000  # waited what the server asked, not the tiny backoff


def test_429_with_retry_after_http_date_is_honoured(http_source: SourceServer) -> None:
    # the date is written when the 429 is sent (3 s ahead: at least 2 s once whole seconds)
    http_source.script(GRAPH, [Fault.retry_at_date(429, 3)])
    with client(http_source.url) as c:
        assert c.get(http_source.link(GRAPH)) is not None
        stats = c.stats
    assert http_source.count(GRAPH) == 2
    assert stats["retry_wait_ms"] >= 500  # the date is whole seconds: at least 1 s - rounding


def test_flapping_503_502_504_then_success(http_source: SourceServer) -> None:
    http_source.script(GRAPH, [Fault.status(s) for s in (503, 502, 504)])
    with client(http_source.url, retries=5) as c:
        doc = c.get(http_source.link(GRAPH))
        assert doc is not None and doc.data == graph_bytes()
        assert c.stats["retries"] == 3
    assert http_source.count(GRAPH) == 4


def test_503_forever_gives_up_after_the_configured_attempts(http_source: SourceServer) -> None:
    http_source.always(GRAPH, Fault.status(503))
    with client(http_source.url, retries=3) as c, pytest.raises(TransientFetchError) as info:
        c.get(http_source.link(GRAPH), release="rhai/3.0.0")
    assert http_source.count(GRAPH) == 3
    err = info.value
    assert "HTTP 503" in str(err) and "3 attempts" in str(err)
    assert err.url == http_source.link(GRAPH) and err.release == "rhai/3.0.0"


def test_retry_after_beyond_the_retry_budget_gives_up_at_once(http_source: SourceServer) -> None:
    http_source.always(GRAPH, Fault.status(503, {"Retry-After": "3600"}))
    with client(http_source.url, retry_max_seconds=5) as c, pytest.raises(TransientFetchError) as i:
        c.get(http_source.link(GRAPH))
    assert http_source.count(GRAPH) == 1
    assert "retry budget" in str(i.value)


def test_connection_refused_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with client(f"http://127.0.0.1:{port}/", retries=2) as c, pytest.raises(TransientFetchError):
        c.products()


def test_connection_reset_mid_body_is_retried(http_source: SourceServer) -> None:
    http_source.script(GRAPH, [Fault.reset(after=100)])
    with client(http_source.url) as c:
        doc = c.get(http_source.link(GRAPH))
    assert doc is not None and doc.data == graph_bytes()
    assert http_source.count(GRAPH) == 2


def test_connection_reset_every_time_names_url_and_problem(http_source: SourceServer) -> None:
    http_source.always(GRAPH, Fault.reset(after=100))
    with client(http_source.url, retries=2) as c, pytest.raises(FetchError) as info:
        c.get(http_source.link(GRAPH))
    assert "connection" in str(info.value).lower()
    assert info.value.url == http_source.link(GRAPH)


@pytest.mark.parametrize("after", [None, 50], ids=["before-headers", "mid-body"])
def test_stall_is_a_read_timeout_and_is_retried(
    http_source: SourceServer, after: int | None
) -> None:
    http_source.script(GRAPH, [Fault.stall(5, after=after)])
    with client(http_source.url) as c:
        doc = c.get(http_source.link(GRAPH))
    assert doc is not None and doc.data == graph_bytes()
    assert http_source.count(GRAPH) == 2


def test_stall_every_time_gives_up(http_source: SourceServer) -> None:
    http_source.always(GRAPH, Fault.stall(5, after=50))
    with client(http_source.url, retries=2) as c, pytest.raises(TransientFetchError) as info:
        c.get(http_source.link(GRAPH))
    assert "stalled" in str(info.value) and "read timeout" in str(info.value)


def test_body_shorter_than_content_length(http_source: SourceServer) -> None:
    http_source.script(GRAPH, [Fault.short(missing=20)])
    with client(http_source.url) as c:
        doc = c.get(http_source.link(GRAPH))
        assert doc is not None and doc.data == graph_bytes()
        http_source.always(GRAPH, Fault.short(missing=20))
        with pytest.raises(FetchError, match="shorter than its Content-Length") as info:
            c.get(http_source.link(GRAPH))
    assert info.value.url == http_source.link(GRAPH)


# --- bodies: gzip and the size limit ------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True])
def test_gzip_bodies_are_decoded(source_tree: Path, chunked: bool) -> None:
    with SourceServer(source_tree, gzip=True, chunked=chunked) as server:
        server.put("/big.json", b"[" + b"1," * 200_000 + b"1]")
        with client(server.url) as c:
            doc = c.get(server.link(GRAPH))
            assert doc is not None and doc.data == graph_bytes()
            big = c.get(server.link("big.json"))
            assert big is not None and json.loads(big.data) == [1] * 200_001
        assert "gzip" in (server.requests_for(GRAPH)[0].header("accept-encoding") or "")


def test_content_length_over_the_limit_is_rejected_unread(http_source: SourceServer) -> None:
    size = 64 * MIB
    http_source.always("/huge.json", Fault.huge(size))
    with client(http_source.url, max_file_bytes=MIB) as c:
        with pytest.raises(FatalFetchError, match="over the 1048576-byte limit") as info:
            c.get(http_source.link("huge.json"), release="rhai/1.0")
        assert c.stats["bytes"] == 0  # not one byte of the body was read
    assert http_source.count("/huge.json") == 1  # fatal: not retried
    assert http_source.sent("/huge.json") < size
    assert info.value.release == "rhai/1.0"


def test_streamed_body_over_the_limit_stops_early(http_source: SourceServer) -> None:
    size = 16 * MIB
    http_source.always("/huge.json", Fault.huge(size, chunked=True))
    with client(http_source.url, max_file_bytes=MIB) as c:
        with pytest.raises(FatalFetchError, match="over the 1048576-byte limit"):
            c.get(http_source.link("huge.json"))
        assert c.stats["bytes"] <= MIB + 64 * 1024
    assert http_source.sent("/huge.json") < size


def test_decoded_size_limit_applies_to_gzip(source_tree: Path) -> None:
    with SourceServer(source_tree, gzip=True) as server:
        server.put("/zeros.json", b"0" * (4 * MIB))  # compresses to a few KB
        with client(server.url, max_file_bytes=MIB) as c:
            with pytest.raises(FatalFetchError, match="stopped after"):
                c.get(server.link("zeros.json"))
            assert c.stats["bytes"] <= MIB + 64 * 1024


# --- fatal statuses and redirects -----------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 500, 501])
def test_other_statuses_are_fatal_and_not_retried(http_source: SourceServer, status: int) -> None:
    http_source.always(GRAPH, Fault.status(status))
    with client(http_source.url) as c, pytest.raises(FatalFetchError) as info:
        c.get(http_source.link(GRAPH), release="rhai/3.0.0")
    assert f"HTTP {status}" in str(info.value)
    assert info.value.url == http_source.link(GRAPH)
    assert http_source.count(GRAPH) == 1


def test_missing_document_is_a_404(http_source: SourceServer) -> None:
    with client(http_source.url) as c, pytest.raises(FatalFetchError, match="HTTP 404"):
        c.get(http_source.link("rhai/9.9.9/release.json"))


def test_redirect_to_another_origin_drops_the_token(
    http_source: SourceServer, other_origin: SourceServer
) -> None:
    http_source.script(GRAPH, [Fault.redirect(other_origin.link(GRAPH))])
    with client(http_source.url, source_token=TOKEN) as c:
        doc = c.get(http_source.link(GRAPH))
        assert c.stats["redirects"] == 1
    assert doc is not None and doc.data == graph_bytes()
    assert doc.url == other_origin.link(GRAPH)
    [first] = http_source.requests_for(GRAPH)
    [second] = other_origin.requests_for(GRAPH)
    assert first.header("authorization") == f"Bearer {TOKEN}"
    assert second.header("authorization") is None


def test_redirect_to_another_host_name_on_the_same_port_drops_the_token(
    http_source: SourceServer,
) -> None:
    target = f"http://localhost:{http_source.port}/rhai/3.0.1/x86_64/cpu/graph.json"
    http_source.script(GRAPH, [Fault.redirect(target, code=307)])
    with client(http_source.url, source_token=TOKEN) as c:
        assert c.get(http_source.link(GRAPH)) is not None
    auth = [r.header("authorization") for r in http_source.requests]
    assert auth == [f"Bearer {TOKEN}", None]


def test_same_origin_redirect_keeps_the_token(http_source: SourceServer) -> None:
    http_source.script(GRAPH, [Fault.redirect("/rhai/3.0.1/x86_64/cpu/graph.json", code=301)])
    with client(http_source.url, source_token=TOKEN) as c:
        doc = c.get(http_source.link(GRAPH))
    assert doc is not None and doc.url == http_source.link("rhai/3.0.1/x86_64/cpu/graph.json")
    assert [r.header("authorization") for r in http_source.requests] == [f"Bearer {TOKEN}"] * 2


def test_token_is_never_sent_to_another_origin_directly(
    http_source: SourceServer, other_origin: SourceServer
) -> None:
    with client(http_source.url, source_token=TOKEN) as c:
        assert c.get(other_origin.link(GRAPH)) is not None
    assert other_origin.requests[0].header("authorization") is None


def test_redirect_loop_is_fatal(http_source: SourceServer) -> None:
    http_source.always(GRAPH, Fault.redirect(GRAPH))
    with client(http_source.url) as c, pytest.raises(FatalFetchError, match="redirects"):
        c.get(http_source.link(GRAPH))


def test_token_never_appears_in_errors_or_logs(
    http_source: SourceServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    http_source.always("/a", Fault.status(503))
    http_source.always("/b", Fault.status(404))
    http_source.always("/c", Fault.reset())
    http_source.always("/d", Fault.redirect("/d"))
    base = http_source.url.replace("http://", "http://user:" + TOKEN + "@")
    messages: list[str] = []
    for token_settings in ({"source_token": TOKEN}, {"source_url": base}):
        with client(http_source.url, retries=2, **token_settings) as c:
            assert TOKEN not in c.base_url
            for path in ("a", "b", "c", "d", f"e?token={TOKEN}"):
                with pytest.raises(FetchError) as info:
                    c.get(http_source.link(path))
                messages += [str(info.value), repr(info.value), info.value.url or ""]
    assert messages and not [m for m in messages if TOKEN in m]
    assert TOKEN not in caplog.text
    # the userinfo form is basic auth, sent to the base origin only
    assert (http_source.requests[-1].header("authorization") or "").startswith("Basic ")


# --- conditional requests -------------------------------------------------------------


def test_conditional_request_304_returns_none(http_source: SourceServer) -> None:
    url = http_source.link("rhai/3.0.0/release.json")
    with client(http_source.url) as c:
        doc = c.get(url)
        assert doc is not None
        v = doc.validators
        assert v.etag and v.last_modified
        assert c.get(url, conditional=v) is None
        assert c.get(url, conditional=Validators(last_modified=v.last_modified)) is None
        assert c.get(url, conditional=Validators(etag='"other"')) is not None
        assert c.stats["not_modified"] == 2
    sent = http_source.requests_for("/rhai/3.0.0/release.json")
    assert sent[1].header("if-none-match") == v.etag
    assert sent[2].header("if-modified-since") == v.last_modified


def test_304_without_a_conditional_request_is_fatal(http_source: SourceServer) -> None:
    http_source.always(GRAPH, Fault.status(304))
    with client(http_source.url) as c, pytest.raises(FatalFetchError, match="not conditional"):
        c.get(http_source.link(GRAPH))


# --- file:// and plain directory sources ---------------------------------------------


@pytest.mark.parametrize("form", ["dir", "dir/", "file-uri"])
def test_directory_and_file_url_bases(source_tree: Path, form: str) -> None:
    base = {
        "dir": str(source_tree),
        "dir/": str(source_tree) + "/",
        "file-uri": source_tree.as_uri(),
    }[form]
    with client(base) as c:
        assert c.base_url == source_tree.resolve().as_uri() + "/"
        [product] = c.products()
        refs = list(c.releases(product))
        assert [r.version for r in refs] == ["3.0.0", "3.0.1"]
        assert refs[0].url.startswith("file:///")
        doc = c.get(refs[0].url.replace("release.json", "x86_64/cpu/graph.json"))
        assert doc is not None and doc.data == graph_bytes()


def test_file_source_conditional_and_errors(source_tree: Path) -> None:
    path = source_tree / "rhai" / "3.0.0" / "release.json"
    with client(str(source_tree), max_file_bytes=4000) as c:
        doc = c.get(path.as_uri())
        assert doc is not None
        assert c.get(path.as_uri(), conditional=doc.validators) is None
        lm_only = Validators(last_modified=doc.validators.last_modified)
        assert c.get(path.as_uri(), conditional=lm_only) is None
        os.utime(path, (time.time() + 10, time.time() + 10))
        assert c.get(path.as_uri(), conditional=doc.validators) is not None
        assert c.get(path.as_uri(), conditional=lm_only) is not None
        with pytest.raises(FatalFetchError, match="no such file"):
            c.get((source_tree / "nope.json").as_uri())
        with pytest.raises(FatalFetchError, match="outside the source directory"):
            c.get(source_tree.as_uri() + "/../../etc/passwd")
        (source_tree / "big.json").write_bytes(b"1" * 5000)
        with pytest.raises(FatalFetchError, match="over the 4000-byte limit"):
            c.get((source_tree / "big.json").as_uri())
        assert c.budget.in_use == len(doc.data)
        doc.release()
        assert c.budget.in_use == 0


def test_remote_source_cannot_point_at_local_files(http_source: SourceServer) -> None:
    with client(http_source.url) as c, pytest.raises(FatalFetchError, match="file://"):
        c.get("file:///etc/passwd")


def test_bad_source_urls_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ftp"):
        client("ftp://example.org/x")
    with pytest.raises(ConfigError, match="CA bundle"):
        client("https://example.org/", ca_bundle=str(tmp_path / "missing.pem"))


# --- TLS --------------------------------------------------------------------------------


def test_tls_is_verified_by_default(source_tree: Path, tls_cert: TlsFiles) -> None:
    with SourceServer(source_tree, tls=tls_cert.server) as server:
        assert server.url.startswith("https://")
        with client(server.url) as c, pytest.raises(FatalFetchError, match="TLS error"):
            c.products()
        with client(server.url, ca_bundle=str(tls_cert.ca_bundle)) as c:
            assert [p.name for p in c.products()] == ["rhai"]


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_verification_can_be_turned_off(source_tree: Path, tls_cert: TlsFiles) -> None:
    with (
        SourceServer(source_tree, tls=tls_cert.server) as server,
        client(server.url, verify_tls=False) as c,
    ):
        assert [p.name for p in c.products()] == ["rhai"]


# --- the byte budget under load ------------------------------------------------------


def _put_docs(server: SourceServer, sizes: list[int]) -> list[tuple[str, bytes]]:
    docs = []
    for i, size in enumerate(sizes):
        data = (f"{i:04d}".encode() * (size // 4 + 1))[:size]
        server.put(f"/doc{i}.bin", data)
        docs.append((server.link(f"doc{i}.bin"), data))
    return docs


def test_budget_peak_stays_under_the_cap_with_many_threads(http_source: SourceServer) -> None:
    cap = 600 * 1024
    docs = _put_docs(http_source, [50_000 + (i * 37_000) % 200_000 for i in range(48)])
    budget = ByteBudget(cap, stall_grace=5.0)
    with client(http_source.url, budget=budget, workers=16) as c:

        def fetch(item: tuple[str, bytes]) -> bool:
            doc = c.get(item[0])
            assert doc is not None
            ok = doc.data == item[1]
            doc.release()
            return ok

        with ThreadPoolExecutor(16) as pool:
            assert all(pool.map(fetch, docs * 2, timeout=60))
    assert 0 < budget.peak <= cap
    assert budget.in_use == 0
    assert budget.overdrafts == 0


def test_budget_lets_a_document_larger_than_the_cap_through(http_source: SourceServer) -> None:
    docs = _put_docs(http_source, [300_000] + [20_000] * 12)
    budget = ByteBudget(100_000, stall_grace=0.05)
    with client(http_source.url, budget=budget, workers=8) as c:

        def fetch(item: tuple[str, bytes]) -> int:
            doc = c.get(item[0])
            assert doc is not None and doc.data == item[1]
            doc.release()
            return len(item[1])

        with ThreadPoolExecutor(8) as pool:
            assert sum(pool.map(fetch, docs, timeout=60)) == 300_000 + 12 * 20_000
    assert budget.peak >= 300_000
    assert budget.in_use == 0


def test_budget_holder_fetching_more_does_not_deadlock(http_source: SourceServer) -> None:
    """extract holds one artifact's documents while the next ones stream in."""
    (a, _), (b, _) = _put_docs(http_source, [80_000, 50_000])
    budget = ByteBudget(100_000, stall_grace=0.05)
    result: list[int] = []
    with client(http_source.url, budget=budget) as c:

        def run() -> None:
            first = c.get(a)
            second = c.get(b)  # does not fit while `first` is held
            assert first is not None and second is not None
            result.append(budget.in_use)
            first.release()
            second.release()
            first.release()  # idempotent

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(timeout=30)
        assert not worker.is_alive(), "deadlocked"
    assert result == [130_000]
    assert budget.overdrafts == 1 and budget.in_use == 0


def test_gzip_file_and_raw_bytes_match(source_tree: Path) -> None:
    """A .gz file is data, not transport encoding: served and returned as is."""
    payload = gzip.compress(b"hello")
    (source_tree / "blob.gz").write_bytes(payload)
    with SourceServer(source_tree) as server, client(server.url) as c:
        doc = c.get(server.link("blob.gz"))
    assert doc is not None and doc.data == payload
