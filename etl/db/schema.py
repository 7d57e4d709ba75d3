"""The database tables, as an ordered list of versioned migrations.

:func:`migrate` runs in the caller's transaction (``etl.load`` opens it) and first takes
``pg_advisory_xact_lock(MIGRATION_LOCK_KEY)``: two processes migrating at once simply run
one after the other, and the second finds nothing left to do.  Each migration is applied
only if its version is newer than the highest one recorded in ``wheels_etl_schema``.

The three JSON columns of ``artifacts`` use ``COMPRESSION lz4`` when the server has it
(PostgreSQL >= 14 built ``--with-lz4``): about half the server CPU of the default pglz
for our documents.  Servers without lz4 (the embedded PostgreSQL wheels) keep pglz.  The
choice is recorded in ``wheels_etl_schema.compression`` and kept on later runs unless a
compression is asked for explicitly.
"""

from __future__ import annotations

from typing import Any, Literal

import psycopg
from psycopg import sql

from etl.db import domain
from etl.errors import ConfigError, LoadError
from etl.spooling.format import JSON_COLUMNS

#: ``pg_advisory_xact_lock(bigint)`` key of wheels-etl migrations ("wheelmig" in ASCII).
MIGRATION_LOCK_KEY = 0x776865656C6D6967

Compression = Literal["pglz", "lz4"]

_SCHEMA_TABLE = """
CREATE TABLE IF NOT EXISTS wheels_etl_schema (
    version int PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now(),
    description text NOT NULL DEFAULT '',
    compression text
)"""

#: (version, description, statements), in order.  Never edit an entry once released:
#: append a new one.
MIGRATIONS: list[tuple[int, str, tuple[str, ...]]] = [
    (
        1,
        "releases, artifacts, drops, spool_files ledger",
        (
            """CREATE TABLE releases (
                product text NOT NULL,
                release text NOT NULL,
                updated_at timestamptz NOT NULL,
                extracted_at timestamptz,
                content_sha256 text,
                spool_file text,
                source_url text,
                artifact_count int,
                drop_count int,
                loaded_at timestamptz,
                PRIMARY KEY (product, release)
            )""",
            """CREATE TABLE artifacts (
                product text NOT NULL,
                release text NOT NULL,
                architecture text NOT NULL,
                variant text NOT NULL,
                build_id text,
                built_at timestamptz,
                dependency_graph jsonb,
                constraints_file jsonb,
                build_sequence_summary jsonb,
                drop_count int NOT NULL DEFAULT 0,
                PRIMARY KEY (product, release, architecture, variant),
                FOREIGN KEY (product, release) REFERENCES releases ON DELETE CASCADE
            )""",
            """CREATE TABLE drops (
                product text NOT NULL,
                release text NOT NULL,
                architecture text NOT NULL,
                variant text NOT NULL,
                filename text NOT NULL,
                name text NOT NULL,
                version text NOT NULL,
                build_tag text,
                python_tag text NOT NULL,
                abi_tag text NOT NULL,
                platform_tag text NOT NULL,
                sha256 text NOT NULL,
                size bigint NOT NULL,
                uploaded_at timestamptz,
                PRIMARY KEY (product, release, architecture, variant, filename),
                FOREIGN KEY (product, release, architecture, variant)
                    REFERENCES artifacts ON DELETE CASCADE
            )""",
            "CREATE INDEX drops_name_version_idx ON drops (name, version)",
            "CREATE INDEX drops_sha256_idx ON drops (sha256)",
            "CREATE INDEX releases_updated_at_idx ON releases (updated_at)",
            """CREATE TABLE spool_files (
                file_name text PRIMARY KEY,
                content_sha256 text NOT NULL,
                product text NOT NULL,
                release text NOT NULL,
                updated_at timestamptz NOT NULL,
                extracted_at timestamptz,
                artifact_count int,
                drop_count int,
                json_bytes bigint,
                file_bytes bigint,
                outcome text NOT NULL
                    CHECK (outcome IN ('applied', 'unchanged', 'superseded')),
                first_loaded_at timestamptz NOT NULL DEFAULT now(),
                last_loaded_at timestamptz NOT NULL DEFAULT now(),
                load_count int NOT NULL DEFAULT 1
            )""",
            "CREATE INDEX spool_files_sha_idx ON spool_files (content_sha256)",
            "CREATE INDEX spool_files_release_idx ON spool_files (product, release)",
        ),
    ),
    (
        2,
        "load_attempts history; per-file timing and last outcome in spool_files",
        (
            # ``outcome`` keeps what applied the data; ``last_outcome`` is the latest load.
            "ALTER TABLE spool_files ADD COLUMN last_outcome text",
            "UPDATE spool_files SET last_outcome = outcome",
            "ALTER TABLE spool_files ADD COLUMN seconds double precision",
            """CREATE TABLE load_attempts (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                file_name text NOT NULL,
                content_sha256 text,
                product text,
                release text,
                outcome text NOT NULL CHECK (outcome IN
                    ('applied', 'unchanged', 'superseded', 'recovered', 'failed')),
                started_at timestamptz NOT NULL,
                seconds double precision NOT NULL,
                rows bigint NOT NULL DEFAULT 0,
                file_bytes bigint,
                json_bytes bigint,
                error text,
                sqlstate text
            )""",
            "CREATE INDEX load_attempts_file_idx ON load_attempts (file_name, started_at)",
        ),
    ),
    (
        3,
        "drops: yanked, yanked_reason, requires_python (PEP 691, when the source gives them)",
        (
            "ALTER TABLE drops ADD COLUMN yanked boolean",
            "ALTER TABLE drops ADD COLUMN yanked_reason text",
            "ALTER TABLE drops ADD COLUMN requires_python text",
        ),
    ),
    (
        4,
        "domain: build_origins (filled), graph_edges, constraint_lines, drop_origins views",
        domain.MIGRATION,
    ),
    (
        5,
        "artifacts: requirements (a GitLab tarball's release/inputs/requirements.txt)",
        # the same JSON array as constraints_file; null when the source has none
        ("ALTER TABLE artifacts ADD COLUMN IF NOT EXISTS requirements jsonb",),
    ),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]
#: The version that added the domain tables and views the answers read (etl.db.domain).
DOMAIN_VERSION = next(v for v, _, statements in MIGRATIONS if statements is domain.MIGRATION)


#: What is in place, read in the migration's first round trip: the version, the recorded
#: compression, whether the server has lz4 (:func:`schema_version`,
#: :func:`recorded_compression`, :func:`lz4_supported` in one statement).
_IN_PLACE = """SELECT (SELECT coalesce(max(version), 0) FROM wheels_etl_schema),
    (SELECT compression FROM wheels_etl_schema ORDER BY version DESC LIMIT 1),
    coalesce((SELECT 'lz4' = ANY(enumvals) FROM pg_settings
              WHERE name = 'default_toast_compression'), false)"""

#: :func:`column_compression` on PostgreSQL >= 14, no row before ``artifacts`` exists.
_COLUMNS = """SELECT attname, attcompression::text FROM pg_attribute
    WHERE attrelid = to_regclass('artifacts') AND attname = ANY(%s)"""
_CODES = {"l": "lz4", "p": "pglz"}


def lz4_supported(conn: psycopg.Connection[Any]) -> bool:
    """True when the server accepts ``COMPRESSION lz4`` (PG >= 14 built with lz4)."""
    row = conn.execute(
        "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'"
    ).fetchone()
    return row is not None and "lz4" in (row[0] or [])


def choose_compression(requested: str, *, supported: bool, recorded: str | None) -> Compression:
    """Which compression the JSON columns should get.

    ``auto`` keeps what the database already records, else takes lz4 when the server has
    it and falls back to pglz when it has not.  An explicit ``lz4`` on a server without
    it is a configuration error; an explicit ``pglz`` is always possible.
    """
    if requested == "pglz":
        return "pglz"
    if requested == "lz4":
        if not supported:
            raise ConfigError("this PostgreSQL server is not built with lz4 compression")
        return "lz4"
    if requested != "auto":
        raise ConfigError(f"unknown compression {requested!r} (use auto, lz4 or pglz)")
    if recorded == "lz4" and supported:
        return "lz4"
    if recorded == "pglz":
        return "pglz"
    return "lz4" if supported else "pglz"


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """The version in place, 0 for a database wheels-etl has never touched (no writes)."""
    row = conn.execute("SELECT to_regclass('wheels_etl_schema') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    got = conn.execute("SELECT coalesce(max(version), 0) FROM wheels_etl_schema").fetchone()
    return int(got[0]) if got else 0


def recorded_compression(conn: psycopg.Connection[Any]) -> str | None:
    row = conn.execute(
        "SELECT compression FROM wheels_etl_schema ORDER BY version DESC LIMIT 1"
    ).fetchone()
    return None if row is None else row[0]


def column_compression(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """What the catalog says for each JSON column: ``lz4``, ``pglz`` or ``default``."""
    if conn.info.server_version < 140000:
        return dict.fromkeys(JSON_COLUMNS, "default")
    rows = conn.execute(_COLUMNS, [list(JSON_COLUMNS)]).fetchall()
    return {name: _CODES.get(code or "", "default") for name, code in rows}


def migrate(conn: psycopg.Connection[Any], compression: str = "auto") -> int:
    """Create or upgrade the tables; returns the schema version now in place.

    Must run inside the caller's transaction (it takes a transaction-scoped advisory lock,
    so concurrent callers are serialised and re-runs are no-ops); opens none itself.  On
    a database already in place it is one round trip (pipeline mode: the lock, the
    version table, then what is in place, each its own statement in that order) and
    writes nothing.
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.INTRANS:
        raise LoadError("schema.migrate must run inside a transaction (etl.load opens it)")
    pg14 = conn.info.server_version >= 140000
    with conn.pipeline():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATION_LOCK_KEY])
        conn.execute(_SCHEMA_TABLE)
        in_place = conn.execute(_IN_PLACE)
        columns = conn.execute(_COLUMNS, [list(JSON_COLUMNS)]) if pg14 else None
    row = in_place.fetchone()
    assert row is not None
    current, recorded, supported = int(row[0]), row[1], bool(row[2])
    now = {name: _CODES.get(code or "", "default") for name, code in columns or ()}
    if current > SCHEMA_VERSION:
        raise ConfigError(
            f"database schema version {current} is newer than this wheels-etl "
            f"({SCHEMA_VERSION}): upgrade wheels-etl"
        )
    for version, description, statements in MIGRATIONS:
        if version <= current:
            continue
        for statement in statements:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO wheels_etl_schema (version, description) VALUES (%s, %s)",
            [version, description],
        )
    if current < SCHEMA_VERSION:  # tables and version rows were just made: read them again
        recorded, now = recorded_compression(conn), column_compression(conn)
    _apply_compression(conn, compression, supported, recorded, now if pg14 else {})
    return SCHEMA_VERSION


def _apply_compression(
    conn: psycopg.Connection[Any],
    requested: str,
    supported: bool,
    recorded: str | None,
    columns: dict[str, str],
) -> None:
    """Give the JSON columns (``columns``: what the catalog says now, empty before
    PostgreSQL 14) the compression :func:`choose_compression` picks, and record it."""
    target = choose_compression(requested, supported=supported, recorded=recorded)
    for column, now in columns.items():
        # ``default`` means default_toast_compression, which may be either: be explicit.
        if now != target:
            conn.execute(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET COMPRESSION {}").format(
                    sql.Identifier("artifacts"),
                    sql.Identifier(column),
                    sql.SQL(target),  # one of two literals, checked above
                )
            )
    if recorded != target:  # the latest version's row (what recorded_compression reads)
        conn.execute(
            """UPDATE wheels_etl_schema SET compression = %s
               WHERE version = (SELECT max(version) FROM wheels_etl_schema)""",
            [target],
        )
