"""The GitLab source: wheel collections published as GitLab releases with tarball links.

Chosen by the source URL ``gitlab+https://HOST/GROUP/.../PROJECT`` (``gitlab+http://``
too; a numeric project id in place of the path; ``?product=NAME`` names the product,
else the last path segment does).  Releases come from GitLab's Releases API
(``GET /api/v4/projects/:id/releases``, ``per_page=100``, following ``x-next-page`` or
``Link: rel="next"``), through the same transport as the protocol source
(:class:`~etl.source.transport.HttpTransport`: redirects one hop at a time, retries with
:mod:`etl.backoff`, ``Retry-After``), with ``ETL_SOURCE_TOKEN`` sent as ``PRIVATE-TOKEN``
to the GitLab host's origin only: never to the host of an asset link or a redirect.

The mapping (one wheels-etl release per GitLab release):

* release name: the tag without a leading ``v``; variant: the text after its first
  ``+`` (a tag without ``+`` fails that release);
* one artifact per asset link named ``wheels-...-{arch}.tar.gz``
  (:data:`WHEELS_ASSET_RE`; a link whose name starts with ``wheels-`` but does not match
  fails the release; other links are ignored), read from ``direct_asset_url`` when
  present, else ``url``, as a stream (:mod:`etl.source.tarball`);
* ``updated_at``: ``released_at``, else ``created_at``.

Incremental runs compare :attr:`GitLabRelease.fingerprint` (``released_at`` or
``created_at`` as GitLab wrote it, and the name, ``url`` and ``direct_asset_url`` of every
``wheels-`` link) with the one remembered when the release was last spooled: equal means
no tarball is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urljoin, urlsplit, urlunsplit

from etl.errors import ConfigError, FatalFetchError
from etl.protocol import IDENT_RE
from etl.redact import redact_url
from etl.source import documents as parse

__all__ = [
    "GITLAB_SCHEMES",
    "WHEELS_ASSET_RE",
    "GitLabProject",
    "GitLabRelease",
    "WheelsLink",
    "is_gitlab_url",
    "parse_gitlab_url",
]

GITLAB_SCHEMES = ("gitlab+https", "gitlab+http")
#: A wheels tarball's asset name; group 1 is the architecture.
WHEELS_ASSET_RE = re.compile(r"^wheels-.+-([a-z0-9_]+)\.tar\.gz$")
#: Links whose name starts so are wheels tarballs (and must match :data:`WHEELS_ASSET_RE`).
WHEELS_PREFIX = "wheels-"
PER_PAGE = 100


def is_gitlab_url(url: str) -> bool:
    """A ``gitlab+...`` source URL (a wrong one then gets the GitLab source's message)."""
    return url.strip().lower().startswith("gitlab+")


@dataclass(frozen=True)
class GitLabProject:
    """Where a GitLab project's releases are, from its ``gitlab+https://`` URL."""

    origin_url: str  # https://host[:port]/  (credentials go to this origin only)
    api_url: str  # https://host[:port]/api/v4/
    project: str  # "group/sub/project" or a numeric id
    product: str

    @property
    def releases_url(self) -> str:
        return f"{self.api_url}projects/{quote(self.project, safe='')}/releases?per_page={PER_PAGE}"

    def release_url(self, tag: str) -> str:
        return (
            f"{self.api_url}projects/{quote(self.project, safe='')}/releases/{quote(tag, safe='')}"
        )

    @property
    def shown(self) -> str:
        """``project group/sub/project on https://host``, for messages."""
        return f"GitLab project {self.project} on {self.origin_url.rstrip('/')}"


def parse_gitlab_url(url: str) -> GitLabProject:
    """``gitlab+https://HOST/GROUP/.../PROJECT[?product=NAME]`` → :class:`GitLabProject`;
    raises :class:`ConfigError`."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        _ = parts.port
    except ValueError as exc:
        raise ConfigError(f"bad GitLab source URL {redact_url(text)!r}: {exc}") from None
    scheme = parts.scheme.lower().removeprefix("gitlab+")
    if parts.scheme.lower() not in GITLAB_SCHEMES or not parts.hostname:
        raise ConfigError(
            f"bad GitLab source URL {redact_url(text)!r}: expected "
            "gitlab+https://HOST/GROUP/PROJECT (or gitlab+http://)"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            "a GitLab source URL must not carry credentials: set ETL_SOURCE_TOKEN "
            "(sent as PRIVATE-TOKEN)"
        )
    path = unquote(parts.path).split("/-/", 1)[0].strip("/").removesuffix(".git")
    if not path or any(p in ("", ".", "..") for p in path.split("/")):
        raise ConfigError(
            f"GitLab source URL {redact_url(text)!r} names no project "
            "(expected gitlab+https://HOST/GROUP/PROJECT or a numeric project id)"
        )
    query = parse_qs(parts.query)
    named = query.get("product", [])
    product = named[-1] if named else path.rsplit("/", 1)[-1]
    if not IDENT_RE.fullmatch(product):
        raise ConfigError(
            f"GitLab source URL {redact_url(text)!r}: product name {product!r} must match "
            f"{IDENT_RE.pattern} (name it with ?product=NAME)"
        )
    origin_url = urlunsplit((scheme, parts.netloc, "/", "", ""))
    return GitLabProject(origin_url, urljoin(origin_url, "api/v4/"), path, product)


@dataclass(frozen=True)
class WheelsLink:
    """One ``wheels-`` asset link of a release."""

    name: str
    url: str  # direct_asset_url when present, else url
    architecture: str | None  # None: the name does not match WHEELS_ASSET_RE


@dataclass(frozen=True)
class GitLabRelease:
    """One GitLab release, mapped (see the module documentation)."""

    tag: str
    version: str
    variant: str
    updated_at: datetime
    links: tuple[WheelsLink, ...]
    fingerprint: str

    def label(self, asset: str | None = None) -> str:
        return f"tag {self.tag}" + (f", asset {asset}" if asset is not None else "")

    def check_links(self, *, release: str) -> None:
        """Before anything is downloaded: every ``wheels-`` link's name matches
        :data:`WHEELS_ASSET_RE` and names an architecture once."""
        seen: dict[str, str] = {}
        for link in self.links:
            if link.architecture is None:
                raise FatalFetchError(
                    f"{self.label(link.name)}: the asset name does not match "
                    f"{WHEELS_ASSET_RE.pattern}",
                    release=release,
                )
            if link.architecture in seen:
                raise FatalFetchError(
                    f"{self.label(link.name)}: architecture {link.architecture} again "
                    f"(also in {seen[link.architecture]})",
                    release=release,
                )
            seen[link.architecture] = link.name


def fingerprint(when: str, links: list[dict[str, Any]]) -> str:
    """The digest compared by incremental runs: ``released_at`` (else ``created_at``) as
    GitLab wrote it, and the (name, url, direct_asset_url) of every ``wheels-`` link."""
    items = sorted(
        (str(k.get("name")), str(k.get("url")), str(k.get("direct_asset_url") or "")) for k in links
    )
    text = json.dumps([when, items], separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def version_of(tag: str) -> str:
    """The release name of a tag: the tag without one leading ``v``."""
    return tag[1:] if tag.startswith("v") else tag


def parse_release(entry: object, *, url: str, release: str) -> GitLabRelease:
    """One entry of the Releases API → :class:`GitLabRelease` (raises FatalFetchError)."""
    kw: dict[str, Any] = {"url": url, "release": release}
    tag = parse.member(entry, "tag_name", str, where="", **kw)
    assert isinstance(entry, dict)
    version = version_of(tag)
    if not IDENT_RE.fullmatch(version):
        parse.fail(
            f"tag {parse.shown(tag)}: the release name {parse.shown(version)} must match "
            f"{IDENT_RE.pattern}",
            **kw,
        )
    if "+" not in version:
        parse.fail(f"tag {tag} has no '+': expected v{{version}}+{{variant}}", **kw)
    variant = version.split("+", 1)[1]
    if not IDENT_RE.fullmatch(variant):
        parse.fail(f"tag {tag}: variant {parse.shown(variant)} must match {IDENT_RE.pattern}", **kw)
    when = parse.member(entry, "released_at", str, where="", optional=True, **kw)
    field = "released_at"
    if when is None:
        when, field = parse.member(entry, "created_at", str, where="", **kw), "created_at"
    updated_at = parse.parse_timestamp(when, field=f"tag {tag}: {field}", **kw)
    assets = parse.member(entry, "assets", dict, where="", optional=True, **kw) or {}
    raw_links = parse.member(assets, "links", list, where="assets", optional=True, **kw) or []
    links: list[WheelsLink] = []
    wheels: list[dict[str, Any]] = []
    for i, link in enumerate(raw_links):
        name = parse.member(link, "name", str, where=f"assets.links[{i}]", **kw)
        if not name.startswith(WHEELS_PREFIX):
            continue  # not a wheels tarball: ignored
        assert isinstance(link, dict)
        wheels.append(link)
        where = f"tag {tag}, asset {name}"
        plain = parse.member(link, "url", str, where=where, **kw)
        direct = parse.member(link, "direct_asset_url", str, where=where, optional=True, **kw)
        m = WHEELS_ASSET_RE.fullmatch(name)
        links.append(WheelsLink(name, direct or plain, m[1] if m else None))
    return GitLabRelease(tag, version, variant, updated_at, tuple(links), fingerprint(when, wheels))
