"""The GitLab source against a GitLab of our own (tests/support/gitlabserver.py), over real
HTTP, with tarballs built here from the real fromager files in samples/fromager."""

from __future__ import annotations

import gzip
import json
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import LiteralString

import psycopg
import pyarrow.parquet as pq
import pytest

from etl.config import Settings
from etl.errors import FetchError
from etl.extract import ExtractReport, extract
from etl.load import load_spool
from etl.spool import Spool
from tests.support.cli import cli_env, run_cli
from tests.support.gitlabserver import TOKEN, FakeGitLab, Link, Release
from tests.support.httpserver import Fault
from tests.support.tarballs import (
    Layout,
    drops_of,
    expected_wheels,
    fromager_tarball,
    sample,
    truncated,
)

PROJECT = "wheels/ai/collection"
V1 = "v3.2.3.571+cpu-ubi9"
V2 = "v3.2.4.1+model-opt-cuda-ubi9"


def asset(tag: str, arch: str) -> str:
    return f"wheels-{tag[1:]}-{arch}.tar.gz"


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with FakeGitLab() as server:
        yield server
        assert server.leaks == [], "a credential reached the asset host"


def settings(gl: FakeGitLab, spool: Path, **kw: object) -> Settings:
    values: dict[str, object] = {
        "source_url": gl.source_url(PROJECT),
        "source_token": TOKEN,
        "spool_dir": spool,
        "workers": 2,
        "retry_max_seconds": 10.0,
    }
    values.update(kw)
    return Settings.from_env({}, **values)


def good_project(gl: FakeGitLab) -> None:
    """Two good releases (flask on two architectures; webstack on one, reached by its
    plain url) and a link that is not a wheels tarball."""
    flask, web = sample("flask"), sample("webstack")
    gl.put_file(asset(V1, "x86_64"), fromager_tarball(flask))
    gl.put_file(
        asset(V1, "aarch64"), fromager_tarball(flask, Layout(top="other-top", requirements=False))
    )
    gl.put_file(asset(V2, "x86_64"), fromager_tarball(web))
    p = gl.project(PROJECT)
    p.releases.append(
        Release(
            V1,
            "2026-11-02T08:00:00.000Z",
            links=[
                Link(asset(V1, "x86_64")),
                Link(asset(V1, "aarch64")),
                Link("build-log.txt", link_type="runbook"),
            ],
        )
    )
    p.releases.append(
        Release(
            V2,
            None,
            created_at="2026-11-03T09:30:00.123Z",
            links=[Link(asset(V2, "x86_64"), direct=False)],
        )
    )


def query(
    db_url: str, statement: LiteralString, params: Sequence[object] = ()
) -> list[tuple[object, ...]]:
    with psycopg.connect(db_url) as conn:
        return list(conn.execute(statement, params).fetchall())


def test_releases_map_to_spool_files_and_rows(
    gitlab: FakeGitLab, tmp_path: Path, db_url: str
) -> None:
    good_project(gitlab)
    gitlab.api.script(
        f"/api/v4/projects/{PROJECT.replace('/', '%2F')}/releases?per_page=100",
        [Fault.status(429, {"Retry-After": "1"})],
    )
    spool = Spool(tmp_path / "spool")
    report = extract(settings(gitlab, tmp_path / "spool"), spool)
    assert report.ok, report.failed
    assert len(report.spooled) == 2
    assert report.stats["retries"] == 1
    assert report.stats["downloads"] == 3
    # the documents kept from a tarball are held in the byte budget
    assert report.stats["budget_peak_bytes"] >= len(sample("flask").graph)
    # the token went to the API (and to the direct_asset_url on the GitLab host), never
    # to the asset host (the fixture checks gitlab.leaks)
    api = gitlab.api_requests()
    assert api and all(r.header("private-token") == TOKEN for r in api)
    assert all(r.header("private-token") is None for r in gitlab.assets.requests)
    assert gitlab.downloads() == 3
    redirected = [r for r in gitlab.api.requests if "/-/releases/" in r.path]
    assert len(redirected) == 2  # V1's two links went through direct_asset_url's 302

    ld = load_spool(spool, db_url, retry_seconds=5.0)
    assert ld.ok and len(ld.applied) == 2
    releases = query(db_url, "SELECT product, release, updated_at::text FROM releases ORDER BY 2")
    assert releases == [
        ("collection", "3.2.3.571+cpu-ubi9", "2026-11-02 08:00:00+00"),
        ("collection", "3.2.4.1+model-opt-cuda-ubi9", "2026-11-03 09:30:00.123+00"),
    ]
    arts = query(
        db_url,
        "SELECT release, architecture, variant, jsonb_array_length(constraints_file), "
        "jsonb_typeof(dependency_graph), jsonb_typeof(build_sequence_summary) "
        "FROM artifacts ORDER BY 1, 2",
    )
    assert [a[:3] for a in arts] == [
        ("3.2.3.571+cpu-ubi9", "aarch64", "cpu-ubi9"),
        ("3.2.3.571+cpu-ubi9", "x86_64", "cpu-ubi9"),
        ("3.2.4.1+model-opt-cuda-ubi9", "x86_64", "model-opt-cuda-ubi9"),
    ]
    assert all(a[4:] == ("object", "array") for a in arts)
    # requirements.txt: the constraints' JSON shape; null when the tarball has none
    reqs = query(db_url, "SELECT release, architecture, requirements FROM artifacts ORDER BY 1, 2")
    none = {"specifier": "", "marker": None}
    assert reqs == [
        ("3.2.3.571+cpu-ubi9", "aarch64", None),
        ("3.2.3.571+cpu-ubi9", "x86_64", [{"name": "flask", **none}]),
        (
            "3.2.4.1+model-opt-cuda-ubi9",
            "x86_64",
            [{"name": n, **none} for n in ("httpx", "requests", "sphinx", "flask", "rich")],
        ),
    ]
    flask = sample("flask")
    want = expected_wheels(flask.wheel_names)
    drops = query(
        db_url,
        "SELECT filename, sha256, size, uploaded_at, yanked, requires_python FROM drops "
        "WHERE release = '3.2.3.571+cpu-ubi9' AND architecture = 'x86_64'",
    )
    assert {d[0]: (d[1], d[2]) for d in drops} == want
    assert all(d[3:] == (None, None, None) for d in drops)


def test_a_rerun_downloads_nothing_and_changed_links_replace_the_release(
    gitlab: FakeGitLab, tmp_path: Path, db_url: str
) -> None:
    good_project(gitlab)
    spool = Spool(tmp_path / "spool")
    s = settings(gitlab, tmp_path / "spool")
    assert extract(s, spool).ok
    assert load_spool(spool, db_url, retry_seconds=5.0).ok
    before = gitlab.downloads()

    again = extract(s, spool)
    assert again.ok and again.spooled == [] and len(again.unchanged) == 2
    assert again.stats["downloads"] == 0 and gitlab.downloads() == before

    # a link added to V1, released_at unchanged: V1 alone is extracted again and replaces
    # the old content in the database
    gitlab.put_file(asset(V1, "ppc64le"), fromager_tarball(sample("stevedore")))
    gitlab.projects[PROJECT].releases[0].links.append(Link(asset(V1, "ppc64le")))
    third = extract(s, spool)
    assert third.ok and len(third.spooled) == 1 and third.unchanged == [f"collection/{V2[1:]}"]
    assert third.stats["downloads"] == 3
    ld = load_spool(spool, db_url, retry_seconds=5.0)
    assert ld.ok and len(ld.applied) == 1, ld
    archs = query(
        db_url, "SELECT architecture FROM artifacts WHERE release = %s ORDER BY 1", [V1[1:]]
    )
    assert archs == [("aarch64",), ("ppc64le",), ("x86_64",)]

    # a link pointing elsewhere (same name, same released_at): extracted again
    gitlab.put_file("moved.tar.gz", fromager_tarball(sample("flask-variant")))
    gitlab.projects[PROJECT].releases[0].links[3] = Link(asset(V1, "ppc64le"), file="moved.tar.gz")
    fourth = extract(s, spool)
    assert len(fourth.spooled) == 1, fourth.failed
    assert load_spool(spool, db_url, retry_seconds=5.0).ok
    names = query(
        db_url,
        "SELECT count(*) FROM drops WHERE release = %s AND architecture = %s",
        [V1[1:], "ppc64le"],
    )
    assert names == [(len(sample("flask-variant").wheel_names),)]

    # a link removed: extracted again, the architecture is gone from the database
    del gitlab.projects[PROJECT].releases[0].links[0]
    assert len(extract(s, spool).spooled) == 1
    assert load_spool(spool, db_url, retry_seconds=5.0).ok
    archs = query(
        db_url, "SELECT architecture FROM artifacts WHERE release = %s ORDER BY 1", [V1[1:]]
    )
    assert archs == [("aarch64",), ("ppc64le",)]


def bad_project(gl: FakeGitLab) -> dict[str, str]:
    """One release per kind of bad tarball or tag; returns tag -> what its error says."""
    flask = sample("flask")
    good = fromager_tarball(flask)
    p = gl.project(PROJECT)
    cases = {
        "v1.0.0+truncated": (truncated(good), "truncated or corrupt tarball"),
        "v1.0.1+nograph": (
            fromager_tarball(flask, Layout(omit=frozenset({"graph.json"}))),
            "no release/outputs/graph.json",
        ),
        "v1.0.2+nosummary": (
            fromager_tarball(flask, Layout(omit=frozenset({"build-sequence-summary.json"}))),
            "no release/outputs/build-sequence-summary.json",
        ),
        "v1.0.3+garbage": (b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4, "invalid block type"),
        "v1.0.4+notgzip": (b"<html>login</html>", "not a gzip stream"),
    }
    for i, (tag, (data, _)) in enumerate(cases.items()):
        gl.put_file(asset(tag, "x86_64"), data)
        when = f"2026-10-{i + 1:02d}T00:00:00Z"
        p.releases.append(Release(tag, when, links=[Link(asset(tag, "x86_64"))]))
    # a tag without '+', an asset name that does not match, one that is missing
    p.releases.append(
        Release("v2.0.0", "2026-10-20T00:00:00Z", links=[Link("wheels-2.0.0-x86_64.tar.gz")])
    )
    p.releases.append(
        Release(
            "v2.0.1+cpu", "2026-10-21T00:00:00Z", links=[Link("wheels-2.0.1+cpu-X86_64.tar.gz")]
        )
    )
    p.releases.append(
        Release("v2.0.2+cpu", "2026-10-22T00:00:00Z", links=[Link(asset("v2.0.2+cpu", "s390x"))])
    )
    said = {tag: why for tag, (_, why) in cases.items()}
    said["v2.0.0"] = "has no '+'"
    said["v2.0.1+cpu"] = "does not match"
    said["v2.0.2+cpu"] = "HTTP 404"
    return said


def test_each_bad_release_fails_alone_with_one_line_naming_tag_and_asset(
    gitlab: FakeGitLab, tmp_path: Path
) -> None:
    said = bad_project(gitlab)
    flask = sample("flask")
    odd = Layout(reverse=True, symlink_whl=True, hardlink_whl=True, dotdot=True)
    gitlab.put_file(asset(V1, "x86_64"), fromager_tarball(flask, odd))
    gitlab.projects[PROJECT].releases.append(
        Release(V1, "2026-11-02T08:00:00Z", links=[Link(asset(V1, "x86_64"))])
    )
    spool = Spool(tmp_path / "spool")
    report: ExtractReport = extract(settings(gitlab, tmp_path / "spool"), spool)
    failed = dict(report.failed)
    assert len(report.spooled) == 1, report.failed
    assert len(failed) == len(said)
    for tag, why in said.items():
        line = failed[f"collection/{tag[1:]}"]
        assert "\n" not in line and why in line and f"tag {tag}" in line, line
        if tag != "v2.0.0":
            assert f"asset wheels-{tag[1:]}" in line, line
    # the odd but good tarball: members in reverse order, links named *.whl skipped,
    # ".." and absolute member paths harmless (nothing is ever written from a tarball)
    (ready,) = (tmp_path / "spool" / "ready").iterdir()
    table = pq.read_table(ready).to_pylist()
    names = {d["filename"] for d in table[0]["drops"]}
    assert names == drops_of(flask, odd)
    assert not (tmp_path / "escape-1.0-py3-none-any.whl").exists()
    assert not Path("/abs/absolute-1.0-py3-none-any.whl").exists()


@pytest.mark.parametrize(
    ("token", "project", "status"),
    [
        (None, PROJECT, "401"),
        ("wrong", PROJECT, "401"),
        (TOKEN, "no/such/project", "404"),
        (TOKEN, "locked/away", "403"),
    ],
)
def test_a_wrong_project_or_token_is_one_fatal_error_naming_the_project(
    gitlab: FakeGitLab, tmp_path: Path, token: str | None, project: str, status: str
) -> None:
    good_project(gitlab)
    gitlab.project("locked/away").forbidden = True
    env = cli_env(
        spool=tmp_path / "spool", source=gitlab.source_url(project), ETL_SOURCE_TOKEN=token
    )
    r = run_cli("extract", env=env, in_process=True)
    assert r.returncode == 2, r
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r
    assert f"GitLab project {project}" in lines[0] and f"HTTP {status}" in lines[0]
    assert TOKEN not in r.stdout + r.stderr
    assert gitlab.downloads() == 0


def test_link_header_pagination_numeric_id_and_product_name(
    gitlab: FakeGitLab, tmp_path: Path
) -> None:
    gitlab.link_only = True
    gitlab.max_per_page = 2
    p = gitlab.project(PROJECT)
    flask = fromager_tarball(sample("flask"))
    for i in range(5):
        tag = f"v1.{i}+cpu"
        gitlab.put_file(asset(tag, "x86_64"), flask)
        p.releases.append(
            Release(tag, f"2026-10-0{i + 1}T00:00:00Z", links=[Link(asset(tag, "x86_64"))])
        )
    url = gitlab.source_url(str(p.id), product="ai-stack")
    spool = Spool(tmp_path / "spool")
    report = extract(settings(gitlab, tmp_path / "spool", source_url=url), spool)
    assert report.ok and len(report.spooled) == 5
    assert all(name.startswith("ai-stack~1.") for name in report.spooled)
    pages = [r for r in gitlab.api_requests() if r.path.endswith("/releases")]
    assert len(pages) == 3
    # --product names the project's product; another name is refused
    other = extract(
        settings(gitlab, tmp_path / "spool", source_url=url, products=("ai-stack",)), spool
    )
    assert other.ok and len(other.unchanged) == 5
    env = cli_env(spool=tmp_path / "spool", source=url, ETL_SOURCE_TOKEN=TOKEN)
    r = run_cli("extract", "--product", "rhai", env=env, in_process=True)
    assert r.returncode == 2 and "unknown product rhai" in r.stderr, r


def test_the_token_never_reaches_spool_state_or_output(gitlab: FakeGitLab, tmp_path: Path) -> None:
    said = bad_project(gitlab)
    env = cli_env(
        spool=tmp_path / "spool", source=gitlab.source_url(PROJECT), ETL_SOURCE_TOKEN=TOKEN
    )
    r = run_cli("extract", "-v", env=env, in_process=True)
    assert r.returncode == 1 and len(said) == r.stderr.count("FAILED"), r
    assert TOKEN not in r.stdout + r.stderr
    for path in (tmp_path / "spool").rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    status = run_cli("status", "--json", env=env, in_process=True)
    doc = json.loads(status.stdout)
    reasons = [f["reason"] for p in doc["products"] for f in p["failures"]]
    assert len(reasons) == len(said)
    assert any(
        "tag v1.0.0+truncated, asset wheels-1.0.0+truncated-x86_64.tar.gz" in x for x in reasons
    )


def test_the_commands_on_a_gitlab_source(gitlab: FakeGitLab, tmp_path: Path, db_url: str) -> None:
    """extract, load, status, inspect and replay as a user runs them, one release bad."""
    good_project(gitlab)
    bad = "v1.0.0+cpu-ubi9"
    gitlab.put_file(asset(bad, "x86_64"), truncated(fromager_tarball(sample("flask"))))
    gitlab.projects[PROJECT].releases.append(
        Release(bad, "2026-10-01T00:00:00Z", links=[Link(asset(bad, "x86_64"))])
    )
    env = cli_env(
        spool=tmp_path / "spool",
        source=gitlab.source_url(PROJECT),
        database_url=db_url,
        ETL_SOURCE_TOKEN=TOKEN,
    )
    ext = run_cli("extract", env=env)
    assert ext.returncode == 1 and "2 spooled, 0 unchanged, 1 failed" in ext.stdout, ext
    line = f"FAILED collection/{bad[1:]}: release collection/{bad[1:]}: tag {bad}, asset "
    assert line + f"{asset(bad, 'x86_64')}: truncated or corrupt tarball" in ext.stderr, ext
    ld = run_cli("load", env=env)
    assert ld.returncode == 0 and "load: 2 applied" in ld.stdout, ld
    st = run_cli("status", env=env)
    assert f"tag {bad}, asset {asset(bad, 'x86_64')}" in st.stdout, st
    q = "SELECT architecture, requirements IS NULL AS none FROM artifacts ORDER BY 1"
    ins = run_cli("inspect", "--state", "loaded", "--json", "--sql", q, env=env)
    assert ins.returncode == 0 and json.loads(ins.stdout) == [
        {"architecture": "aarch64", "none": True},
        {"architecture": "x86_64", "none": False},
        {"architecture": "x86_64", "none": False},
    ], ins
    rep = run_cli("replay", "--loaded", env=env)
    assert rep.returncode == 0 and "2 unchanged" in rep.stdout, rep
    again = run_cli("extract", "--json", env=env)
    doc = json.loads(again.stdout)
    assert (doc["spooled"], doc["unchanged"], doc["failed"]) == (0, 2, 1)
    assert doc["downloads"] == 1 and gitlab.downloads() == 5  # only the bad one's again
    print("\n" + "\n".join(str(r) for r in (ext, ld, st, again)))


def test_a_document_over_the_size_limit_fails_its_release(
    gitlab: FakeGitLab, tmp_path: Path
) -> None:
    flask = sample("flask")
    assert len(flask.graph) > 4000 > max(len(flask.summary), len(flask.constraints))
    gitlab.put_file(asset(V1, "x86_64"), fromager_tarball(flask))
    gitlab.project(PROJECT).releases.append(
        Release(V1, "2026-11-02T08:00:00Z", links=[Link(asset(V1, "x86_64"))])
    )
    report = extract(
        settings(gitlab, tmp_path / "spool", max_file_bytes=4000), Spool(tmp_path / "spool")
    )
    ((_, why),) = report.failed
    assert f"tag {V1}, asset {asset(V1, 'x86_64')}" in why
    assert "release/outputs/graph.json" in why and "over the 4000-byte limit" in why


def test_a_release_listing_over_the_size_limit_is_refused_naming_the_page(
    gitlab: FakeGitLab, tmp_path: Path
) -> None:
    """A page of the release listing is held whole, so it too is cut at --max-file-bytes
    (here 2,000 bytes, below the page of 20 releases the server sends)."""
    for n in range(20):
        tag = f"v1.{n}.0"
        gitlab.project(PROJECT).releases.append(
            Release(tag, f"2026-11-{n + 1:02d}T08:00:00Z", links=[Link(asset(tag, "x86_64"))])
        )
    with pytest.raises(FetchError) as caught:
        extract(
            settings(gitlab, tmp_path / "spool", max_file_bytes=2000), Spool(tmp_path / "spool")
        )
    assert "over the 2000-byte limit" in caught.value.message
    assert "/releases" in (caught.value.url or "") and TOKEN not in str(caught.value)
    assert not list((tmp_path / "spool").rglob("*.parquet"))


def test_a_worker_finds_the_release_by_its_tag_without_the_listing(gitlab: FakeGitLab) -> None:
    """A worker gets (product, version, updated_at, url) from the broker, never the
    listing's links: the release is asked of the Releases API again by its tag."""
    from etl.source import GitLabSource, ReleaseRef

    good_project(gitlab)
    s = settings(gitlab, Path("unused"))
    with GitLabSource(s) as client:
        (product,) = client.products()
        listed = {r.version: r for r in client.releases(product)}
        for version, ref in listed.items():
            for url in (ref.url, "", "http://elsewhere.example/x"):
                bare = ReleaseRef(ref.product, version, ref.updated_at, url)
                rel = client.release(bare)
                assert rel.fingerprint == ref.fingerprint and rel.tag == f"v{version}"


def test_a_connection_broken_mid_tarball_is_retried_from_its_start(
    gitlab: FakeGitLab, tmp_path: Path
) -> None:
    data = fromager_tarball(sample("webstack"))
    gitlab.put_file(asset(V1, "x86_64"), data)
    gitlab.project(PROJECT).releases.append(
        Release(V1, "2026-11-02T08:00:00Z", links=[Link(asset(V1, "x86_64"), direct=False)])
    )
    path = "/files/" + asset(V1, "x86_64").replace("+", "%2B")
    gitlab.assets.script(path, [Fault("reset", body=data, after=len(data) // 2)])
    report = extract(settings(gitlab, tmp_path / "spool"), Spool(tmp_path / "spool"))
    assert report.ok and len(report.spooled) == 1, report.failed
    assert report.stats["retries"] == 1 and gitlab.downloads() == 2


def test_a_tarball_stored_with_content_encoding_gzip_is_read(
    gitlab: FakeGitLab, tmp_path: Path
) -> None:
    """Object stores serve a .tar.gz uploaded with ``Content-Encoding: gzip`` as such:
    the HTTP layer undoes the gzip and the tar arrives plain.  (The test first makes sure
    the header is really sent: without it the ordinary gzip path would pass as well.)"""
    flask = sample("flask")
    tarball = fromager_tarball(flask)
    gitlab.put_file(asset(V1, "x86_64"), tarball, {"Content-Encoding": "gzip"})
    gitlab.project(PROJECT).releases.append(
        Release(V1, "2026-11-02T08:00:00Z", links=[Link(asset(V1, "x86_64"))])
    )
    with urllib.request.urlopen(gitlab.asset_url(asset(V1, "x86_64")), timeout=30) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"  # urllib leaves the body as sent
        assert resp.read() == tarball
    report = extract(settings(gitlab, tmp_path / "spool"), Spool(tmp_path / "spool"))
    assert report.ok and len(report.spooled) == 1, report.failed
    (ready,) = (tmp_path / "spool" / "ready").iterdir()
    (row,) = pq.read_table(ready).to_pylist()
    assert {d["filename"] for d in row["drops"]} == drops_of(flask)
    assert json.loads(row["dependency_graph"]) == json.loads(flask.graph)
    assert json.loads(row["build_sequence_summary"]) == json.loads(flask.summary)


def test_a_tarball_of_the_wrong_format_fails_its_release_naming_tag_asset_and_format(
    gitlab: FakeGitLab, tmp_path: Path
) -> None:
    """Each layer checks its own format, whatever the chunking: the gzip layer that the
    body is gzip (unless HTTP undid its gzip), the tar layer that what it reads is a tar.
    ``wheels-etl extract`` exits 1 (some release failed), one line per bad release."""
    plain_tar = gzip.decompress(fromager_tarball(sample("flask")))
    text = b"Build log: nothing to see here.\n" * 100
    noise = bytes((i * 7919 + 13) % 256 for i in range(50_000))  # not a tar header
    cases: dict[str, tuple[bytes, dict[str, str], str]] = {
        # a .tar.gz whose inner file is not a tar
        "v1.1.0+gztext": (gzip.compress(text), {}, "not a tar archive inside the gzip"),
        # a gzip of garbage
        "v1.1.1+gznoise": (gzip.compress(noise), {}, "not a tar archive inside the gzip"),
        # a plain tar named .tar.gz, served as it is
        "v1.1.2+plaintar": (plain_tar, {}, "not a gzip stream (it begins "),
        # garbage stored with Content-Encoding: gzip: the HTTP layer undoes the gzip
        "v1.1.3+encoded": (
            gzip.compress(noise),
            {"Content-Encoding": "gzip"},
            "not a tar archive (its gzip undone by Content-Encoding)",
        ),
    }
    p = gitlab.project(PROJECT)
    for i, (tag, (body, headers, _)) in enumerate(cases.items()):
        gitlab.put_file(asset(tag, "x86_64"), body, headers)
        p.releases.append(
            Release(tag, f"2026-10-{i + 1:02d}T00:00:00Z", links=[Link(asset(tag, "x86_64"))])
        )
    gitlab.put_file(asset(V1, "x86_64"), fromager_tarball(sample("flask")))
    p.releases.append(Release(V1, "2026-11-02T08:00:00Z", links=[Link(asset(V1, "x86_64"))]))
    env = cli_env(
        spool=tmp_path / "spool", source=gitlab.source_url(PROJECT), ETL_SOURCE_TOKEN=TOKEN
    )
    r = run_cli("extract", env=env)
    assert r.returncode == 1 and "1 spooled, 0 unchanged, 4 failed" in r.stdout, r
    failed = [ln for ln in r.stderr.splitlines() if ln.startswith("FAILED ")]
    assert len(failed) == len(cases), r.stderr
    for tag, (_, _, why) in cases.items():
        name = f"collection/{tag[1:]}"
        (line,) = [ln for ln in failed if ln.startswith(f"FAILED {name}: ")]
        assert f"tag {tag}, asset {asset(tag, 'x86_64')}: {why}" in line, line
        assert "Traceback" not in r.stderr
    plain = next(ln for ln in failed if "plaintar" in ln)
    assert repr(plain_tar[:16]) in plain, plain  # what it begins with instead
    noisy = next(ln for ln in failed if "gznoise" in ln)
    assert repr(noise[:16]) in noisy, noisy  # the inner bytes, after the gzip


def test_a_byte_budget_smaller_than_one_tarballs_documents_still_completes(
    gitlab: FakeGitLab, tmp_path: Path
) -> None:
    good_project(gitlab)
    s = settings(gitlab, tmp_path / "spool", max_inflight_bytes=1024)
    report = extract(s, Spool(tmp_path / "spool"))
    assert report.ok and len(report.spooled) == 2, report.failed
    assert report.stats["budget_overdrafts"] >= 1  # one tarball at a time over the cap
