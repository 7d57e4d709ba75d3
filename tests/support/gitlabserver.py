"""A GitLab of our own for the tests: the Releases API and two hosts, over real HTTP.

:class:`FakeGitLab` runs two :class:`~tests.support.httpserver.SourceServer`:

* ``api`` (127.0.0.1): ``GET /api/v4/projects/:id/releases`` and
  ``GET /api/v4/projects/:id/releases/:tag_name``, ``:id`` being the URL-encoded path or
  the number, with GitLab's response shape (the documented fields of a release: tag_name,
  name, description, created_at, released_at, upcoming_release, author, commit,
  milestones, commit_path, tag_path, assets {count, sources, links {id, name, url,
  direct_asset_url, link_type}}, evidences, _links) and its offset pagination
  (``page``/``per_page`` capped at 100, the ``x-page``, ``x-per-page``, ``x-total``,
  ``x-total-pages``, ``x-next-page``, ``x-prev-page`` and ``Link`` headers; with
  ``link_only`` only ``Link``); 401 ``{"message": "401 Unauthorized"}`` without the
  right ``PRIVATE-TOKEN``, 404 ``{"message": "404 Project Not Found"}``; and each link's
  ``direct_asset_url`` (``/GROUP/PROJECT/-/releases/TAG/downloads/NAME``), which answers
  302 to the file on the asset host, as GitLab does;
* ``assets`` (127.0.0.2, another host: object storage): the tarballs.  A request that
  carries any credential (``PRIVATE-TOKEN``, ``JOB-TOKEN``, ``Authorization``, a cookie,
  or the token's text in any header) is answered 403 and recorded in
  :attr:`FakeGitLab.leaks`; the fixture fails the test if it is not empty.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from tests.support.httpserver import Answer, RecordedRequest, SourceServer

TOKEN = "glpat-TEST-0123456789abcdef"
CREDENTIAL_HEADERS = ("private-token", "job-token", "authorization", "cookie")

Body = bytes | Callable[[], Iterable[bytes]]


@dataclass
class Link:
    name: str
    file: str | None = None  # name on the asset host (default: name)
    direct: bool = True  # give a direct_asset_url (else only url)
    link_type: str = "package"


@dataclass
class Release:
    tag: str
    released_at: str | None
    created_at: str = "2026-11-01T10:00:00.000Z"
    links: list[Link] = field(default_factory=list)


@dataclass
class Project:
    path: str
    id: int
    releases: list[Release] = field(default_factory=list)
    private: bool = True
    forbidden: bool = False  # the token may not read it: 403


class FakeGitLab:
    def __init__(
        self, *, token: str = TOKEN, link_only: bool = False, max_per_page: int = 100
    ) -> None:
        self.token = token
        self.link_only = link_only
        #: GitLab caps per_page at 100; a test lowers the cap to get several pages
        self.max_per_page = max_per_page
        self.projects: dict[str, Project] = {}
        self.files: dict[str, Body] = {}
        self.file_headers: dict[str, list[tuple[str, str]]] = {}
        self.leaks: list[RecordedRequest] = []
        self.api = SourceServer()
        self.assets = SourceServer(host="127.0.0.2")
        self.api.route("/api/v4/projects/", self._api)
        self.api.route("/", self._direct)
        self.assets.route("/files/", self._file)

    # --- set-up -----------------------------------------------------------------------

    def project(self, path: str, *, private: bool = True) -> Project:
        p = Project(path, 1000 + len(self.projects), private=private)
        self.projects[path] = p
        return p

    def put_file(self, name: str, body: Body, headers: dict[str, str] | None = None) -> None:
        """Serve ``body`` (bytes, or a function giving chunks) as ``name`` on the asset
        host, with ``headers`` besides ``Content-Type``."""
        self.files[name] = body
        self.file_headers[name] = list((headers or {}).items())

    def source_url(self, path: str, **query: str) -> str:
        q = f"?{urlencode(query)}" if query else ""
        return f"gitlab+http://127.0.0.1:{self.api.port}/{path}{q}"

    def asset_url(self, name: str) -> str:
        return f"{self.assets.url}files/{quote(name)}"

    # --- what happened ----------------------------------------------------------------

    def downloads(self) -> int:
        """Tarball requests that reached the asset host."""
        return sum(1 for r in self.assets.requests if r.path.startswith("/files/"))

    def api_requests(self) -> list[RecordedRequest]:
        return [r for r in self.api.requests if r.path.startswith("/api/")]

    # --- the API ----------------------------------------------------------------------

    def _find(self, ident: str) -> Project | None:
        if ident.isdigit():
            return next((p for p in self.projects.values() if p.id == int(ident)), None)
        return self.projects.get(ident)

    def _json(
        self, status: int, doc: object, headers: list[tuple[str, str]] | None = None
    ) -> Answer:
        return Answer(
            status,
            [("Content-Type", "application/json"), *(headers or [])],
            json.dumps(doc).encode(),
        )

    def _api(self, rec: RecordedRequest) -> Answer:
        rest = rec.target.split("?", 1)[0][len("/api/v4/projects/") :]
        ident, _, tail = rest.partition("/")
        project = self._find(unquote(ident))
        if project is not None and project.private and rec.header("private-token") != self.token:
            return self._json(401, {"message": "401 Unauthorized"})
        if project is None:
            return self._json(404, {"message": "404 Project Not Found"})
        if project.forbidden:
            return self._json(403, {"message": "403 Forbidden"})
        if tail == "releases":
            return self._list(project, rec)
        if tail.startswith("releases/"):
            tag = unquote(tail[len("releases/") :])
            for r in project.releases:
                if r.tag == tag:
                    return self._json(200, self._release_doc(project, r))
            return self._json(404, {"message": "404 Not found"})
        return self._json(404, {"error": "404 Not Found"})

    def _list(self, project: Project, rec: RecordedRequest) -> Answer:
        query = parse_qs(urlsplit(rec.target).query)
        page = max(1, int(query.get("page", ["1"])[-1]))
        per_page = min(self.max_per_page, max(1, int(query.get("per_page", ["20"])[-1])))
        ordered = sorted(
            project.releases, key=lambda r: r.released_at or r.created_at, reverse=True
        )
        total_pages = max(1, -(-len(ordered) // per_page))
        items = ordered[(page - 1) * per_page : page * per_page]
        base = f"{self.api.url}api/v4/projects/{quote(project.path, safe='')}/releases"

        def page_url(n: int) -> str:
            return f"{base}?{urlencode({'page': n, 'per_page': per_page})}"

        links = [f'<{page_url(1)}>; rel="first"', f'<{page_url(total_pages)}>; rel="last"']
        if page < total_pages:
            links.insert(0, f'<{page_url(page + 1)}>; rel="next"')
        if page > 1:
            links.insert(0, f'<{page_url(page - 1)}>; rel="prev"')
        headers = [("Link", ", ".join(links))]
        if not self.link_only:
            headers += [
                ("X-Page", str(page)),
                ("X-Per-Page", str(per_page)),
                ("X-Total", str(len(ordered))),
                ("X-Total-Pages", str(total_pages)),
                ("X-Next-Page", str(page + 1) if page < total_pages else ""),
                ("X-Prev-Page", str(page - 1) if page > 1 else ""),
            ]
        return self._json(200, [self._release_doc(project, r) for r in items], headers)

    def _release_doc(self, project: Project, r: Release) -> dict[str, object]:
        web = f"{self.api.url}{project.path}"
        links = []
        for i, link in enumerate(r.links):
            entry: dict[str, object] = {
                "id": 100 + i,
                "name": link.name,
                "url": self.asset_url(link.file or link.name),
                "link_type": link.link_type,
            }
            if link.direct:
                entry["direct_asset_url"] = (
                    f"{web}/-/releases/{quote(r.tag, safe='')}/downloads/{quote(link.name)}"
                )
            links.append(entry)
        sources = [
            {
                "format": f,
                "url": f"{web}/-/archive/{r.tag}/{project.path.rsplit('/', 1)[-1]}-{r.tag}.{f}",
            }
            for f in ("zip", "tar.gz", "tar.bz2", "tar")
        ]
        return {
            "tag_name": r.tag,
            "description": f"Wheels for {r.tag}",
            "name": r.tag,
            "created_at": r.created_at,
            "released_at": r.released_at,
            "upcoming_release": False,
            "author": {
                "id": 1,
                "username": "builder",
                "name": "Build Pipeline",
                "state": "active",
                "avatar_url": None,
                "web_url": f"{self.api.url}builder",
            },
            "commit": {
                "id": "079e90101242458910cccd35eab0e211dfc359c0",
                "short_id": "079e9010",
                "title": "Build",
                "created_at": r.created_at,
                "parent_ids": [],
                "message": "Build",
                "author_name": "Build Pipeline",
                "author_email": "builder@example.com",
                "authored_date": r.created_at,
                "committer_name": "Build Pipeline",
                "committer_email": "builder@example.com",
                "committed_date": r.created_at,
            },
            "milestones": [],
            "commit_path": f"/{project.path}/-/commit/079e90101242458910cccd35eab0e211dfc359c0",
            "tag_path": f"/{project.path}/-/tags/{r.tag}",
            "assets": {"count": len(sources) + len(links), "sources": sources, "links": links},
            "evidences": [],
            "_links": {
                "closed_issues_url": f"{web}/-/issues?release_tag={r.tag}&scope=all&state=closed",
                "closed_merge_requests_url": f"{web}/-/merge_requests?release_tag={r.tag}",
                "edit_url": f"{web}/-/releases/{r.tag}/edit",
                "merged_merge_requests_url": f"{web}/-/merge_requests?release_tag={r.tag}",
                "opened_issues_url": f"{web}/-/issues?release_tag={r.tag}&scope=all&state=opened",
                "opened_merge_requests_url": f"{web}/-/merge_requests?release_tag={r.tag}",
                "self": f"{web}/-/releases/{r.tag}",
            },
        }

    def _direct(self, rec: RecordedRequest) -> Answer:
        """``/GROUP/PROJECT/-/releases/TAG/downloads/NAME`` → 302 to the asset host."""
        path = rec.path
        head, sep, rest = path.partition("/-/releases/")
        if not sep:
            return Answer(404, [("Content-Type", "text/plain")], b"not found\n")
        project = self.projects.get(unquote(head.lstrip("/")))
        tag, _, name = rest.partition("/downloads/")
        if project is None:
            return Answer(404, [("Content-Type", "text/plain")], b"not found\n")
        for r in project.releases:
            if r.tag == unquote(tag):
                for link in r.links:
                    if link.name == unquote(name):
                        location = self.asset_url(link.file or link.name)
                        return Answer(302, [("Location", location), ("Content-Length", "0")], b"")
        return Answer(404, [("Content-Type", "text/plain")], b"not found\n")

    # --- the asset host ---------------------------------------------------------------

    def _file(self, rec: RecordedRequest) -> Answer:
        carried = [h for h in CREDENTIAL_HEADERS if rec.header(h) is not None]
        if carried or any(self.token in v for v in rec.headers.values()):
            self.leaks.append(rec)
            return Answer(
                403, [("Content-Type", "text/plain")], b"credential sent to the asset host\n"
            )
        name = unquote(rec.path[len("/files/") :])
        body = self.files.get(name)
        if body is None:
            return Answer(404, [("Content-Type", "application/xml")], b"<Error>NoSuchKey</Error>")
        headers = [("Content-Type", "application/gzip"), *self.file_headers.get(name, [])]
        return Answer(200, headers, body if isinstance(body, bytes) else body())

    # --- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        self.api.close()
        self.assets.close()

    def __enter__(self) -> FakeGitLab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def example_project(gl: FakeGitLab, path: str = "wheels/ai/collection") -> Project:
    """Two good releases (flask on x86_64 and aarch64, webstack on x86_64) of tarballs
    built from samples/fromager: what the README's GitLab example reads."""
    from tests.support.tarballs import fromager_tarball, sample

    p = gl.project(path)
    for tag, when, archs, name in (
        ("v3.2.3.571+cpu-ubi9", "2026-11-02T08:00:00.000Z", ("x86_64", "aarch64"), "flask"),
        ("v3.2.4.1+model-opt-cuda-ubi9", "2026-11-03T09:30:00.000Z", ("x86_64",), "webstack"),
    ):
        data = fromager_tarball(sample(name))
        links = []
        for arch in archs:
            asset = f"wheels-{tag[1:]}-{arch}.tar.gz"
            gl.put_file(asset, data)
            links.append(Link(asset))
        p.releases.append(Release(tag, when, links=links))
    return p
