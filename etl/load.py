"""Load: spool files into Postgres, one file per transaction, idempotently.

Per file, ONE transaction holding ``pg_advisory_xact_lock(RELEASE_LOCK_KEY,
hashtext('product/release'))`` (two files of one release never apply concurrently).  The
``releases`` row decides: none → apply; same ``content_sha256`` → *unchanged*; file older
by ``(updated_at, extracted_at)`` → *superseded* (neither touches data); else apply =
DELETE the release's drops and artifacts, upsert its ``releases`` row, binary COPY
artifacts then drops streaming one row group (artifact) at a time.  The ``spool_files``
ledger row is inserted or bumped whatever the outcome.  After COMMIT the file moves to
``loaded/``; a loader killed in between leaves an orphan in ``loading/`` that the next run
completes from the ledger without re-applying.

Postgres going away (SQLSTATE classes 08, 40, 53, 57, 58, lost connections) is a
:class:`TransientLoadError`: the file goes back to ``ready`` and the run reconnects with
backoff for up to ``retry_seconds``.  Anything else Postgres rejects, and any bad spool
file, fails that file only (``failed/`` + error sidecar) and the run goes on.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg

from etl import pgcopy, schema
from etl import spoolformat as fmt
from etl.crashpoint import crash_point
from etl.errors import ConfigError, FatalLoadError, LoadError, SpoolFileError, TransientLoadError
from etl.pgcopy import classify, connect
from etl.spool import Attempt, Claim, Spool, SpoolFile, SpoolName

Outcome = Literal["applied", "unchanged", "superseded", "recovered"]
Conn = psycopg.Connection[Any]

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
    and then leaves the claim to the caller (``retry()`` or ``fail(...)``).
    ``conn`` must be in autocommit mode (transactions are explicit).
    """
    return load_file(conn, claim, orphan=orphan).outcome


def load_file(conn: Conn, claim: Claim, *, orphan: bool = False) -> FileResult:
    key = SpoolName.parse(claim.name).release_key
    with claim.open() as src:
        try:
            meta = pgcopy.read_meta(claim.name, src)
            file_bytes = claim.size
        except SpoolFileError as exc:
            exc.release = exc.release or key
            raise
        try:
            if orphan and schema.in_ledger(conn, claim.name, meta.content_sha256):
                claim.complete()
                return FileResult("recovered")
            with conn.transaction():
                outcome, rows = _load_in_transaction(conn, claim.name, src, meta, file_bytes)
        except psycopg.Error as exc:
            raise classify(exc, conn, release=key, path=claim.name) from exc
        except SpoolFileError as exc:
            exc.release = exc.release or key
            raise
    crash_point("load-after-commit")
    claim.complete()
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


def _load_in_transaction(
    conn: Conn, name: str, src: fmt.Source, meta: fmt.FileMeta, file_bytes: int
) -> tuple[Outcome, int]:
    conn.execute(
        "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
        [schema.RELEASE_LOCK_KEY, SpoolName.key(meta.product, meta.release)],
    )
    outcome = decide(meta, schema.release_state(conn, meta.product, meta.release))
    rows = 0
    if outcome == "applied":
        schema.replace_release(conn, meta, name)
        crash_point("load-before-copy")
        with conn.cursor() as cur:
            pgcopy.register(cur)
            artifacts, drops = pgcopy.copy_release(
                cur, name, src, meta, between=lambda: crash_point("load-mid-copy")
            )
        if (artifacts, drops) != (meta.artifacts, meta.drops):
            raise SpoolFileError(
                f"file holds {artifacts} artifacts and {drops} drops, its metadata says "
                f"{meta.artifacts} and {meta.drops}",
                path=name,
            )
        rows = artifacts + drops
    schema.record_file(conn, meta, name, file_bytes, outcome)
    return outcome, rows


# --- errors --------------------------------------------------------------------------


def _failure(exc: Exception) -> Attempt:
    cause = exc.__cause__
    return Attempt(
        error_class=type(exc).__name__,
        db_error=type(cause).__name__ if isinstance(cause, psycopg.Error) else None,
        message=str(exc),
        sqlstate=getattr(exc, "sqlstate", None),
        release=getattr(exc, "release", None),
        command="load",
    )


def _migrate(conn: Conn, compression: str = "auto") -> int:
    try:
        return schema.migrate(conn, compression)
    except psycopg.Error as exc:
        raise classify(exc, conn, release="", path="") from exc


def migrate_db(conninfo: str, compression: str = "auto") -> int:
    """Create or upgrade the tables; returns the schema version now in place."""
    with connect(conninfo) as conn:
        return _migrate(conn, compression)


# --- the run -------------------------------------------------------------------------


class _Backoff:
    """Delays of 0.5, 1, 2 ... 10 s while an outage lasts less than ``budget`` seconds."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.reset()

    def reset(self) -> None:
        self.since: float | None = None
        self.attempt = 0

    def next_delay(self) -> float | None:
        """Seconds to wait before trying again, or None when the budget is spent."""
        now = time.monotonic()
        self.since = now if self.since is None else self.since
        left = self.budget - (now - self.since)
        if left <= 0:
            return None
        self.attempt += 1
        return min(0.5 * 2.0 ** (self.attempt - 1), 10.0, left)


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
        try:
            self.emit("start", name, "orphan from loading/" if orphan else "")
            result = load_file(conn, claim, orphan=orphan)
        except TransientLoadError as exc:
            claim.retry()
            with self.lock:
                if name not in self.report.requeued:
                    self.report.requeued.append(name)
            self.emit("requeued", name, str(exc))
            raise
        except (FatalLoadError, SpoolFileError) as exc:
            claim.fail(_failure(exc))
            with self.lock:
                self.report.failed.append((name, str(exc)))
                self._settled(name)
            self.emit("failed", name, str(exc))
            return
        finally:
            claim.close()  # no-op after a transition; leaves an orphan on anything unexpected
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

    def work(self) -> None:
        conn: Conn | None = None
        backoff = _Backoff(self.retry_seconds)
        try:
            while not self.stop.is_set():
                try:
                    if conn is None:
                        conn = self.open()
                    claim, orphan = self.next_claim()
                    if claim is None:
                        return
                    self.handle(conn, claim, orphan)
                    backoff.reset()
                except TransientLoadError as exc:
                    if conn is not None:
                        conn.close()
                        conn = None
                    delay = backoff.next_delay()
                    if delay is None:
                        self.give_up(exc)
                        return
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
    if workers < 1:
        raise ConfigError(f"load workers must be at least 1, got {workers}")
    run = _Run(spool, conninfo, retry_seconds, progress)
    run.orphans.extend(spool.adopt_orphans())
    run.total = len(run.orphans)
    threads = [threading.Thread(target=run.work, daemon=True) for _ in range(workers - 1)]
    try:
        for t in threads:
            t.start()
        run.work()  # this thread is a worker too
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


# --- one named file (for etl.workers: one load task per spool file) ----------------------


def load_named(spool: Spool, conninfo: str, name: str) -> FileResult | None:
    """Load ONE spool file, found in ``ready/`` (claimed) or left orphaned in ``loading/``
    (adopted: completed from the ledger when it was committed).  None when there is nothing
    to do: already loaded or failed, gone, or held by another loader right now.

    A transient error puts the file back in ``ready`` and is raised (retry later); a fatal
    one sends it to ``failed/`` with its error sidecar, exactly like :func:`load_spool`,
    and is raised too.
    """
    found = spool.find(name)
    if found is None or found.state not in ("ready", "loading"):
        return None
    orphan = found.state == "loading"
    claim = spool.adopt(found.name) if orphan else spool.claim(found)
    if claim is None:
        return None
    try:
        with connect(conninfo) as conn:
            _migrate(conn)
            return load_file(conn, claim, orphan=orphan)
    except TransientLoadError:
        claim.retry()
        raise
    except (FatalLoadError, SpoolFileError) as exc:
        claim.fail(_failure(exc))
        raise
    finally:
        claim.close()  # no-op after a transition; leaves an orphan on anything unexpected


def ledger_outcomes(conninfo: str, names: list[str]) -> dict[str, Outcome]:
    """The ledger's last outcome of each named file the database holds."""
    with connect(conninfo) as conn:
        try:
            rows = conn.execute(
                "SELECT file_name, outcome FROM spool_files WHERE file_name = ANY(%s)", [names]
            ).fetchall()
        except psycopg.errors.UndefinedTable:
            return {}
        except psycopg.Error as exc:
            raise classify(exc, conn, release="", path="") from exc
    return {name: outcome for name, outcome in rows}
