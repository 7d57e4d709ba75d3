"""Issue 10 items 6, 7, 8, 11 and issue 9's extract failures, through the real CLI against
real files and real Postgres: protocol-maximum identifiers work end to end; a release whose
file failed as corrupt is fetched again; two files with one name never share a sidecar;
messages name where a file is now and replay commands are shell-quoted; extract failures
are kept in the spool and shown by ``status``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg

from etl.spool import Spool
from etl.spoolformat import SpoolName
from tests.support.cli import CliResult, cli_env, run_cli
from tests.support.sourcetree import write_source_tree

PRODUCT = "p" + "r" * 126 + "X"  # 128 characters: the protocol's maximum
RELEASE = "1." + "0" * 125 + "a"


def _cli(spool: Path, src: Path | None, db: str | None, *args: str) -> CliResult:
    return run_cli(*args, env=cli_env(spool=spool, source=src, database_url=db))


def _rows(db: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db) as conn:
        return conn.execute(query).fetchall()


def _all_names(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*")]


def test_128_character_product_and_release_work_end_to_end(tmp_path: Path, db_url: str) -> None:
    src = write_source_tree(tmp_path / "src", {PRODUCT: [RELEASE]})
    spool = tmp_path / "spool"
    ex = _cli(spool, src, None, "extract", "--json")
    assert ex.returncode == 0, ex
    assert json.loads(ex.stdout)["spooled"] == 1
    [f] = Spool(spool).files("ready")
    assert all(len(n.encode()) < 200 for n in _all_names(spool)), _all_names(spool)
    assert SpoolName.parse(f.name).shortened and SpoolName.parse(f.name).matches(PRODUCT, RELEASE)
    meta = Spool(spool).read_meta(f)
    assert (meta.product, meta.release) == (PRODUCT, RELEASE)

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
    assert [g.name for g in Spool(spool).files("loaded")] == [f.name]
    q = run_cli("inspect", "--json", "--sql", "select product, release from files",
                env=cli_env(spool=spool))  # fmt: skip
    assert json.loads(q.stdout) == [{"product": PRODUCT, "release": RELEASE}], q
