"""Secrets and TLS, end to end through the CLI, against a real HTTPS server and Postgres.

* The token (``ETL_SOURCE_TOKEN``) reaches the source's own origin and nowhere else: not
  the logs of ``-v`` runs, not error lines, not a byte of any spool file (the state/ records
  included; Parquet files also decoded, since they are compressed), not a row of
  any table after ``wheels-etl load``.
* TLS is verified by default: a self-signed server is refused with a clear TLS error, and
  accepted with ``--ca-bundle`` or ``ETL_CA_BUNDLE`` naming its certificate.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest
from psycopg import sql

from tests.support.cli import run_cli
from tests.support.env import child_env
from tests.support.httpserver import Fault, SourceServer
from tests.support.sourcetree import write_source_tree
from tests.support.tls import TlsFiles

REPO = Path(__file__).resolve().parents[2]
TOKEN = "etl-SeCrEt-4b1d9c0e77f2"
VERSIONS = ["2.0.0", "2.0.1", "2.0.2"]


def no_token(text: str, where: str) -> None:
    assert TOKEN not in text, f"token leaked into {where}"


def test_token_never_lands_in_logs_errors_spool_or_database(
    tmp_path: Path, tls_cert: TlsFiles, db_url: str
) -> None:
    tree = write_source_tree(tmp_path / "src", {"rhai": VERSIONS})
    spool_dir = tmp_path / "spool"
    env = child_env(ETL_SOURCE_TOKEN=TOKEN, ETL_CA_BUNDLE=tls_cert.ca_bundle)
    with SourceServer(tree, tls=tls_cert.server) as server, SourceServer(tree) as other:
        # something of everything that writes a log or an error line
        server.script("/rhai/2.0.0/x86_64/cpu/graph.json", [Fault.status(503)])  # retry log
        server.always("/rhai/2.0.1/release.json", Fault.status(403))  # a failed release
        server.always(  # a redirect to another origin
            "/rhai/2.0.2/aarch64/cpu/wheels.json",
            Fault.redirect(other.link("rhai/2.0.2/aarch64/cpu/wheels.json")),
        )
        # -vv: our logs and the HTTP library's debug lines (request URLs as sent)
        out = run_cli("-vv", "extract", "--source", server.url, "--spool", str(spool_dir), env=env)
        assert out.returncode == 1, out.stderr  # 2.0.1 failed
        assert "release rhai/2.0.1 failed" in out.stderr and "HTTP 403" in out.stderr
        assert "retry" in out.stderr and "DEBUG" in out.stderr  # -vv really logged
        assert "urllib3" in out.stderr
        # the token was used, on the source's origin only
        assert {r.header("authorization") for r in server.requests} == {f"Bearer {TOKEN}"}
        assert other.requests and all(r.header("authorization") is None for r in other.requests)
    no_token(out.stdout, "extract stdout")
    no_token(out.stderr, "extract -v logs")

    loaded = run_cli("-v", "load", "--spool", str(spool_dir), "--database-url", db_url, env=env)
    assert loaded.returncode == 0, loaded.stderr
    status = run_cli("-v", "status", "--spool", str(spool_dir), "--database-url", db_url, env=env)
    for name, proc in (("load", loaded), ("status", status)):
        no_token(proc.stdout + proc.stderr, f"{name} output")

    # every byte of every spool file (compressed Parquet decoded as well)
    files = [p for p in spool_dir.rglob("*") if p.is_file()]
    assert any(p.parent.name == "state" for p in files)  # the incremental memory
    parquet = [p for p in files if p.suffix == ".parquet"]
    assert len(parquet) == 2
    for path in files:
        assert TOKEN.encode() not in path.read_bytes(), f"token in {path}"
    for path in parquet:
        f = pq.ParquetFile(path)
        meta = f.schema_arrow.metadata or {}
        decoded = repr(meta) + repr(f.read().to_pylist())
        assert "rhai" in decoded and "2.0." in decoded  # the search does see the content
        no_token(decoded, str(path))

    # every row of every table, every column, as text
    with psycopg.connect(db_url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            )
        ]
        assert {"releases", "artifacts", "drops", "spool_files"} <= set(tables)
        for table in tables:
            query = sql.SQL("SELECT count(*) FROM {} AS t WHERE t::text LIKE %s")
            hits = conn.execute(query.format(sql.Identifier(table)), (f"%{TOKEN}%",)).fetchone()
            assert hits == (0,), f"token in table {table}"
            for needle in ("%Bearer%", "%" + TOKEN[:12] + "%"):
                hits = conn.execute(query.format(sql.Identifier(table)), (needle,)).fetchone()
                assert hits == (0,), f"{needle} in table {table}"
        # the search itself works: the loaded data is there, source URLs included
        found = conn.execute(
            "SELECT count(*) FROM artifacts AS t WHERE t::text LIKE %s", ("%stevedore%",)
        ).fetchone()
        assert found is not None and found[0] > 0


def test_tls_is_verified_by_default(tmp_path: Path, tls_cert: TlsFiles) -> None:
    tree = write_source_tree(tmp_path / "src", {"rhai": VERSIONS})
    with SourceServer(tree, tls=tls_cert.server) as server:
        refused = run_cli("extract", "--source", server.url, "--spool", str(tmp_path / "a"))
        assert refused.returncode != 0
        assert "TLS error" in refused.stderr, refused.stderr
        assert "certificate verify failed" in refused.stderr
        assert server.link("index.json") in refused.stderr
        assert not list((tmp_path / "a" / "ready").iterdir())

        flag = run_cli(
            "extract", "--source", server.url, "--spool", str(tmp_path / "b"),
            "--ca-bundle", str(tls_cert.ca_bundle),
        )  # fmt: skip
        assert flag.returncode == 0, flag.stderr
        assert "3 spooled" in flag.stdout

        env = run_cli(
            "extract", "--source", server.url, "--spool", str(tmp_path / "c"),
            env=child_env(ETL_CA_BUNDLE=tls_cert.ca_bundle),
        )  # fmt: skip
        assert env.returncode == 0, env.stderr
        assert len(list((tmp_path / "c" / "ready").iterdir())) == 3


def test_a_missing_ca_bundle_is_a_configuration_error(tmp_path: Path) -> None:
    out = run_cli(
        "extract", "--source", "https://127.0.0.1:9/", "--spool", str(tmp_path / "s"),
        "--ca-bundle", str(tmp_path / "nope.pem"),
    )  # fmt: skip
    assert out.returncode == 2
    assert "CA bundle not found" in out.stderr


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_insecure_turns_verification_off(tmp_path: Path, tls_cert: TlsFiles) -> None:
    tree = write_source_tree(tmp_path / "src", {"rhai": VERSIONS[:1]})
    with SourceServer(tree, tls=tls_cert.server) as server:
        out = run_cli(
            "extract", "--source", server.url, "--spool", str(tmp_path / "s"), "--insecure"
        )
    assert out.returncode == 0, out.stderr
    assert "1 spooled" in out.stdout
    # said once (issue 10 item 11), not once per request (this run made 10 requests)
    assert out.stderr.count("verification is off (--insecure)") == 1, out.stderr
    assert "InsecureRequestWarning" not in out.stderr and "Unverified HTTPS" not in out.stderr
