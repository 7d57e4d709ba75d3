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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urljoin, urlsplit, urlunsplit

import requests

from etl.config import Settings
from etl.errors import ConfigError, EtlError, FatalFetchError, FetchError
from etl.protocol import IDENT_RE
from etl.redact import redact_url
from etl.source import documents as parse
from etl.source.budget import ByteBudget
from etl.source.client import ProductRef, ReleaseRef, tls_verify
from etl.source.constraints import constraints_to_json
from etl.source.jsontext import parse_json
from etl.source.origins import PrivateTokenAuth
from etl.source.stats import Counters
from etl.source.tarball import PATHS, TarballContents, read_tarball
from etl.source.transport import HttpTransport, StreamBody
from etl.spooling.format import ArtifactRow

__all__ = [
    "GITLAB_SCHEMES",
    "WHEELS_ASSET_RE",
    "GitLabArtifact",
    "GitLabProject",
    "GitLabRelease",
    "GitLabSource",
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
#: The whole-answer deadline of one tarball (several GB at a slow link's pace); each
#: silence is still bounded by ``--read-timeout``.
TARBALL_SECONDS = 24 * 3600.0


def is_gitlab_url(url: str) -> bool:
    return url.strip().lower().startswith(tuple(s + "://" for s in GITLAB_SCHEMES))


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


@dataclass(frozen=True)
class GitLabArtifact:
    """One wheels tarball's artifact row, and its ``requirements.txt`` as the JSON array
    of :func:`constraints_to_json` (``None`` when the tarball has none)."""

    row: ArtifactRow
    requirements: str | None


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


class GitLabSource:
    """Reads one GitLab project's releases; thread-safe like :class:`SourceClient` (one
    transport shared by every thread)."""

    def __init__(
        self,
        settings: Settings,
        *,
        budget: ByteBudget | None = None,
        backoff_base: float | None = None,
    ) -> None:
        self.settings = settings
        self.budget = budget if budget is not None else ByteBudget(settings.max_inflight_bytes)
        self.project = parse_gitlab_url(settings.source_url)
        token = settings.source_token
        self._secrets = (token,) if token else ()
        self._counters = Counters()
        self._http = HttpTransport(
            settings,
            base_url=self.project.origin_url,
            auth=PrivateTokenAuth(token) if token else None,
            secrets=self._secrets,
            counters=self._counters,
            backoff_base=(
                backoff_base
                if backoff_base is not None
                else min(0.5, settings.retry_max_seconds / 64)
            ),
            verify=tls_verify(settings),
        )
        self._first_page: tuple[Any, str, requests.structures.CaseInsensitiveDict[str]] | None
        self._first_page = None

    # --- lifecycle and counters (as SourceClient) -------------------------------------

    def cancel(self) -> None:
        self._http.cancel()
        self.budget.cancel()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GitLabSource:
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
        return self._counters.snapshot()

    def _show(self, url: str) -> str:
        return redact_url(url, self._secrets)

    # --- the listing --------------------------------------------------------------------

    def _page(self, url: str) -> tuple[Any, str, requests.structures.CaseInsensitiveDict[str]]:
        def consume(
            body: StreamBody,
        ) -> tuple[bytes, str, requests.structures.CaseInsensitiveDict[str]]:
            return body.read_all(self.settings.max_file_bytes, None), body.shown, body.headers

        data, shown, headers = self._http.stream(
            url, None, consume, seconds=self.settings.document_timeout
        )
        return parse_json(data, url=shown), shown, headers

    def products(self) -> list[ProductRef]:
        """The one product; reads the first page of releases now, so that a wrong
        project or token is one fatal error naming the project (401/403/404)."""
        url = self.project.releases_url
        try:
            self._first_page = self._page(url)
        except FatalFetchError as exc:
            if exc.message.startswith(("HTTP 401", "HTTP 403", "HTTP 404")):
                hint = (
                    "set ETL_SOURCE_TOKEN (a token with read_api scope)"
                    if not self._secrets
                    else "check the project path or id and that ETL_SOURCE_TOKEN may read it"
                )
                raise ConfigError(
                    f"{self.project.shown}: the Releases API answered {exc.message} ({hint})"
                ) from None
            raise
        return [ProductRef(self.project.product, url)]

    def releases(self, product: ProductRef) -> Iterator[ReleaseRef]:
        """The project's releases, page by page as they are read."""
        if product.error is not None:
            raise product.error
        url: str | None = product.releases_url
        read: set[str] = set()
        versions: set[str] = set()
        page = 0
        while url is not None:
            if url in read:
                raise FatalFetchError(
                    f"{self.project.shown}: the next page of releases loops back to a page "
                    "already read",
                    url=self._show(url),
                )
            read.add(url)
            page += 1
            first, self._first_page = self._first_page, None
            raw, shown, headers = first if first is not None and page == 1 else self._page(url)
            if not isinstance(raw, list):
                raise FatalFetchError(
                    f"{self.project.shown}: releases page {page} must be a JSON array",
                    url=shown,
                )
            for i, entry in enumerate(raw):
                yield self._ref(entry, shown, f"releases page {page} entry {i}", versions)
            url = self._next_url(url, headers)

    def _next_url(
        self, url: str, headers: requests.structures.CaseInsensitiveDict[str]
    ) -> str | None:
        """GitLab's offset pagination: ``x-next-page`` (empty on the last page), else the
        ``Link`` header's ``rel="next"``."""
        nxt = (headers.get("x-next-page") or "").strip()
        if nxt:
            if not nxt.isdigit():
                raise FatalFetchError(
                    f"{self.project.shown}: x-next-page {parse.shown(nxt)} is not a page number",
                    url=self._show(url),
                )
            parts = urlsplit(url)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            query["page"] = nxt
            return urlunsplit(parts._replace(query=urlencode(query)))
        link = requests.utils.parse_header_links(headers.get("Link") or "")
        for item in link:
            if item.get("rel") == "next" and item.get("url"):
                target = urljoin(url, item["url"])
                if urlsplit(target).scheme.lower() not in ("http", "https"):
                    raise FatalFetchError(
                        f"{self.project.shown}: Link rel=next is not an HTTP URL",
                        url=self._show(url),
                    )
                return target
        return None

    def _ref(self, entry: object, page_url: str, where: str, versions: set[str]) -> ReleaseRef:
        product = self.project.product
        tag = entry.get("tag_name") if isinstance(entry, dict) else None
        version = version_of(tag) if isinstance(tag, str) else ""
        ok = IDENT_RE.fullmatch(version) is not None
        label = f"{product}/{version}" if ok else f"{product} ({where})"
        url = self.project.release_url(tag) if isinstance(tag, str) else page_url
        try:
            rel = parse_release(entry, url=page_url, release=label)
            if rel.version in versions:
                raise FatalFetchError(f"tag {rel.tag}: release {rel.version} is listed twice")
            versions.add(rel.version)
        except FatalFetchError as exc:
            error = FatalFetchError(exc.message, release=label)  # tag named, no page URL
            return ReleaseRef(product, version if ok else "", None, url, error=error)
        except (ValueError, TypeError, OverflowError) as exc:
            error = FatalFetchError(f"{where}: invalid value ({type(exc).__name__}: {exc})")
            return ReleaseRef(product, version if ok else "", None, url, error=error)
        return ReleaseRef(
            product, rel.version, rel.updated_at, url, fingerprint=rel.fingerprint, detail=rel
        )

    def release(self, ref: ReleaseRef) -> GitLabRelease:
        """The release ``ref`` names: what the listing said, or (a worker, which gets the
        reference without it) the Releases API's answer for its tag now."""
        if isinstance(ref.detail, GitLabRelease):
            return ref.detail
        key = f"{ref.product}/{ref.version}"
        raw, shown, _headers = self._page(ref.url)
        rel = parse_release(raw, url=shown, release=key)
        if rel.version != ref.version:
            raise FatalFetchError(f"tag {rel.tag} is not release {ref.version}", release=key)
        return rel

    # --- one tarball --------------------------------------------------------------------

    def artifact(self, rel: GitLabRelease, link: WheelsLink, *, release: str) -> GitLabArtifact:
        """Download and read one wheels tarball (never buffered whole, never on disk)."""
        label = rel.label(link.name)
        if link.architecture is None:
            raise FatalFetchError(
                f"{label}: the asset name does not match {WHEELS_ASSET_RE.pattern}",
                release=release,
            )
        if urlsplit(link.url).scheme.lower() not in ("http", "https"):
            raise FatalFetchError(f"{label}: the link is not an HTTP(S) URL", release=release)
        limit = self.settings.max_file_bytes

        def consume(body: StreamBody) -> TarballContents:
            self._counters.add("downloads")
            return read_tarball(body.chunks(), doc_limit=limit, label=label, release=release)

        try:
            got = self._http.stream(link.url, release, consume, seconds=TARBALL_SECONDS)
        except FatalFetchError as exc:
            if exc.message.startswith(label):
                raise
            raise FatalFetchError(f"{label}: {exc.message}", release=release, url=exc.url) from None
        except FetchError as exc:
            raise type(exc)(f"{label}: {exc.message}", release=release, url=exc.url) from None
        docs = got.documents
        try:
            row = ArtifactRow(
                architecture=link.architecture,
                variant=rel.variant,
                build_id=None,
                built_at=None,
                dependency_graph=parse.json_document_text(
                    docs["dependency_graph"], url=PATHS["dependency_graph"], expect=dict
                ),
                constraints_file=constraints_to_json(
                    docs["constraints_file"], url=PATHS["constraints_file"]
                ),
                build_sequence_summary=parse.json_document_text(
                    docs["build_sequence_summary"], url=PATHS["build_sequence_summary"], expect=list
                ),
                drops=tuple(got.drops),
            )
            reqs = docs.get("requirements")
            requirements = (
                None if reqs is None else constraints_to_json(reqs, url=PATHS["requirements"])
            )
        except EtlError as exc:
            raise FatalFetchError(f"{label}: {exc.url}: {exc.message}", release=release) from None
        return GitLabArtifact(row, requirements)
