"""Incremental-extract memory, kept in the spool as ``state.sqlite`` (part of the spool).

Per release: the ``updated_at`` last spooled, the ``ETag``/``Last-Modified`` of its
``release.json``, and the file it went to.  Per product: when it was last extracted.
SQLite (stdlib) gives atomic, crash-safe updates and lets two extractors share the file;
spool file names carry ``updated_at`` too, so the memory survives losing this file except
for releases whose files were pruned.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from etl.spoolformat import format_ts, parse_ts

_DDL = """
CREATE TABLE IF NOT EXISTS releases (
    product TEXT NOT NULL, release TEXT NOT NULL, updated_at TEXT NOT NULL,
    etag TEXT, last_modified TEXT, file_name TEXT, extracted_at TEXT NOT NULL,
    PRIMARY KEY (product, release)
);
CREATE TABLE IF NOT EXISTS products (
    product TEXT PRIMARY KEY, last_extracted_at TEXT NOT NULL,
    releases_seen INTEGER, releases_failed INTEGER
);
"""


@dataclass(frozen=True)
class ReleaseState:
    updated_at: datetime
    etag: str | None
    last_modified: str | None
    file_name: str | None


class SpoolState:
    """Thread-safe handle on ``state.sqlite`` (one connection, serialised by a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        # Setting up (WAL mode, tables) needs an exclusive lock that SQLite's busy timeout
        # does not wait for: two extractors starting together are serialised by an flock.
        lock = os.open(path.with_name(path.name + ".lock"), os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._db = sqlite3.connect(
                path, timeout=30, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_DDL)
        finally:
            os.close(lock)  # drops the flock

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def release(self, product: str, release: str) -> ReleaseState | None:
        with self._lock:
            row = self._db.execute(
                "SELECT updated_at, etag, last_modified, file_name FROM releases"
                " WHERE product = ? AND release = ?",
                (product, release),
            ).fetchone()
        if row is None:
            return None
        return ReleaseState(parse_ts(row[0]), row[1], row[2], row[3])

    def remember(
        self,
        product: str,
        release: str,
        updated_at: datetime,
        *,
        etag: str | None,
        last_modified: str | None,
        file_name: str | None,
    ) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO releases VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (product, release) DO UPDATE SET updated_at = excluded.updated_at,"
                " etag = excluded.etag, last_modified = excluded.last_modified,"
                " file_name = excluded.file_name, extracted_at = excluded.extracted_at",
                (
                    product,
                    release,
                    format_ts(updated_at),
                    etag,
                    last_modified,
                    file_name,
                    format_ts(datetime.now(UTC)),
                ),
            )

    def product_done(self, product: str, seen: int, failed: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO products VALUES (?, ?, ?, ?) ON CONFLICT (product) DO UPDATE SET"
                " last_extracted_at = excluded.last_extracted_at,"
                " releases_seen = excluded.releases_seen,"
                " releases_failed = excluded.releases_failed",
                (product, format_ts(datetime.now(UTC)), seen, failed),
            )

    def products(self) -> list[tuple[str, str, int, int]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT product, last_extracted_at, releases_seen, releases_failed"
                " FROM products ORDER BY product"
            ).fetchall()
        return [(str(r[0]), str(r[1]), int(r[2] or 0), int(r[3] or 0)) for r in rows]
