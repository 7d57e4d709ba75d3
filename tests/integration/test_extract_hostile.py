"""A hostile source, at the extract level, against a real HTTP server.

Product ``rhai`` has releases 1.0.0, 1.0.1 and 1.0.2 (two artifacts each); every fault is
aimed at 1.0.1.  For each case: 1.0.1 fails with a message naming the release and the URL
or problem, 1.0.0 and 1.0.2 are complete in ``ready/``, and nothing half-written is left
(``tmp/`` empty, no file of 1.0.1 in any state).  Transient faults that clear up leave
1.0.1 complete too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from etl.config import Settings
from etl.errors import ProtocolError
from etl.extract import ExtractReport, extract
from etl.spool import STATES, Spool, SpoolName
from tests.support.cli import run_cli
from tests.support.httpserver import Fault, SourceServer
from tests.support.sourcetree import write_source_tree

REPO = Path(__file__).resolve().parents[2]
VERSIONS = ["1.0.0", "1.0.1", "1.0.2"]
BAD = "rhai/1.0.1"
GOOD = {"rhai/1.0.0", "rhai/1.0.2"}
REL = "/rhai/1.0.1/release.json"
GRAPH = "/rhai/1.0.1/x86_64/cpu/graph.json"
CONSTRAINTS = "/rhai/1.0.1/aarch64/cpu/constraints.txt"
WHEELS = "/rhai/1.0.1/aarch64/cpu/wheels.json"
SUMMARY = "/rhai/1.0.1/x86_64/cpu/build-sequence-summary.json"
MIB = 1024 * 1024
TOKEN = "tok-HOSTILE-5e7d19"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return write_source_tree(tmp_path / "src", {"rhai": VERSIONS})


@pytest.fixture
def server(tree: Path) -> Any:
    with SourceServer(tree) as srv:
        yield srv


def run(server: SourceServer, spool_dir: Path, **overrides: Any) -> ExtractReport:
    values: dict[str, Any] = {
        "source_url": server.url,
        "spool_dir": spool_dir,
        "workers": 4,
        "retries": 3,
        "retry_max_seconds": 20.0,
        "connect_timeout": 2.0,
        "read_timeout": 0.5,
    }
    values.update(overrides)
    return extract(Settings(**values), Spool(spool_dir))


def spooled_keys(spool_dir: Path) -> dict[str, set[str]]:
    spool = Spool(spool_dir)
    return {s: {SpoolName.parse(f.name).release_key for f in spool.files(s)} for s in STATES}


def assert_clean(spool_dir: Path, *, bad: str | None, good: set[str]) -> None:
    """``good`` complete in ready/, nothing of ``bad`` anywhere, tmp/ empty."""
    keys = spooled_keys(spool_dir)
    assert keys["ready"] == good
    assert not any(keys[s] for s in STATES if s != "ready")
    assert not list((spool_dir / "tmp").iterdir()), "half-written file left in tmp/"
    if bad is not None:
        names = [p.name for p in spool_dir.rglob("*") if p.is_file()]
        assert not [n for n in names if n.startswith(bad.replace("/", "~") + "~")]


def assert_isolated(report: ExtractReport, spool_dir: Path, *needles: str, bad: str = BAD) -> str:
    """Exactly ``bad`` failed, its message holds every needle; returns the message."""
    assert [k for k, _ in report.failed] == [bad], report.failed
    message = report.failed[0][1]
    assert f"release {bad}" in message
    for needle in needles:
        assert needle in message, (needle, message)
    assert {SpoolName.parse(n).release_key for n in report.spooled} == GOOD
    assert_clean(spool_dir, bad=bad, good=GOOD)
    return message


# --- transient faults that clear up: the release completes ----------------------------


RECOVER: dict[str, Callable[[], tuple[str, list[Fault]]]] = {
    "429-retry-after-seconds": lambda: (GRAPH, [Fault.status(429, {"Retry-After": "1"})]),
    "429-retry-after-http-date": lambda: (
        REL,
        [Fault.retry_at_date(429, 3)],
    ),
    "503-flapping": lambda: (WHEELS, [Fault.status(503), Fault.status(502), Fault.status(503)]),
    "reset-mid-body-once": lambda: (GRAPH, [Fault.reset(after=200)]),
    "stall-once": lambda: (CONSTRAINTS, [Fault.stall(5, after=10)]),
    "short-body-once": lambda: (SUMMARY, [Fault.short(missing=30)]),
}


@pytest.mark.parametrize("case", sorted(RECOVER))
def test_transient_fault_recovers(server: SourceServer, tmp_path: Path, case: str) -> None:
    path, faults = RECOVER[case]()
    server.script(path, faults)
    report = run(server, tmp_path / "spool", retries=4)
    assert report.ok, report.failed
    assert server.count(path) == len(faults) + 1
    assert report.stats["retries"] >= len(faults)
    if case.startswith("429"):
        assert report.stats["retry_wait_ms"] >= 500  # the server's Retry-After was honoured
    assert_clean(tmp_path / "spool", bad=None, good=GOOD | {BAD})


def test_gzip_bodies(tree: Path, tmp_path: Path) -> None:
    with SourceServer(tree, gzip=True, chunked=True) as srv:
        report = run(srv, tmp_path / "spool")
        assert all("gzip" in (r.header("accept-encoding") or "") for r in srv.requests)
    assert report.ok, report.failed
    plain = tmp_path / "plain"
    with SourceServer(tree) as srv:
        assert run(srv, plain).ok
    # the same content either way: the same file names (they carry the content hash)
    assert {p.name for p in (tmp_path / "spool" / "ready").iterdir()} == {
        p.name for p in (plain / "ready").iterdir()
    }


# --- faults that persist: the release fails alone ---------------------------------------


def test_503_forever(server: SourceServer, tmp_path: Path) -> None:
    server.always(GRAPH, Fault.status(503))
    msg = assert_isolated(run(server, tmp_path / "spool"), tmp_path / "spool", "HTTP 503")
    assert server.link(GRAPH) in msg and "3 attempts" in msg


def test_429_forever(server: SourceServer, tmp_path: Path) -> None:
    server.always(REL, Fault.status(429, {"Retry-After": "0"}))
    msg = assert_isolated(run(server, tmp_path / "spool"), tmp_path / "spool", "HTTP 429")
    assert server.link(REL) in msg


def test_connection_reset_mid_body_every_time(server: SourceServer, tmp_path: Path) -> None:
    server.always(GRAPH, Fault.reset(after=100))
    msg = assert_isolated(run(server, tmp_path / "spool"), tmp_path / "spool")
    assert server.link(GRAPH) in msg and "connection" in msg.lower()


def test_body_that_stalls_every_time(server: SourceServer, tmp_path: Path) -> None:
    server.always(WHEELS, Fault.stall(5, after=20))
    msg = assert_isolated(run(server, tmp_path / "spool"), tmp_path / "spool", "read timeout")
    assert server.link(WHEELS) in msg and "stalled" in msg


def test_body_shorter_than_content_length(server: SourceServer, tmp_path: Path) -> None:
    server.always(CONSTRAINTS, Fault.short(missing=7))
    assert_isolated(
        run(server, tmp_path / "spool"),
        tmp_path / "spool",
        "shorter than its Content-Length",
        server.link(CONSTRAINTS),
    )


def test_file_over_the_size_limit_is_rejected_unread(server: SourceServer, tmp_path: Path) -> None:
    size = 64 * MIB
    server.always(GRAPH, Fault.huge(size))
    report = run(server, tmp_path / "spool", max_file_bytes=MIB)
    assert_isolated(report, tmp_path / "spool", "over the 1048576-byte limit", server.link(GRAPH))
    assert server.count(GRAPH) == 1  # fatal, not retried
    assert server.sent(GRAPH) < size // 4  # the client hung up: not read in full
    assert report.stats["bytes"] < 4 * MIB


def test_streamed_file_over_the_size_limit(server: SourceServer, tmp_path: Path) -> None:
    size = 32 * MIB
    server.always(GRAPH, Fault.huge(size, chunked=True))
    report = run(server, tmp_path / "spool", max_file_bytes=MIB)
    assert_isolated(report, tmp_path / "spool", "over the 1048576-byte limit", "stopped after")
    assert server.sent(GRAPH) < size // 2


def test_malformed_json_gives_line_and_column(server: SourceServer, tmp_path: Path) -> None:
    server.put(GRAPH, b'{\n  "a": 1,\n  "b": [1, 2,,]\n}\n')
    assert_isolated(
        run(server, tmp_path / "spool"),
        tmp_path / "spool",
        "malformed JSON at line 3 column",
        server.link(GRAPH),
    )


def test_malformed_release_json(server: SourceServer, tmp_path: Path) -> None:
    server.put(REL, b'{"product": "rhai", "version": "1.0.1",\n "updated_at": }')
    assert_isolated(
        run(server, tmp_path / "spool"),
        tmp_path / "spool",
        "malformed JSON at line 2 column 16",
        server.link(REL),
    )


def test_json_with_invalid_utf8(server: SourceServer, tmp_path: Path) -> None:
    server.put(SUMMARY, b'[{"dist": "caf\xe9"}]')
    assert_isolated(
        run(server, tmp_path / "spool"),
        tmp_path / "spool",
        "invalid UTF-8 at byte 14",
        server.link(SUMMARY),
    )


def test_bad_constraints_line(server: SourceServer, tmp_path: Path, tree: Path) -> None:
    body = (tree / CONSTRAINTS.lstrip("/")).read_bytes() + b"torch===>2.0 ; ???\n"
    lineno = body.count(b"\n")
    server.put(CONSTRAINTS, body)
    assert_isolated(
        run(server, tmp_path / "spool"),
        tmp_path / "spool",
        f"line {lineno}: not a valid requirement",
        "torch===>2.0",
        server.link(CONSTRAINTS),
    )


def test_invalid_wheel_filename(server: SourceServer, tmp_path: Path, tree: Path) -> None:
    doc = json.loads((tree / WHEELS.lstrip("/")).read_text())
    doc["files"][1]["filename"] = "not-a-wheel.tar.gz"
    server.put(WHEELS, json.dumps(doc).encode())
    assert_isolated(
        run(server, tmp_path / "spool"),
        tmp_path / "spool",
        "invalid wheel filename",
        "not-a-wheel.tar.gz",
        server.link(WHEELS),
    )


def _edit_release(tree: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = tree / REL.lstrip("/")
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def test_duplicate_architecture_variant(tree: Path, server: SourceServer, tmp_path: Path) -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["artifacts"][1]["architecture"] = doc["artifacts"][0]["architecture"]
        doc["artifacts"][1]["variant"] = doc["artifacts"][0]["variant"]

    _edit_release(tree, edit)
    assert_isolated(
        run(server, tmp_path / "spool"),
        tmp_path / "spool",
        "duplicate artifact (architecture 'x86_64', variant 'cpu')",
        server.link(REL),
    )
    assert server.count(GRAPH) == 0  # rejected before any file was fetched


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("architecture", "x86_64/../../etc", "'x86_64/../../etc'"),
        ("variant", "..", "'..'"),
        ("variant", "cpu\x00", "'cpu\\x00'"),
        ("architecture", "a" * 500, "'aaaaaaaaaa"),
    ],
    ids=["slash", "dotdot", "nul", "500-chars"],
)
def test_bad_identifier_in_release_json(
    tree: Path, server: SourceServer, tmp_path: Path, field: str, value: str, shown: str
) -> None:
    _edit_release(tree, lambda doc: doc["artifacts"][0].__setitem__(field, value))
    msg = assert_isolated(
        run(server, tmp_path / "spool"),
        tmp_path / "spool",
        f"invalid artifacts[0].{field} {shown}",
        server.link(REL),
    )
    assert len(msg) < 600  # a 500-character value is shortened in the message
    assert not [r for r in server.requests if "/1.0.1/" in r.path and r.path != REL]


@pytest.mark.parametrize(
    ("value", "shown"),
    [("1.0/../../x", "'1.0/../../x'"), ("..", "'..'"), ("1.0\x00", "'1.0\\x00'"),
     ("9" * 500, "'9999999999")],
    ids=["slash", "dotdot", "nul", "500-chars"],
)  # fmt: skip
def test_bad_version_in_the_listing(
    tree: Path, server: SourceServer, tmp_path: Path, value: str, shown: str
) -> None:
    page = tree / "rhai" / "releases.json"
    doc = json.loads(page.read_text())
    doc["releases"][1]["version"] = value
    page.write_text(json.dumps(doc))
    report = run(server, tmp_path / "spool")
    where = "rhai (releases page 1 entry 1)"
    assert [k for k, _ in report.failed] == [where]
    msg = report.failed[0][1]
    assert f"release {where}" in msg and f"invalid version {shown}" in msg
    assert server.link("rhai/releases.json") in msg
    assert {SpoolName.parse(n).release_key for n in report.spooled} == GOOD
    assert_clean(tmp_path / "spool", bad=None, good=GOOD)
    assert not [r for r in server.requests if "/1.0.1/" in r.path]  # nothing requested


def test_bad_product_name_in_the_index(tree: Path, server: SourceServer, tmp_path: Path) -> None:
    index = json.loads((tree / "index.json").read_text())
    index["products"].append({"name": "../evil", "releases": "rhai/releases.json"})
    index["products"].append({"name": "p" * 500, "releases": "rhai/releases.json"})
    (tree / "index.json").write_text(json.dumps(index))
    report = run(server, tmp_path / "spool")
    failed = dict(report.failed)
    assert set(failed) == {"products[1]", "products[2]"}
    assert "invalid product '../evil'" in failed["products[1]"]
    assert "invalid product 'pppp" in failed["products[2]"]
    assert_clean(tmp_path / "spool", bad=None, good=GOOD | {BAD})


def test_next_link_looping_back(tmp_path: Path) -> None:
    tree = write_source_tree(tmp_path / "src", {"rhai": VERSIONS}, page_size=1)
    page3 = tree / "rhai" / "releases.json@page=3"
    doc = json.loads(page3.read_text())
    doc["next"] = "releases.json?page=2"  # back to a page already read
    page3.write_text(json.dumps(doc))
    with SourceServer(tree) as server:
        report = run(server, tmp_path / "spool")
        assert server.count("/rhai/releases.json?page=2") == 1  # not read twice
    [(key, msg)] = report.failed
    assert key == "rhai (listing)"
    assert "loops back to a page already read" in msg and "rhai" in msg
    assert "releases.json?page=2" in msg
    # what was listed before the loop is complete
    assert_clean(tmp_path / "spool", bad=None, good=GOOD | {BAD})


def test_redirect_to_another_origin_does_not_carry_the_token(tree: Path, tmp_path: Path) -> None:
    with SourceServer(tree) as server, SourceServer(tree) as other:
        server.always(GRAPH, Fault.redirect(other.link(GRAPH)))
        server.always(WHEELS, Fault.redirect(other.link("/private" + WHEELS)))
        other.always("/private" + WHEELS, Fault.status(401))
        report = run(server, tmp_path / "spool", source_token=TOKEN)
        # the redirected graph was fetched from the other origin, without the token
        assert [r.header("authorization") for r in other.requests_for(GRAPH)] == [None]
        assert all(r.header("authorization") is None for r in other.requests)
        assert server.requests and all(
            r.header("authorization") == f"Bearer {TOKEN}" for r in server.requests
        )
    msg = assert_isolated(report, tmp_path / "spool", "HTTP 401", other.link("/private" + WHEELS))
    assert TOKEN not in msg


def test_redirect_to_another_origin_succeeds_without_the_token(tree: Path, tmp_path: Path) -> None:
    with SourceServer(tree) as server, SourceServer(tree) as other:
        server.always(GRAPH, Fault.redirect(other.link(GRAPH), code=307))
        report = run(server, tmp_path / "spool", source_token=TOKEN)
        assert other.count(GRAPH) == 1
        assert other.requests_for(GRAPH)[0].header("authorization") is None
    assert report.ok, report.failed
    assert_clean(tmp_path / "spool", bad=None, good=GOOD | {BAD})


def test_unknown_index_format_is_fatal_for_the_run(server: SourceServer, tmp_path: Path) -> None:
    server.put("/index.json", b'{"format": "wheel-collections/7", "products": []}')
    with pytest.raises(ProtocolError, match="'wheel-collections/7'"):
        run(server, tmp_path / "spool")
    assert not any(spooled_keys(tmp_path / "spool").values())


# --- through the CLI: exit codes -------------------------------------------------------


def test_cli_exits_1_when_a_release_failed(server: SourceServer, tmp_path: Path) -> None:
    server.put(GRAPH, b'{"a": tru}')
    spool_dir = tmp_path / "spool"
    out = run_cli("extract", "--source", server.url, "--spool", str(spool_dir), "--workers", "3")
    assert out.returncode == 1, out.stderr
    # one line says the release failed (the wording is the CLI's: "FAILED <release>: ...")
    assert [ln for ln in out.stderr.splitlines() if BAD in ln and "failed" in ln.lower()]
    assert "malformed JSON at line 1 column" in out.stderr and server.link(GRAPH) in out.stderr
    assert "2 spooled" in out.stdout and "1 failed" in out.stdout
    assert_clean(spool_dir, bad=BAD, good=GOOD)
    # the source is fixed: the rerun fetches only 1.0.1 and exits 0
    server.put(GRAPH, (server.root / GRAPH.lstrip("/")).read_bytes())  # type: ignore[operator]
    server.clear()
    again = run_cli("extract", "--source", server.url, "--spool", str(spool_dir))
    assert again.returncode == 0, again.stderr
    assert "1 spooled, 2 unchanged, 0 failed" in again.stdout
    assert_clean(spool_dir, bad=None, good=GOOD | {BAD})


def test_cli_unknown_index_format_exits_non_zero_naming_the_value(
    server: SourceServer, tmp_path: Path
) -> None:
    server.put("/index.json", b'{"format": "wheel-collections/7", "products": []}')
    out = run_cli("extract", "--source", server.url, "--spool", str(tmp_path / "spool"))
    assert out.returncode != 0
    assert "unknown index format 'wheel-collections/7'" in out.stderr
    assert server.link("index.json") in out.stderr


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "is an HTML page"),
        (b"Service moved", "is not JSON"),
        (b'{"products": []}', "is a JSON object without 'format'"),
        (b'[{"name": "x"}]', "is a JSON list without 'format'"),
    ],
)
def test_a_source_url_that_answers_no_index_is_a_bad_setting(
    server: SourceServer, tmp_path: Path, body: bytes, said: str
) -> None:
    """A login page, a moved notice or JSON of another API at --source is the wrong place,
    as a 404 is: exit 2 saying what it answered, and nothing is spooled."""
    server.put("/index.json", body)
    out = run_cli("extract", "--source", server.url, "--spool", str(tmp_path / "spool"))
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert said in out.stderr and server.link("index.json") in out.stderr
    assert "--source" in out.stderr and "Traceback" not in out.stderr
    assert not list((tmp_path / "spool").rglob("*.parquet"))


def test_a_broken_index_fails_the_run_not_the_settings(
    server: SourceServer, tmp_path: Path
) -> None:
    """An index that is JSON cut short is the source's fault (exit 1), with line and column."""
    server.put("/index.json", b'{"format": "wheel-collections/1", "products": [')
    out = run_cli("extract", "--source", server.url, "--spool", str(tmp_path / "spool"))
    assert out.returncode == 1, (out.returncode, out.stderr)
    assert "malformed JSON at line 1 column" in out.stderr


def test_a_failed_release_gives_its_bytes_back_under_a_tiny_cap(
    server: SourceServer, tmp_path: Path
) -> None:
    """1.0.1's first artifact fails while its second is being fetched: with a 1-byte cap,
    every artifact needs the overdraft in turn, so bytes left held would stall the run."""
    server.put(GRAPH, b"[1, 2")
    report = run(server, tmp_path / "spool", max_inflight_bytes=1, workers=2)
    assert_isolated(report, tmp_path / "spool", "malformed JSON at line 1 column 6")
    assert report.stats["budget_overdrafts"] > 0


def test_extract_refuses_an_artifact_load_could_not_take(tmp_path: Path) -> None:
    """One size contract (128 MiB per artifact): a release with a 129 MiB document was
    extracted (``--max-file-bytes`` defaulted to 256 MiB) into a file load then refused
    for ever ("would decode to about 135 MB ... over the 128 MiB").  Now the document is
    refused by default, before it is read; with a higher ``--max-file-bytes`` the written
    file is checked as load checks it, and the release fails naming the document."""
    src = write_source_tree(tmp_path / "src", {"big": ["1.0"]}, artifacts=(("x86_64", "cpu"),))
    [graph] = src.rglob("graph.json")
    doc = json.loads(graph.read_bytes())
    doc["zz-padding"] = {"note": "x" * (129 * 2**20)}  # over 128 MiB, under 256 MiB
    graph.write_text(json.dumps(doc))
    for name, flags, says in (
        ("default", (), "graph.json"),
        ("raised", ("--max-file-bytes", "256MiB"), "dependency_graph"),
    ):
        spool = tmp_path / name
        result = run_cli("extract", "--source", src, "--spool", spool, *flags)
        assert result.returncode == 1, result
        [line] = [ln for ln in result.stderr.splitlines() if "FAILED" in ln]
        assert "release big/1.0" in line and says in line and "over the" in line, line
        assert not any(Spool(spool).files(state) for state in STATES), name


def test_the_total_is_final_when_the_last_product_fails(tmp_path: Path) -> None:
    """The listing said ``listing-done`` (the progress bar's total is final) only after the
    last product's listing; when the last product's index entry is bad it never came, and
    the bar stayed at "n/?"."""
    src = write_source_tree(tmp_path / "src", {"good": ["1.0"]})
    index = json.loads((src / "index.json").read_text())
    index["products"].append({"name": "bad name!", "releases": "x/releases.json"})
    (src / "index.json").write_text(json.dumps(index))
    kinds: list[str] = []
    settings = Settings(source_url=str(src), spool_dir=tmp_path / "spool")
    report = extract(settings, Spool(tmp_path / "spool"), progress=lambda ev: kinds.append(ev.kind))
    assert not report.ok and kinds.count("listing-done") == 1, kinds
    assert kinds.index("listing-done") > max(i for i, k in enumerate(kinds) if k == "listed")
