"""The GitLab source's client: :class:`GitLabSource` lists a project's releases and reads
its wheels tarballs (the URL and the mapping are in :mod:`etl.source.gitlab`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import requests

from etl.config import Settings
from etl.crashpoint import crash_point
from etl.errors import ConfigError, EtlError, FatalFetchError, FetchError
from etl.protocol import IDENT_RE
from etl.source import documents as parse
from etl.source.budget import ByteBudget, Reservation
from etl.source.client import ProductRef, ReleaseRef
from etl.source.constraints import constraints_to_json
from etl.source.gitlab import (
    WHEELS_ASSET_RE,
    GitLabRelease,
    WheelsLink,
    parse_gitlab_url,
    parse_release,
    version_of,
)
from etl.source.httpsource import HttpSource
from etl.source.jsontext import parse_json
from etl.source.origins import PrivateTokenAuth
from etl.source.streambody import StreamBody
from etl.source.tarball import PATHS, TarballContents, read_tarball
from etl.spooling.format import ArtifactRow

__all__ = ["TARBALL_SECONDS", "GitLabSource", "RowSink"]

#: The whole-answer deadline of one tarball (several GB at a slow link's pace); each
#: silence is still bounded by ``--read-timeout``.
TARBALL_SECONDS = 24 * 3600.0


def gzip_undone(content_encoding: str) -> bool:
    """Whether the HTTP layer undid a gzip (``Content-Encoding: gzip``, which urllib3
    decodes): then that gzip was the ``.tar.gz``'s own, as for one stored with that header
    on object storage, and the body is the plain tar."""
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    return "gzip" in codings or "x-gzip" in codings


class RowSink(Protocol):
    """Where a release's rows go (the spool's release writer)."""

    @property
    def artifacts(self) -> int: ...

    def add(self, row: ArtifactRow) -> None: ...


class GitLabSource(HttpSource):
    """Reads one GitLab project's releases; thread-safe like :class:`SourceClient` (one
    transport shared by every thread)."""

    def __init__(
        self,
        settings: Settings,
        *,
        budget: ByteBudget | None = None,
        backoff_base: float | None = None,
    ) -> None:
        self.project = parse_gitlab_url(settings.source_url)
        token = settings.source_token
        super().__init__(
            settings,
            base_url=self.project.origin_url,
            auth=PrivateTokenAuth(token) if token else None,
            secrets=(token,) if token else (),
            budget=budget,
            backoff_base=backoff_base,
        )
        self._first_page: tuple[Any, str, requests.structures.CaseInsensitiveDict[str]] | None
        self._first_page = None

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
        if ref.product != self.project.product:
            raise FatalFetchError(f"not a release of {self.project.shown}", release=key)
        if ref.url.startswith(self.project.api_url):
            raw, shown, _headers = self._page(ref.url)
        else:  # no URL (or not this project's): the tag is v{version}, or the version
            try:
                raw, shown, _headers = self._page(self.project.release_url("v" + ref.version))
            except FatalFetchError as exc:
                if not exc.message.startswith("HTTP 404"):
                    raise
                raw, shown, _headers = self._page(self.project.release_url(ref.version))
        rel = parse_release(raw, url=shown, release=key)
        if rel.version != ref.version:
            raise FatalFetchError(f"tag {rel.tag} is not release {ref.version}", release=key)
        return rel

    # --- one release's tarballs --------------------------------------------------------

    def spool_artifacts(
        self, rel: GitLabRelease, writer: RowSink, *, release: str, stop: threading.Event
    ) -> None:
        """Every wheels tarball of ``rel``, one after the other, one row each into
        ``writer`` (the links are checked before anything is downloaded)."""
        rel.check_links(release=release)
        for link in rel.links:
            if stop.is_set():
                raise FatalFetchError("run stopped", release=release)
            writer.add(self.artifact(rel, link, release=release))
            if writer.artifacts == 1:
                crash_point("extract-mid-release")

    # --- one tarball --------------------------------------------------------------------

    def artifact(self, rel: GitLabRelease, link: WheelsLink, *, release: str) -> ArtifactRow:
        """Download and read one wheels tarball (never buffered whole, never on disk)."""
        label = rel.label(link.name)
        if link.architecture is None:
            raise FatalFetchError(
                f"{label}: the asset name does not match {WHEELS_ASSET_RE.pattern}",
                release=release,
            )
        if urlsplit(link.url).scheme.lower() not in ("http", "https"):
            raise FatalFetchError(f"{label}: the link is not an HTTP(S) URL", release=release)
        res = self.budget.open(("tarball", release, link.name))
        try:
            got = self._download(link, label, release, res)
            return self._row(rel, link, got, label, release)
        finally:
            res.release()

    def _download(
        self, link: WheelsLink, label: str, release: str, res: Reservation
    ) -> TarballContents:
        """The tarball's contents; its documents' bytes held in ``res`` (the byte budget,
        as the protocol source's documents are)."""
        limit = self.settings.max_file_bytes

        def consume(body: StreamBody) -> TarballContents:
            self._counters.add("downloads")
            res.reset()  # an attempt cut short kept nothing
            return read_tarball(
                body.chunks(),
                doc_limit=limit,
                label=label,
                release=release,
                reserve=res.reserve,
                gzipped=not gzip_undone(body.headers.get("Content-Encoding", "")),
            )

        try:
            return self._http.stream(link.url, release, consume, seconds=TARBALL_SECONDS)
        except FatalFetchError as exc:
            if exc.message.startswith(label):
                raise
            raise FatalFetchError(f"{label}: {exc.message}", release=release, url=exc.url) from None
        except FetchError as exc:
            raise type(exc)(f"{label}: {exc.message}", release=release, url=exc.url) from None

    def _row(
        self, rel: GitLabRelease, link: WheelsLink, got: TarballContents, label: str, release: str
    ) -> ArtifactRow:
        assert link.architecture is not None  # checked first
        docs = got.documents
        reqs = docs.get("requirements")
        try:
            return ArtifactRow(
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
                # the collection's requirements.txt, as the constraints' JSON array
                requirements=(
                    None if reqs is None else constraints_to_json(reqs, url=PATHS["requirements"])
                ),
            )
        except EtlError as exc:
            raise FatalFetchError(f"{label}: {exc.url}: {exc.message}", release=release) from None
