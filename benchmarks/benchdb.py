"""The benchmark databases: create (with the loader's schema) / reset / count / checksum / drop."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

TABLES = ("releases", "artifacts", "drops")


def db_url(server_url: str, dbname: str) -> str:
    params = conninfo_to_dict(server_url)
    params["dbname"] = dbname
    return make_conninfo("", **params)


def create_db(server_url: str, dbname: str, compression: str = "auto") -> str:
    """(Re)create ``dbname`` with the wheels-etl tables; returns its conninfo."""
    from etl.load import migrate_db

    drop_db(server_url, dbname)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = db_url(server_url, dbname)
    migrate_db(url, compression)
    return url


def drop_db(server_url: str, dbname: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )


def reset_tables(url: str, *, checkpoint: bool = True) -> None:
    """Empty every wheels-etl table (keeping the schema), then CHECKPOINT."""
    with psycopg.connect(url, autocommit=True) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'wheels_etl_schema'"
            ).fetchall()
        ]
        if names:
            conn.execute(
                sql.SQL("TRUNCATE {} CASCADE").format(
                    sql.SQL(", ").join(sql.Identifier(n) for n in names)
                )
            )
        if checkpoint:
            conn.execute("CHECKPOINT")


def _scalar(conn: psycopg.Connection[Any], query: sql.Composed) -> int:
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def table_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            t: _scalar(conn, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t)))
            for t in TABLES
        }


def json_checksum(url: str) -> str:
    """md5 over every stored JSON document (as jsonb text) and every drop, in key order."""
    with psycopg.connect(url) as conn:
        a = conn.execute(
            "SELECT md5(string_agg(md5(concat_ws('|', product, release, architecture, variant,"
            " dependency_graph::text, constraints_file::text, build_sequence_summary::text)),"
            " '' ORDER BY product, release, architecture, variant)) FROM artifacts"
        ).fetchone()
        d = conn.execute(
            "SELECT md5(string_agg(md5(concat_ws('|', product, release, architecture, variant,"
            " filename, name, version, build_tag, sha256, size::text, uploaded_at::text)),"
            " '' ORDER BY product, release, architecture, variant, filename)) FROM drops"
        ).fetchone()
    return f"{a[0] if a else None}/{d[0] if d else None}"


def server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"
