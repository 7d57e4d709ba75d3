"""The GitLab source URL and the release mapping rules that need no server."""

from __future__ import annotations

import pytest

from etl.errors import ConfigError, FatalFetchError
from etl.source.gitlab import is_gitlab_url, parse_gitlab_url, parse_release


@pytest.mark.parametrize(
    ("url", "project", "product", "api"),
    [
        ("gitlab+https://gl.example.com/g/p", "g/p", "p", "https://gl.example.com/api/v4/"),
        ("gitlab+https://gl.example.com/a/b/c/d/proj/", "a/b/c/d/proj", "proj", None),
        ("gitlab+http://127.0.0.1:8080/4242", "4242", "4242", "http://127.0.0.1:8080/api/v4/"),
        ("gitlab+https://h/g/p?product=ai-stack", "g/p", "ai-stack", None),
        ("gitlab+https://h/g/p/-/releases", "g/p", "p", None),
        ("gitlab+https://h/g/p.git", "g/p", "p", None),
    ],
)
def test_source_urls(url: str, project: str, product: str, api: str | None) -> None:
    assert is_gitlab_url(url)
    got = parse_gitlab_url(url)
    assert (got.project, got.product) == (project, product)
    if api is not None:
        assert got.api_url == api
    assert got.releases_url.endswith(
        "/projects/" + project.replace("/", "%2F") + "/releases?per_page=100"
    )


@pytest.mark.parametrize(
    "url",
    [
        "gitlab+ftp://h/g/p",
        "gitlab+https:///g/p",
        "gitlab+https://h/",
        "gitlab+https://h/g/../p",
        "gitlab+https://user:secret@h/g/p",
        "gitlab+https://h/g/p?product=a/b",
    ],
)
def test_bad_source_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_gitlab_url(url)
    assert "secret" not in str(err.value)


def entry(tag: str, **kw: object) -> dict[str, object]:
    links = [
        {
            "id": 1,
            "name": f"wheels-{tag[1:]}-x86_64.tar.gz",
            "url": "https://s3/a",
            "link_type": "package",
        },
        {"id": 2, "name": "notes.txt", "url": "https://s3/n", "link_type": "other"},
    ]
    base: dict[str, object] = {
        "tag_name": tag,
        "created_at": "2026-11-01T10:00:00.000Z",
        "released_at": "2026-11-02T10:00:00.000Z",
        "assets": {"count": 2, "sources": [], "links": links},
    }
    base.update(kw)
    return base


def test_the_mapping() -> None:
    rel = parse_release(entry("v3.2.3.571+model-opt-cuda-ubi9"), url="u", release="r")
    assert (rel.version, rel.variant) == ("3.2.3.571+model-opt-cuda-ubi9", "model-opt-cuda-ubi9")
    assert rel.updated_at.isoformat() == "2026-11-02T10:00:00+00:00"
    ((link),) = rel.links
    assert (link.architecture, link.url) == ("x86_64", "https://s3/a")
    no_release = parse_release(entry("1.0+a+b", released_at=None), url="u", release="r")
    assert no_release.variant == "a+b" and no_release.updated_at.day == 1
    with pytest.raises(FatalFetchError, match="has no '\\+'"):
        parse_release(entry("v2.0.0"), url="u", release="r")


def test_the_fingerprint_follows_released_at_and_the_wheels_links_only() -> None:
    first = parse_release(entry("v1+cpu"), url="u", release="r").fingerprint
    assert parse_release(entry("v1+cpu"), url="u", release="r").fingerprint == first
    later = entry("v1+cpu", released_at="2026-11-03T10:00:00.000Z")
    assert parse_release(later, url="u", release="r").fingerprint != first
    moved = entry("v1+cpu")
    links = moved["assets"]["links"]  # type: ignore[index]
    links[0]["direct_asset_url"] = "https://gl/g/p/-/releases/v1+cpu/downloads/x"
    assert parse_release(moved, url="u", release="r").fingerprint != first
    other = entry("v1+cpu")
    other["assets"]["links"][1]["url"] = "https://elsewhere/n"  # type: ignore[index]
    assert parse_release(other, url="u", release="r").fingerprint == first  # not a wheels link
