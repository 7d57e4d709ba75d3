"""The source client: one ``requests.Session``, every rule of the source protocol.

:class:`SourceClient` reads the index, streams a product's release pages and fetches single
documents (``http://``, ``https://`` or ``file://``), with:

* the bearer token sent to the base URL's origin only: redirects are followed here, one hop
  at a time, and the token is attached per request by origin, never carried across;
* retries with exponential backoff and jitter for connection errors, timeouts (a stalled
  body is a read timeout), 429/502/503/504, a connection reset mid-body and a body shorter
  than its ``Content-Length``, honouring ``Retry-After``, bounded by ``settings.retries``
  attempts and ``settings.retry_max_seconds`` in all; the status rules live in
  :func:`etl.source.responses.classify_status`;
* gzip undone while streaming, and the size limit enforced on ``Content-Length`` up front
  and on the decoded bytes as they arrive;
* conditional requests (``If-None-Match`` / ``If-Modified-Since``; ``None`` means 304),
  file sources included (validators from the file's mtime and size);
* memory bounded by a shared :class:`ByteBudget`.

Errors name the URL (secrets removed) and the release; the token never appears in them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit, urlunsplit
from urllib.request import url2pathname

import requests

from etl.config import Settings
from etl.errors import ConfigError, FatalFetchError, FetchError, ProtocolError
from etl.protocol import IDENT_RE, INDEX_FORMAT
from etl.redact import redact_url, strip_userinfo
from etl.source import documents as parse
from etl.source.budget import ByteBudget, Reservation
from etl.source.files import read_file
from etl.source.httpsource import HttpSource
from etl.source.jsontext import parse_json
from etl.source.origins import BearerAuth
from etl.source.responses import Validators

__all__ = ["Document", "ProductRef", "ReleaseRef", "SourceClient", "normalize_base"]

HTTP_SCHEMES = ("http", "https")


@dataclass
class Document:
    """A fetched body.  ``url`` is where it was read (after redirects, secrets removed):
    relative URLs inside it resolve against it."""

    url: str
    data: bytes
    validators: Validators
    _reservation: Reservation | None = field(default=None, repr=False, compare=False)

    def release(self) -> None:
        """Give the body's bytes back to the :class:`ByteBudget` (idempotent)."""
        reservation, self._reservation = self._reservation, None
        if reservation is not None:
            reservation.release()

    def __del__(self) -> None:  # a forgotten document must not hold the budget forever
        with contextlib.suppress(Exception):
            self.release()


@dataclass(frozen=True)
class ProductRef:
    name: str
    releases_url: str
    error: FetchError | None = None


@dataclass(frozen=True)
class ReleaseRef:
    product: str
    version: str
    updated_at: datetime | None
    url: str
    error: FetchError | None = None
    #: GitLab: a digest of released_at and the wheels links (current when the memory
    #: holds the same); what the listing said (never sent to workers).
    fingerprint: str | None = None
    detail: object = field(default=None, repr=False, compare=False)


def normalize_base(source: str) -> tuple[str, tuple[str, str] | None]:
    """``(base URL ending in "/", userinfo credentials or None)``; raises ConfigError."""
    text = source.strip()
    if not text:
        raise ConfigError("no source URL configured")
    try:
        parts = urlsplit(text)
        _ = parts.port  # a bad port raises here, not later in a worker
    except ValueError as exc:
        raise ConfigError(f"bad source URL {redact_url(text)!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme in HTTP_SCHEMES:
        if not parts.hostname:
            raise ConfigError(f"source URL has no host: {redact_url(text)}")
        creds = None
        if parts.username is not None:
            creds = (unquote(parts.username), unquote(parts.password or ""))
        clean = urlsplit(strip_userinfo(text))
        dir_path = clean.path if clean.path.endswith("/") else clean.path + "/"
        return urlunsplit((scheme, clean.netloc, dir_path, clean.query, "")), creds
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"file:// source on another host is not supported: {text}")
        path = Path(url2pathname(parts.path))
    elif scheme == "" or len(scheme) == 1:  # a plain path (or a Windows drive letter)
        path = Path(text).expanduser()
    else:
        raise ConfigError(
            f"unsupported source URL scheme {scheme!r}: use http://, https://, "
            "file:// or a directory path"
        )
    uri = path.resolve().as_uri()
    return (uri if uri.endswith("/") else uri + "/"), None


class SourceClient(HttpSource):
    """Reads a wheel-collections source; thread-safe (one session, shared by all workers)."""

    def __init__(
        self,
        settings: Settings,
        *,
        budget: ByteBudget | None = None,
        backoff_base: float | None = None,
    ) -> None:
        self.base_url, creds = normalize_base(settings.source_url)
        self._is_file = self.base_url.startswith("file:")
        if self._is_file and not Path(url2pathname(urlsplit(self.base_url).path)).is_dir():
            raise ConfigError(f"source folder not found: {settings.source_url}")
        secrets = [settings.source_token or ""]
        auth: requests.auth.AuthBase | None = None
        if settings.source_token:
            auth = BearerAuth(settings.source_token)
        elif creds is not None:
            auth = requests.auth.HTTPBasicAuth(*creds)
            secrets.append(creds[1])
        super().__init__(
            settings,
            base_url=self.base_url,
            auth=auth,
            secrets=tuple(s for s in secrets if s),
            budget=budget,
            backoff_base=backoff_base,
        )

    # --- the protocol documents ---------------------------------------------------------

    def _index(self) -> tuple[dict[str, Any], str]:
        """The index document.  A source URL that answers no wheel-collections index at all
        (4xx, an HTML page, JSON of something else) is the wrong place: a
        :class:`ConfigError` (exit 2) saying what it answered; a broken index is not."""
        index_url = urljoin(self.base_url, "index.json")
        check = "check --source / ETL_SOURCE_URL and the token"
        try:
            doc = self.get(index_url, group=("document", index_url))
        except FatalFetchError as exc:
            if self._is_file and exc.message == "no such file":
                raise ConfigError(f"no index.json in the source folder {exc.url}") from None
            if exc.message.startswith("HTTP 4"):  # 401, 403, 404, 410: the wrong place
                raise ConfigError(
                    f"cannot read the source index {exc.url}: {exc.message} ({check})"
                ) from None
            raise
        assert doc is not None  # no conditional request
        try:
            url, head = doc.url, doc.data[:64].lstrip()
            if not head.startswith((b"{", b"[")):  # a page, not JSON (a broken index starts so)
                what = "an HTML page (a login or proxy page?)" if head[:1] == b"<" else "not JSON"
                raise ConfigError(f"the source index {url} is {what}, not an index ({check})")
            raw = parse_json(doc.data, url=url, release=None)
        finally:
            doc.release()
        if not isinstance(raw, dict) or "format" not in raw:
            got = "a JSON object" if isinstance(raw, dict) else f"a JSON {type(raw).__name__}"
            raise ConfigError(
                f"the source index {url} is {got} without 'format': not a wheel-collections "
                f"index (expected 'format': {INDEX_FORMAT!r}; {check})"
            )
        return raw, url

    def products(self) -> list[ProductRef]:
        """The index; an unknown ``format`` is a :class:`ProtocolError` naming the value."""
        raw, url = self._index()
        if raw["format"] != INDEX_FORMAT:
            shown = repr(raw["format"])[:100]
            raise ProtocolError(
                f"unknown index format {shown} (this wheels-etl reads {INDEX_FORMAT!r})", url=url
            )
        entries = raw.get("products")
        if not isinstance(entries, list):
            raise ProtocolError("index 'products' must be a list", url=url)
        refs: list[ProductRef] = []
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            name = entry.get("name") if isinstance(entry, dict) else None
            label = name if isinstance(name, str) and IDENT_RE.fullmatch(name) else ""
            try:
                if not isinstance(entry, dict):
                    raise FatalFetchError(f"products[{i}] must be a JSON object", url=url)
                parse.check_identifier("product", name, url=url)
                releases = parse.require(entry, "releases", str, url=url)
                if label in seen:
                    raise FatalFetchError(f"product {label!r} is listed twice", url=url)
                seen.add(label)
                refs.append(ProductRef(label, self._resolve(url, releases, None)))
            except FatalFetchError as exc:
                refs.append(ProductRef(label or f"products[{i}]", "", error=exc))
        return refs

    def releases(self, product: ProductRef) -> Iterator[ReleaseRef]:
        """A product's releases, page by page as they are read (never gathered whole).

        A page naming another product, or a ``next`` that loops back to a page already
        read, raises after the releases read so far were yielded."""
        if product.error is not None:
            raise product.error
        url: str | None = product.releases_url
        read: set[str] = set()
        versions: set[str] = set()
        page = 0
        while url is not None:
            if urldefrag(url)[0] in read:
                raise FatalFetchError(
                    f"product {product.name}: 'next' of releases page {page} loops back "
                    "to a page already read",
                    url=self._show(url),
                )
            page += 1
            read.add(urldefrag(url)[0])
            raw, doc_url = self._json(url, None)
            read.add(urldefrag(doc_url)[0])
            where = f"product {product.name}: releases page {page}"
            if not isinstance(raw, dict):
                raise ProtocolError(f"{where} must be a JSON object", url=doc_url)
            if raw.get("product") != product.name:
                named = repr(raw.get("product"))[:100]
                raise ProtocolError(f"{where} is for product {named}", url=doc_url)
            entries = raw.get("releases")
            if not isinstance(entries, list):
                raise ProtocolError(f"{where}: 'releases' must be a list", url=doc_url)
            for i, entry in enumerate(entries):
                yield self._release_ref(
                    product.name, entry, doc_url, f"releases page {page} entry {i}", versions
                )
            nxt = raw.get("next")
            if nxt is None:
                break
            if not isinstance(nxt, str) or not nxt:
                raise ProtocolError(f"{where}: 'next' must be a URL or null", url=doc_url)
            url = self._resolve(doc_url, nxt, None)

    def _release_ref(
        self, product: str, entry: object, page_url: str, where: str, versions: set[str]
    ) -> ReleaseRef:
        raw_version = entry.get("version") if isinstance(entry, dict) else None
        ok = isinstance(raw_version, str) and IDENT_RE.fullmatch(raw_version)
        version = raw_version if ok and isinstance(raw_version, str) else ""
        label = f"{product}/{version}" if version else f"{product} ({where})"
        try:
            if not isinstance(entry, dict):
                raise FatalFetchError(f"{where} must be a JSON object", url=page_url)
            parse.check_identifier("version", raw_version, release=label, url=page_url)
            if version in versions:
                raise FatalFetchError(f"version {version} is listed twice", release=label)
            versions.add(version)
            updated = parse.require(entry, "updated_at", str, url=page_url, release=label)
            updated_at = parse.parse_timestamp(
                updated, field="updated_at", release=label, url=page_url
            )
            parse.check_not_ahead(updated_at, release=label, url=page_url)
            target = parse.require(entry, "url", str, url=page_url, release=label)
            return ReleaseRef(product, version, updated_at, self._resolve(page_url, target, label))
        except FatalFetchError as exc:
            return ReleaseRef(product, version, None, "", error=exc)
        except (ValueError, TypeError, OverflowError) as exc:  # a value no check foresaw
            error = FatalFetchError(
                f"{where}: invalid value ({type(exc).__name__}: {exc})",
                release=label,
                url=page_url,
            )
            return ReleaseRef(product, version, None, "", error=error)

    def _json(self, url: str, release: str | None) -> tuple[Any, str]:
        doc = self.get(url, release=release, group=("document", url))  # freed after parsing
        if doc is None:  # pragma: no cover - impossible without a conditional request
            raise FatalFetchError("unexpected 304 Not Modified", url=self._show(url))
        try:
            return parse_json(doc.data, url=doc.url, release=release), doc.url
        finally:
            doc.release()

    def _resolve(self, base: str, ref: str, release: str | None) -> str:
        return self._check_url(urljoin(base, ref), release)

    def _check_url(self, url: str, release: str | None) -> str:
        """The URL to request: no fragment, no userinfo, an allowed scheme."""
        url = strip_userinfo(urldefrag(url)[0])
        scheme = urlsplit(url).scheme.lower()
        if scheme in HTTP_SCHEMES:
            return url
        if scheme == "file" and self._is_file:
            return url
        if scheme == "file":
            raise FatalFetchError(
                "refusing a file:// URL from a remote source", url=self._show(url), release=release
            )
        raise FatalFetchError(
            f"unsupported URL scheme {scheme!r}", url=self._show(url), release=release
        )

    # --- one document -------------------------------------------------------------------

    def get(
        self,
        url: str,
        *,
        release: str | None = None,
        conditional: Validators | None = None,
        group: object = None,
    ) -> Document | None:
        """Fetch one document; ``None`` means 304 Not Modified (only with ``conditional``).

        ``group``: the :class:`ByteBudget` group of documents held together (see there)."""
        if self._closed:
            raise FetchError("source client is closed", url=self._show(url), release=release)
        target = self._check_url(url, release)
        res = self.budget.open(group)
        try:
            if target.startswith("file:"):
                got = read_file(
                    target,
                    root_url=self.base_url,
                    res=res,
                    limit=self.settings.max_file_bytes,
                    counters=self._counters,
                    shown=self._show(target),
                    release=release,
                    conditional=conditional,
                )
            else:
                got = self._http.fetch(target, res, release, conditional)
        except BaseException:
            res.release()
            raise
        if got is None:
            res.release()
            return None
        res.finish()
        return Document(got[0], got[1], got[2], res)
