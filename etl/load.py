"""Load: spool files into Postgres, one file per transaction, idempotently.

Per file, in ONE transaction holding ``pg_advisory_xact_lock(RELEASE_LOCK_KEY,
hashtext('product/release'))`` (so two files of one release never apply concurrently):

* the ``releases`` row decides: none → apply; same ``content_sha256`` → *unchanged*
  (no data touched); file older by ``(updated_at, extracted_at)`` → *superseded*
  (no data touched); otherwise apply;
* apply = DELETE the release's drops and artifacts, upsert its ``releases`` row, then
  binary COPY artifacts and drops, streaming the file one row group (artifact) at a time;
* the ``spool_files`` ledger row is inserted or bumped whatever the outcome.

Only after COMMIT does the file move to ``loaded/``.  A loader killed in between leaves an
orphan in ``loading/``; the next run completes it from the ledger without re-applying.

Errors: Postgres going away (connection lost, shutdown, too many clients: SQLSTATE
classes 08, 53, 57, 40) is a :class:`TransientLoadError`: the file goes back to ``ready``
and the run reconnects with backoff for up to ``retry_seconds``.  Anything else Postgres
rejects, and any bad spool file, is fatal for that file only: it goes to ``failed/`` with
an error sidecar and the run goes on.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import psycopg

from etl import pgcopy, schema
from etl import spoolformat as fmt
from etl.errors import FatalLoadError, LoadError, SpoolFileError, TransientLoadError
from etl.spool import Claim, Spool, SpoolFile, SpoolName, crash_point

Outcome = Literal["applied", "unchanged", "superseded", "recovered"]
Conn = psycopg.Connection[Any]

_TRANSIENT_CLASSES = ("08", "40", "53", "57", "58")
_FATAL_CONNECT = re.compile(
    r"does not exist|authentication failed|no password supplied|pg_hba\.conf|"
    r"permission denied|invalid (connection option|dsn|integer value|sslmode)",
    re.IGNORECASE,
)
_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass
class LoadEvent:
    """One step of a load run, for progress output (called from worker threads)."""

    kind: str  # start | applied | unchanged | superseded | recovered | failed | requeued | retry
    file: str = ""
    release: str = ""
    detail: str = ""
    rows: int = 0
    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0

    def __str__(self) -> str:
        text = f"{self.kind} {self.file or ''}".rstrip()
        if self.rows:
            text += f" ({self.rows} rows)"
        return f"{text}: {self.detail}" if self.detail else text


@dataclass
class LoadReport:
    applied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)
    requeued: list[str] = field(default_factory=list)  # back in ready after transient errors
    #: Orphans found committed in the ledger: moved to ``loaded`` without re-applying.
    recovered: list[str] = field(default_factory=list)
    rows: int = 0  # artifact + drop rows written (applied files)
    json_bytes: int = 0  # JSON bytes of applied files
    file_bytes: int = 0  # spool bytes of applied files
    #: Why the run stopped early (the database stayed unavailable), if it did.
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.requeued and self.error is None


@dataclass(frozen=True)
class FileResult:
    outcome: Outcome
    rows: int = 0
    json_bytes: int = 0
    file_bytes: int = 0


# --- one file ------------------------------------------------------------------------


def load_one(conn: Conn, claim: Claim, *, orphan: bool = False) -> Outcome:
    """Load one claimed file in one transaction; on success the file moves to ``loaded``.

    Raises :class:`TransientLoadError`, :class:`FatalLoadError` or :class:`SpoolFileError`
    and then leaves the claim to the caller (``finish("ready")`` or ``finish("failed")``).
    ``conn`` must be in autocommit mode (transactions are explicit).
    """
    return load_file(conn, claim, orphan=orphan).outcome


def load_file(conn: Conn, claim: Claim, *, orphan: bool = False) -> FileResult:
    parsed = SpoolName.parse(claim.name)
    key = parsed.release_key
    try:
        meta = fmt.read_meta(claim.path)
        _check_name(parsed, meta, claim.name)
        file_bytes = claim.path.stat().st_size
    except SpoolFileError as exc:
        exc.release = exc.release or key
        raise
    try:
        if orphan and _in_ledger(conn, claim.name, meta.content_sha256):
            claim.finish("loaded")
            return FileResult("recovered")
        with conn.transaction():
            outcome, rows = _load_in_transaction(conn, claim.path, meta, file_bytes)
    except psycopg.Error as exc:
        raise classify(exc, conn, release=key, path=claim.name) from exc
    except SpoolFileError as exc:
        exc.release = exc.release or key
        raise
    crash_point("load-after-commit")
    claim.finish("loaded")
    if outcome != "applied":
        return FileResult(outcome)
    return FileResult(outcome, rows, meta.json_bytes, file_bytes)


def decide(meta: fmt.FileMeta, current: tuple[Any, ...] | None) -> Outcome:
    """Apply, or not, given the ``releases`` row (content_sha256, updated_at, extracted_at)."""
    if current is None:
        return "applied"
    sha, updated_at, extracted_at = current
    if sha == meta.content_sha256:
        return "unchanged"
    if (meta.updated_at, meta.extracted_at) < (updated_at, extracted_at or _EPOCH):
        return "superseded"
    return "applied"


def _check_name(parsed: SpoolName, meta: fmt.FileMeta, name: str) -> None:
    if (meta.product, meta.release) != (parsed.product, parsed.release):
        raise SpoolFileError(
            f"file name says {parsed.release_key}, its metadata says "
            f"{meta.product}/{meta.release}",
            path=name,
        )
    if meta.updated_at != parsed.updated_at or not meta.content_sha256.startswith(
        parsed.short_hash
    ):
        raise SpoolFileError(
            f"file name (updated {fmt.format_ts(parsed.updated_at)}, hash {parsed.short_hash})"
            f" does not match its metadata (updated {fmt.format_ts(meta.updated_at)},"
            f" hash {meta.content_sha256[:16]})",
            path=name,
        )


def _in_ledger(conn: Conn, name: str, sha: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM spool_files WHERE file_name = %s AND content_sha256 = %s", [name, sha]
    ).fetchone()
    return row is not None


def _load_in_transaction(
    conn: Conn, path: Path, meta: fmt.FileMeta, file_bytes: int
) -> tuple[Outcome, int]:
    key = [meta.product, meta.release]
    conn.execute(
        "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
        [schema.RELEASE_LOCK_KEY, f"{meta.product}/{meta.release}"],
    )
    current = conn.execute(
        "SELECT content_sha256, updated_at, extracted_at FROM releases"
        " WHERE product = %s AND release = %s",
        key,
    ).fetchone()
    outcome = decide(meta, current)
    rows = _apply(conn, path, meta) if outcome == "applied" else 0
    conn.execute(
        """INSERT INTO spool_files AS s (file_name, content_sha256, product, release,
               updated_at, extracted_at, artifact_count, drop_count, json_bytes, file_bytes,
               outcome)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (file_name) DO UPDATE SET
               content_sha256 = EXCLUDED.content_sha256, extracted_at = EXCLUDED.extracted_at,
               artifact_count = EXCLUDED.artifact_count, drop_count = EXCLUDED.drop_count,
               json_bytes = EXCLUDED.json_bytes, file_bytes = EXCLUDED.file_bytes,
               outcome = EXCLUDED.outcome, last_loaded_at = now(),
               load_count = s.load_count + 1""",
        [
            path.name,
            meta.content_sha256,
            *key,
            meta.updated_at,
            meta.extracted_at,
            meta.artifacts,
            meta.drops,
            meta.json_bytes,
            file_bytes,
            outcome,
        ],
    )
    return outcome, rows


def _apply(conn: Conn, path: Path, meta: fmt.FileMeta) -> int:
    key = [meta.product, meta.release]
    conn.execute("DELETE FROM drops WHERE product = %s AND release = %s", key)
    conn.execute("DELETE FROM artifacts WHERE product = %s AND release = %s", key)
    conn.execute(
        """INSERT INTO releases AS r (product, release, updated_at, extracted_at,
               content_sha256, spool_file, source_url, artifact_count, drop_count, loaded_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now())
           ON CONFLICT (product, release) DO UPDATE SET
               updated_at = EXCLUDED.updated_at, extracted_at = EXCLUDED.extracted_at,
               content_sha256 = EXCLUDED.content_sha256, spool_file = EXCLUDED.spool_file,
               source_url = EXCLUDED.source_url, artifact_count = EXCLUDED.artifact_count,
               drop_count = EXCLUDED.drop_count, loaded_at = now()""",
        [
            *key,
            meta.updated_at,
            meta.extracted_at,
            meta.content_sha256,
            path.name,
            meta.source_url,
            meta.artifacts,
            meta.drops,
        ],
    )
    crash_point("load-before-copy")
    with conn.cursor() as cur:
        pgcopy.register(cur)
        artifacts = pgcopy.copy_table(cur, path, meta, "artifacts")
        crash_point("load-mid-copy")
        drops = pgcopy.copy_table(cur, path, meta, "drops")
    if (artifacts, drops) != (meta.artifacts, meta.drops):
        raise SpoolFileError(
            f"file holds {artifacts} artifacts and {drops} drops, its metadata says "
            f"{meta.artifacts} and {meta.drops}",
            path=path.name,
        )
    return artifacts + drops


# --- errors --------------------------------------------------------------------------


def classify(exc: psycopg.Error, conn: Conn | None, *, release: str, path: str) -> LoadError:
    """A psycopg error as Transient (Postgres went away) or Fatal (the content is bad)."""
    state = exc.sqlstate
    transient = (
        isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
        or (state is not None and state[:2] in _TRANSIENT_CLASSES)
        or (conn is not None and (conn.closed or conn.broken))
    )
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    message = f"{type(exc).__name__}: {lines[0]}"
    context = (getattr(exc.diag, "context", None) or "").splitlines()
    where = [c for c in context if c.startswith("COPY ")] or context[:1]
    if where:  # e.g. "COPY artifacts, line 3, column dependency_graph"
        message += f" ({where[0]})"
    cls = TransientLoadError if transient else FatalLoadError
    return cls(message, release=release, path=path, sqlstate=state)


def _failure(exc: Exception) -> dict[str, Any]:
    cause = exc.__cause__
    return {
        "error_class": type(exc).__name__,
        "db_error": type(cause).__name__ if isinstance(cause, psycopg.Error) else None,
        "message": str(exc),
        "sqlstate": getattr(exc, "sqlstate", None),
        "release": getattr(exc, "release", None),
        "at": datetime.now(UTC).isoformat(),
        "command": "load",
    }


def connect(conninfo: str) -> Conn:
    """An autocommit connection; unreachable server → Transient, bad settings → Fatal."""
    try:
        return psycopg.connect(conninfo, autocommit=True)
    except psycopg.Error as exc:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if isinstance(exc, psycopg.ProgrammingError) or _FATAL_CONNECT.search(str(exc)):
            raise FatalLoadError(f"cannot connect to the database: {text}") from exc
        raise TransientLoadError(f"database unavailable: {text}") from exc


def _migrate(conn: Conn) -> int:
    try:
        return schema.migrate(conn)
    except psycopg.Error as exc:
        raise classify(exc, conn, release="", path="") from exc


def migrate_db(conninfo: str, compression: str = "auto") -> int:
    """Create or upgrade the tables; returns the schema version now in place."""
    with connect(conninfo) as conn:
        try:
            return schema.migrate(conn, compression)
        except psycopg.Error as exc:
            raise classify(exc, conn, release="", path="") from exc


# --- the run -------------------------------------------------------------------------


class _Run:
    def __init__(
        self,
        spool: Spool,
        conninfo: str,
        retry_seconds: float,
        progress: Callable[[LoadEvent], None] | None,
    ) -> None:
        self.spool = spool
        self.conninfo = conninfo
        self.retry_seconds = retry_seconds
        self.progress = progress
        self.report = LoadReport()
        self.lock = threading.Lock()  # guards everything below, and claiming
        self.stop = threading.Event()
        self.orphans: deque[Claim] = deque()
        self.queue: deque[SpoolFile] = deque()
        self.seen: set[str] = set()
        self.done = self.total = self.bytes_done = 0
        self.crash: BaseException | None = None
        self.gave_up: LoadError | None = None

    def emit(self, kind: str, name: str = "", detail: str = "", rows: int = 0) -> None:
        if self.progress is None:
            return
        release = ""
        if name:
            with contextlib.suppress(SpoolFileError):
                release = SpoolName.parse(name).release_key
        with self.lock:
            done, total, nbytes = self.done, max(self.total, self.done), self.bytes_done
        self.progress(LoadEvent(kind, name, release, detail, rows, done, total, nbytes))

    def open(self) -> Conn:
        conn = connect(self.conninfo)
        try:
            _migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def next_claim(self) -> tuple[Claim | None, bool]:
        with self.lock:
            if self.orphans:
                return self.orphans.popleft(), True
            rescanned = False
            while not self.stop.is_set():
                while self.queue:
                    claim = self.spool.claim(self.queue.popleft())
                    if claim is not None:
                        return claim, False
                if rescanned:  # nothing claimable left: other loaders have the rest
                    break
                fresh = self.spool.files("ready")
                self.total += len({f.name for f in fresh} - self.seen)
                self.seen.update(f.name for f in fresh)
                self.queue.extend(fresh)
                rescanned = True
        return None, False

    def handle(self, conn: Conn, claim: Claim, orphan: bool) -> None:
        name = claim.name
        self.emit("start", name, "orphan from loading/" if orphan else "")
        try:
            result = load_file(conn, claim, orphan=orphan)
        except TransientLoadError as exc:
            claim.finish("ready")
            with self.lock:
                if name not in self.report.requeued:
                    self.report.requeued.append(name)
            self.emit("requeued", name, str(exc))
            raise
        except (FatalLoadError, SpoolFileError) as exc:
            claim.finish("failed", failure=_failure(exc))
            with self.lock:
                self.report.failed.append((name, str(exc)))
                self._settled(name)
            self.emit("failed", name, str(exc))
            return
        finally:
            claim.close()  # no-op after finish; leaves an orphan on anything unexpected
        with self.lock:
            r = self.report
            {
                "applied": r.applied,
                "unchanged": r.unchanged,
                "superseded": r.superseded,
                "recovered": r.recovered,
            }[result.outcome].append(name)
            r.rows += result.rows
            r.json_bytes += result.json_bytes
            r.file_bytes += result.file_bytes
            self.bytes_done += result.json_bytes
            self._settled(name)
        self.emit(result.outcome, name, rows=result.rows)

    def _settled(self, name: str) -> None:
        self.done += 1
        if name in self.report.requeued:
            self.report.requeued.remove(name)

    def work(self, conn: Conn | None) -> None:
        streak: float | None = None
        attempt = 0
        try:
            while not self.stop.is_set():
                try:
                    if conn is None:
                        conn = self.open()
                    claim, orphan = self.next_claim()
                    if claim is None:
                        return
                    self.handle(conn, claim, orphan)
                    streak, attempt = None, 0
                except TransientLoadError as exc:
                    if conn is not None:
                        conn.close()
                        conn = None
                    now = time.monotonic()
                    streak = now if streak is None else streak
                    left = self.retry_seconds - (now - streak)
                    if left <= 0:
                        self.give_up(exc)
                        return
                    delay = min(0.5 * 2**attempt, 10.0, left)
                    attempt += 1
                    self.emit("retry", detail=f"{exc}; retrying in {delay:.1f} s")
                    self.stop.wait(delay)
        except BaseException as exc:  # a bug or a fatal connect error: stop everyone
            with self.lock:
                self.crash = self.crash or exc
            self.stop.set()
        finally:
            if conn is not None:
                conn.close()

    def give_up(self, exc: LoadError) -> None:
        with self.lock:
            self.gave_up = self.gave_up or exc
            self.report.error = f"gave up after {self.retry_seconds:g} s: {exc}"
        self.stop.set()


def load_spool(
    spool: Spool,
    conninfo: str,
    *,
    workers: int = 1,
    retry_seconds: float = 60.0,
    progress: Callable[[LoadEvent], None] | None = None,
) -> LoadReport:
    """Load every ready file (and orphans left in ``loading/``); see the module docstring.

    Raises :class:`FatalLoadError` when the database cannot be used at all (bad settings),
    and :class:`TransientLoadError` when it stayed unreachable for ``retry_seconds`` before
    any file went back to ``ready``; otherwise returns the report (``ok`` is False if a
    file failed or the run stopped early).
    """
    run = _Run(spool, conninfo, retry_seconds, progress)
    first: Conn | None = None
    deadline = time.monotonic() + retry_seconds
    attempt = 0
    while first is None:  # connect + migrate once up front: bad settings raise right here
        try:
            first = run.open()
        except TransientLoadError as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            delay = min(0.5 * 2**attempt, 10.0, left)
            attempt += 1
            run.emit("retry", detail=f"{exc}; retrying in {delay:.1f} s")
            time.sleep(delay)
    run.orphans.extend(spool.adopt_orphans())
    run.total = len(run.orphans)
    threads = [
        threading.Thread(target=run.work, args=(first if i == 0 else None,), daemon=True)
        for i in range(max(1, workers))
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        while run.orphans:  # left untouched after a stop: still orphans for the next run
            run.orphans.popleft().close()
    if run.crash is not None:
        raise run.crash
    report = run.report
    if run.gave_up is not None and not report.requeued:
        raise TransientLoadError(
            f"{report.error} ({len(report.applied)} file(s) applied before that)"
        ) from run.gave_up
    return report


# --- ledger queries for `status` ---------------------------------------------------------


def ledger_summary(conninfo: str) -> dict[str, Any]:
    """Last loaded file and when, files by outcome, and table row counts (no writes)."""
    with connect(conninfo) as conn:
        try:
            return schema.ledger_summary(conn)
        except psycopg.Error as exc:
            raise classify(exc, conn, release="", path="") from exc


def ledger_names(conninfo: str) -> set[str]:
    """Every spool file name the database has loaded (empty before the first migrate)."""
    with connect(conninfo) as conn:
        try:
            return schema.ledger_names(conn)
        except psycopg.Error as exc:
            raise classify(exc, conn, release="", path="") from exc
