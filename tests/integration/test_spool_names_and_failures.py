"""Issue 10 items 6, 7, 8, 11 and issue 9's extract failures, through the real CLI against
real files and real Postgres: protocol-maximum identifiers work end to end; a release whose
file failed as corrupt is fetched again; two files with one name never share a sidecar;
messages name where a file is now and replay commands are shell-quoted; extract failures
are kept in the spool and shown by ``status``."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
import pytest

from etl.spool import Spool
from tests.support.cli import CliResult, cli_env, run_cli
from tests.support.sourcetree import write_source_tree

PRODUCT = "p" + "r" * 126 + "X"  # 128 characters: the protocol's maximum
RELEASE = "1." + "0" * 125 + "a"


def _cli(spool: Path, src: Path | None, db: str | None, *args: str) -> CliResult:
    return run_cli(*args, env=cli_env(spool=spool, source=src, database_url=db))


def _rows(db: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db) as conn:
        return conn.execute(query).fetchall()


def _shortened(ident: str) -> str:
    """An identifier over 48 characters as file names hold it (etl/spooling/names.py):
    its first 31 characters, ``=``, 16 hex digits of its sha256."""
    return f"{ident[:31]}={hashlib.sha256(ident.encode()).hexdigest()[:16]}"


def _all_names(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*")]


def test_128_character_product_and_release_work_end_to_end(tmp_path: Path, db_url: str) -> None:
    src = write_source_tree(tmp_path / "src", {PRODUCT: [RELEASE]})
    spool = tmp_path / "spool"
    ex = _cli(spool, src, None, "extract", "--json")
    assert ex.returncode == 0, ex
    assert json.loads(ex.stdout)["spooled"] == 1
    [path] = (spool / "ready").iterdir()
    assert all(len(n.encode()) < 200 for n in _all_names(spool)), _all_names(spool)
    # the name holds each shortened as documented; the footer holds them whole
    name = path.name
    assert name.startswith(f"{_shortened(PRODUCT)}~{_shortened(RELEASE)}~"), name
    assert name.endswith(".parquet") and name.count("~") == 3, name
    meta = pq.ParquetFile(path).metadata.metadata  # the footer's key-value pairs
    assert meta[b"wheels_etl.product"] == PRODUCT.encode(), meta
    assert meta[b"wheels_etl.release"] == RELEASE.encode(), meta

    again = _cli(spool, src, None, "extract", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["unchanged"] == 1, again

    ld = _cli(spool, None, db_url, "load")
    assert ld.returncode == 0, ld
    assert _rows(db_url, "SELECT DISTINCT product, release FROM artifacts") == [(PRODUCT, RELEASE)]
    st = _cli(spool, None, db_url, "status", "--json")
    assert st.returncode == 0, st
    info = json.loads(st.stdout)
    assert info["states"]["loaded"]["files"] == 1
    assert [p["product"] for p in info["products"]] == [PRODUCT]

    rp = _cli(spool, None, db_url, "replay", "--loaded")
    assert rp.returncode == 0, rp
    assert [g.name for g in Spool(spool).files("loaded")] == [path.name]
    q = run_cli("inspect", "--json", "--sql", "select product, release from files",
                env=cli_env(spool=spool))  # fmt: skip
    assert json.loads(q.stdout) == [{"product": PRODUCT, "release": RELEASE}], q


def test_a_release_whose_file_failed_as_corrupt_is_fetched_again(
    tmp_path: Path, db_url: str
) -> None:
    src = write_source_tree(tmp_path / "src", {"rhai": ["3.0.0"]})
    spool = tmp_path / "spool"
    assert _cli(spool, src, None, "extract").returncode == 0
    [f] = Spool(spool).files("ready")
    path = spool / "ready" / f.name
    path.write_bytes(path.read_bytes()[:300])  # truncated: corrupt
    ld = _cli(spool, None, db_url, "load")
    assert ld.returncode == 1, ld
    assert f"failed {f.name}: now in failed/{f.name}: " in ld.stderr, ld
    old_side = (spool / "failed" / (f.name + ".error.json")).read_bytes()

    st = _cli(spool, None, db_url, "status")
    assert st.returncode == 1, st
    assert f"  failed/{f.name}: " in st.stdout, st
    assert "next: the next `wheels-etl extract` fetches rhai/3.0.0 again" in st.stdout, st
    js = json.loads(_cli(spool, None, db_url, "status", "--json").stdout)
    [failed] = js["failed"]
    assert failed["corrupt"] is True and failed["path"] == f"failed/{f.name}"

    again = _cli(spool, src, None, "extract", "--json")  # not --full: must not say unchanged
    assert again.returncode == 0, again
    doc = json.loads(again.stdout)
    assert (doc["spooled"], doc["unchanged"]) == (1, 0), again
    assert doc["files"] == [f.name]  # same content, same name: a second file of that name
    # the new copy does not take over the old copy's sidecar, not even through a load
    assert Spool(spool).failure(Spool(spool).files("ready")[0]) is None
    assert _cli(spool, None, db_url, "load").returncode == 0
    assert (spool / "failed" / (f.name + ".error.json")).read_bytes() == old_side
    assert not (spool / "loaded" / (f.name + ".error.json")).exists()
    assert _rows(db_url, "SELECT DISTINCT release FROM artifacts") == [("3.0.0",)]

    full = _cli(spool, src, None, "extract", "--full", "--json")
    assert full.returncode == 0 and json.loads(full.stdout)["spooled"] == 1, full
    ready = Spool(spool).files("ready")
    assert [g.name for g in ready] == [f.name] and Spool(spool).failure(ready[0]) is None
    assert (spool / "failed" / (f.name + ".error.json")).read_bytes() == old_side


@pytest.mark.parametrize(
    "name",
    ["evil\nname.parquet", "$(touch pwned).parquet", "caf\udcff.parquet", "it's; rm -rf x.parquet"],
)
def test_failed_file_names_are_shown_and_replay_commands_shell_quoted(
    tmp_path: Path, db_url: str, name: str
) -> None:
    spool = tmp_path / "spool"
    Spool(spool)
    raw = name.encode("utf-8", "surrogateescape")
    (spool / "ready").joinpath(raw.decode("utf-8", "surrogateescape")).write_bytes(b"junk")
    ld = _cli(spool, None, db_url, "load")
    assert ld.returncode == 1 and "Traceback" not in ld.stderr, ld
    st = _cli(spool, None, db_url, "status")
    assert st.returncode == 1 and "Traceback" not in st.stderr, st
    [replay] = [ln.split("replay: ", 1)[1] for ln in st.stdout.splitlines() if "replay: " in ln]
    assert "\n" not in replay
    # the command a user pastes gives bash back the exact bytes of the name

    argv = subprocess.run(
        ["bash", "-c", f"f() {{ printf '%s' \"$2\"; }}; {replay.replace('wheels-etl', 'f', 1)}"],
        capture_output=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert argv == raw, (replay, argv)
    assert not (tmp_path / "pwned").exists()
    js = json.loads(_cli(spool, None, db_url, "status", "--json").stdout)
    [failed] = js["failed"]
    assert failed["replay"] == replay and failed["path"] == "failed/" + name


def test_extract_failures_are_kept_and_shown_by_status(tmp_path: Path, db_url: str) -> None:
    src = write_source_tree(tmp_path / "src", {"rhai": ["3.0.0", "3.0.1"]})
    (src / "rhai" / "3.0.1" / "release.json").write_text('{"product": "rhai", "version": 7')
    spool = tmp_path / "spool"
    ex = _cli(spool, src, None, "extract")
    assert ex.returncode == 1, ex
    st = _cli(spool, None, db_url, "status")
    assert "extract of rhai/3.0.1 failed at " in st.stdout, st
    assert "url: " in st.stdout and "3.0.1/release.json" in st.stdout, st
    js = json.loads(_cli(spool, None, db_url, "status", "--json").stdout)
    assert js["schema"] == "wheels-etl/status/1"
    [product] = js["products"]
    [failure] = product["failures"]
    assert failure["release"] == "3.0.1" and failure["url"].endswith("3.0.1/release.json")
    assert failure["at"].endswith("Z") and "rhai/3.0.1" in failure["reason"]
    assert product["last_extracted_at"].endswith("Z")
    # fixed at the source: the next extract spools it and the failure is gone
    write_source_tree(tmp_path / "src", {"rhai": ["3.0.0", "3.0.1"]})
    assert _cli(spool, src, None, "extract").returncode == 0
    js = json.loads(_cli(spool, None, db_url, "status", "--json").stdout)
    assert js["products"][0]["failures"] == []


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (the tests run as root here: without it this fails, never skips)."""
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], capture_output=True
    )
    assert done.returncode == 0, f"cannot mount a tmpfs (need root): {done.stderr!r}"
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(where: Path) -> None:
    with (where / "filler").open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    assert subprocess.run(["df", "--output=avail", str(where)], capture_output=True,
                          text=True).stdout.split()[-1] == "0"  # fmt: skip


def test_disk_full_while_quarantining_exits_4_and_the_others_still_load(
    tmp_path: Path, full_disk: Path, db_url: str
) -> None:
    src = write_source_tree(tmp_path / "src", {"rhai": ["3.0.0", "3.0.1", "3.0.2"]})
    spool = full_disk / "spool"
    assert _cli(spool, src, None, "extract").returncode == 0
    bad = Spool(spool).files("ready")[0]
    path = spool / "ready" / bad.name
    path.write_bytes(path.read_bytes()[:300])
    _fill(full_disk)
    ld = _cli(spool, None, db_url, "load", "--workers", "2")
    assert ld.returncode == 4, ld
    assert "Traceback" not in ld.stderr, ld
    last = ld.stderr.strip().splitlines()[-1]
    assert last.startswith("wheels-etl load: ") and "no space left" in last, ld
    assert f"left in loading/{bad.name}, not moved to failed/" in ld.stderr, ld
    assert len(Spool(spool).files("loaded")) == 2  # the other files went on
    assert [f.name for f in Spool(spool).files("loading")] == [bad.name]
    assert [p.name for p in (spool / "loading").iterdir()] == [bad.name]  # no hidden temp
    assert _rows(db_url, "SELECT count(DISTINCT release) FROM artifacts") == [(2,)]
    (full_disk / "filler").unlink()  # space again: the next load quarantines it
    again = _cli(spool, None, db_url, "load")
    assert again.returncode == 1 and f"now in failed/{bad.name}" in again.stderr, again
    assert Spool(spool).failure(bad.name) is not None


def _documented(section: str) -> set[str]:
    """The field names of one table in docs/status-json.md."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "status-json.md").read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in body.splitlines():
        if line.startswith("| `"):
            names.update(n.strip(" `") for n in line.split("|")[1].split(","))
    return names


def test_status_json_has_exactly_the_documented_fields(tmp_path: Path, db_url: str) -> None:
    src = write_source_tree(tmp_path / "src", {"rhai": ["3.0.0", "3.0.1"]})
    (src / "rhai" / "3.0.1" / "release.json").write_text("{")
    spool = tmp_path / "spool"
    assert _cli(spool, src, None, "extract").returncode == 1
    [f] = Spool(spool).files("ready")
    (spool / "ready" / f.name).write_bytes(b"junk")
    assert _cli(spool, None, db_url, "load").returncode == 1
    doc = json.loads(_cli(spool, None, db_url, "status", "--json").stdout)
    assert set(doc) == _documented("Top level")
    assert set(doc["states"]["ready"]) == _documented("State counts")
    assert set(doc["failed"][0]) == _documented("Failed file")
    assert set(doc["products"][0]) == _documented("Product")
    assert set(doc["products"][0]["failures"][0]) == _documented("Extract failure")
    assert set(doc["database"]) == _documented("Database")


def test_extract_failures_and_long_names_live_in_an_s3_spool(
    tmp_path: Path, s3_spool: str, db_url: str
) -> None:
    src = write_source_tree(tmp_path / "src", {PRODUCT: [RELEASE, "2.0"]})
    (src / PRODUCT / "2.0" / "release.json").write_text("{")
    env = cli_env(spool=s3_spool, source=src, database_url=db_url)
    ex = run_cli("extract", env=env)
    assert ex.returncode == 1, ex
    again = run_cli("extract", "--json", env=env)
    assert json.loads(again.stdout)["unchanged"] == 1, again  # memory of the long release
    assert run_cli("load", env=env).returncode == 0
    st = run_cli("status", "--json", env=env)
    assert st.returncode == 0, st
    [product] = json.loads(st.stdout)["products"]
    assert product["product"] == PRODUCT
    assert [f["release"] for f in product["failures"]] == ["2.0"]
    refused = run_cli("inspect", "--sql", "COPY (select 1) TO 'x.csv'", env=env, cwd=tmp_path)
    assert refused.returncode == 2 and not (tmp_path / "x.csv").exists(), refused
    rows = run_cli("inspect", "--json", "--sql", "select release from artifacts limit 1", env=env)
    assert json.loads(rows.stdout) == [{"release": RELEASE}], rows


def test_an_unreadable_error_sidecar_is_said_unreadable_and_kept(
    tmp_path: Path, db_url: str
) -> None:
    """A junk ``.error.json`` beside a failed file was reported by status as "no error
    sidecar" (attempts: 0): it is there, and unreadable; status and inspect leave it as it
    is, and the next failure of the file says its earlier attempts are unknown."""
    spool = tmp_path / "spool"
    Spool(spool)
    name = "p~1.0~20250101T000000Z~0123456789abcdef.parquet"
    (spool / "ready" / name).write_bytes(b"not parquet")
    assert _cli(spool, None, db_url, "load").returncode == 1
    side = spool / "failed" / (name + ".error.json")
    side.write_bytes(b"{not json")
    st = _cli(spool, None, db_url, "status")
    assert st.returncode == 1 and "Traceback" not in st.stderr, st
    [line] = [ln for ln in st.stdout.splitlines() if f"failed/{name}" in ln]
    assert "unreadable" in line and "no error sidecar" not in line, st.stdout
    [failed] = json.loads(_cli(spool, None, db_url, "status", "--json").stdout)["failed"]
    assert "unreadable" in failed["reason"], failed
    ins = _cli(spool, None, db_url, "inspect", "--state", "failed")
    assert "Traceback" not in ins.stderr, ins
    assert side.read_bytes() == b"{not json" and (spool / "failed" / name).exists()
    again = _cli(spool, None, db_url, "replay", name)
    assert again.returncode == 1, again
    attempts = json.loads(side.read_text())["attempts"]
    assert attempts[0]["error_class"] == "UnreadableSidecar", attempts
    assert "unreadable" in attempts[0]["message"] and len(attempts) == 2, attempts
