"""The ``releases`` row that decides whether a spool file applies (caller's transaction)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from etl.db.ledger import Outcome
from etl.spooling.format import FileMeta

Conn = psycopg.Connection[Any]

#: First key of ``pg_advisory_xact_lock(int, int)`` per release (second: hashtext of it).
RELEASE_LOCK_KEY = 0x77686C72  # "whlr"

_EPOCH = datetime.min.replace(tzinfo=UTC)


def lock_release(conn: Conn, release_key: str) -> None:
    """Serialise every loader on this release until the transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [RELEASE_LOCK_KEY, release_key])


_STATE = (
    "SELECT content_sha256, updated_at, extracted_at FROM releases"
    " WHERE product = %s AND release = %s"
)


def release_state(conn: Conn, product: str, release: str) -> tuple[Any, ...] | None:
    """``(content_sha256, updated_at, extracted_at)`` of a loaded release, or None."""
    return conn.execute(_STATE, [product, release]).fetchone()


def lock_and_read(conn: Conn, release_key: str, product: str, release: str) -> psycopg.Cursor[Any]:
    """:func:`lock_release`, then :func:`release_state`'s query, for the caller's pipeline
    (one round trip with what the caller queued before, e.g. its BEGIN); the returned
    cursor's ``fetchone()`` is :func:`release_state`'s answer.

    Still two statements, run in that order: the row is read with a snapshot taken once
    the lock is held, so a loader that waited for the lock sees what the holder committed.
    """
    lock_release(conn, release_key)
    return conn.execute(_STATE, [product, release])


def decide(meta: FileMeta, current: tuple[Any, ...] | None) -> Outcome:
    """Apply, or not, given the ``releases`` row (content_sha256, updated_at, extracted_at)."""
    if current is None:
        return "applied"
    sha, updated_at, extracted_at = current
    if sha == meta.content_sha256:
        return "unchanged"
    if (meta.updated_at, meta.extracted_at) < (updated_at, extracted_at or _EPOCH):
        return "superseded"
    return "applied"


def replace_release(conn: Conn, meta: FileMeta, file_name: str) -> None:
    """Delete the release's drops, artifacts and build origins and upsert its
    ``releases`` row.

    One statement (one round trip): the DELETEs are data-modifying CTEs of the upsert.
    """
    conn.execute(
        """WITH gone_origins AS (
               DELETE FROM build_origins WHERE product = %(product)s AND release = %(release)s),
           gone_drops AS (
               DELETE FROM drops WHERE product = %(product)s AND release = %(release)s),
           gone_artifacts AS (
               DELETE FROM artifacts WHERE product = %(product)s AND release = %(release)s)
           INSERT INTO releases (product, release, updated_at, extracted_at, content_sha256,
               spool_file, source_url, artifact_count, drop_count, loaded_at)
           VALUES (%(product)s, %(release)s, %(updated_at)s, %(extracted_at)s, %(sha)s,
               %(file)s, %(source_url)s, %(artifacts)s, %(drops)s, now())
           ON CONFLICT (product, release) DO UPDATE SET
               updated_at = EXCLUDED.updated_at, extracted_at = EXCLUDED.extracted_at,
               content_sha256 = EXCLUDED.content_sha256, spool_file = EXCLUDED.spool_file,
               source_url = EXCLUDED.source_url, artifact_count = EXCLUDED.artifact_count,
               drop_count = EXCLUDED.drop_count, loaded_at = now()""",
        {"product": meta.product, "release": meta.release, "updated_at": meta.updated_at,
         "extracted_at": meta.extracted_at, "sha": meta.content_sha256, "file": file_name,
         "source_url": meta.source_url, "artifacts": meta.artifacts, "drops": meta.drops},
    )  # fmt: skip
