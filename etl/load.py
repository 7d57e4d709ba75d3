"""Load: spool files into Postgres, one file per transaction, idempotently.

This module is the only place that opens database transactions; the statements it runs
inside them live in :mod:`etl.db`.

Per file, ONE transaction holding the release's advisory lock (two files of one release
never apply concurrently). The ``releases`` row decides: none → apply; same
``content_sha256`` → *unchanged*; file older by ``(updated_at, extracted_at)`` →
*superseded* (neither touches data); else apply = DELETE the release's rows, upsert its
``releases`` row, COPY artifacts then drops one row group (artifact) at a time, then fill
``build_origins`` from the documents just copied (:mod:`etl.db.domain`). The ``spool_files``
ledger row is inserted or bumped and a ``load_attempts`` row appended whatever the
outcome. After COMMIT the file moves to ``loaded/``; a loader killed in between leaves an
orphan in ``loading/`` that the next run completes from the ledger without re-applying.

Postgres going away is a :class:`TransientLoadError`: the file goes back to ``ready`` and
the run reconnects with backoff for up to ``retry_seconds``.  Anything else Postgres
rejects, and any bad spool file, fails that file only (``failed/`` + error sidecar, and a
``failed`` row in ``load_attempts`` when the database is still there) and the run goes on.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import psycopg

from etl.backoff import Backoff
from etl.crashpoint import crash_point
from etl.db import copystream, domain, ledger, releases, schema
from etl.db.connect import Conn, classify, connect, statement_error
from etl.db.ledger import Attempt, Outcome
from etl.errors import (
    ConfigError,
    CorruptSpoolFileError,
    FatalLoadError,
    LoadError,
    SpoolError,
    SpoolFileError,
    SpoolFullError,
    TransientLoadError,
)
from etl.loadahead import Ahead, ReadAhead
from etl.loadevents import Clock, FileResult, LoadEvent, LoadEventKind, LoadReport
from etl.spool import Claim, FailedAttempt, Spool, SpoolName
from etl.spooling import format as fmt

__all__ = ["FileResult", "LoadEvent", "LoadReport", "Outcome", "load_file", "load_one"]
__all__ += ["load_spool", "migrate_db"]

log = logging.getLogger(__name__)


# --- one file ------------------------------------------------------------------------


def load_file(conn: Conn, claim: Claim) -> FileResult:
    """Load one claimed file in one transaction; on success the file moves to ``loaded``
    (an orphan, :attr:`Claim.orphan`, committed before its loader died is only recorded).

    Raises :class:`TransientLoadError`, :class:`FatalLoadError` or :class:`SpoolFileError`
    and then leaves the claim to the caller (back to ``ready``, or to ``failed``).
    ``conn`` must be in autocommit mode (transactions are explicit).
    """
    with ReadAhead.of(claim) as ahead:
        item = ahead.next()
        assert item is not None and item.claim is claim
        return load_ahead(conn, item)


def load_ahead(conn: Conn, ahead: Ahead) -> FileResult:
    """:func:`load_file` for a file the read-ahead claimed and is preparing."""
    try:
        return _load(conn, ahead)
    finally:
        ahead.discard()


def _load(conn: Conn, ahead: Ahead) -> FileResult:
    clock = Clock()
    claim = ahead.claim
    key = SpoolName.parse(claim.name).release_key
    meta: fmt.FileMeta | None = None
    try:
        try:
            meta = ahead.meta()
            if ahead.orphan and ledger.in_ledger(conn, claim.name, meta.content_sha256):
                ahead.discard()
                result = FileResult("recovered", seconds=clock.seconds())
                attempt = Attempt(claim.name, "recovered", clock.started_at, result.seconds, meta)
                with conn.transaction():
                    ledger.record_attempt(conn, attempt)
                ahead.complete()
                return result
            result = _apply(conn, ahead, key, meta, clock)
        except psycopg.Error as exc:
            raise classify(exc, conn, release=key, path=claim.name) from exc
    except (FatalLoadError, SpoolFileError) as exc:
        exc.release = exc.release or key
        _record_failed(conn, claim.name, meta, clock, exc)
        raise
    crash_point("load-after-commit")
    ahead.complete()
    return result


def _apply(conn: Conn, ahead: Ahead, key: str, meta: fmt.FileMeta, clock: Clock) -> FileResult:
    """Everything one file does, in one transaction (as ``with conn.transaction()``)."""
    name, file_bytes = ahead.name, ahead.claim.size
    with contextlib.ExitStack() as transaction:
        with conn.pipeline():  # BEGIN, lock, releases row: 3 statements, 1 round trip
            # not conn.transaction(): in pipeline mode it keeps the pipeline (no COPY)
            transaction.enter_context(psycopg.Transaction(conn))
            state = releases.lock_and_read(conn, key, meta.product, meta.release)
        outcome, rows = releases.decide(meta, state.fetchone()), 0
        if outcome == "applied":
            releases.replace_release(conn, meta, name)
            crash_point("load-before-copy")
            with conn.cursor() as cur:
                artifacts, drops = copystream.send(
                    cur, ahead.batches(), between=lambda: crash_point("load-mid-copy")
                )
            if (artifacts, drops) != (meta.artifacts, meta.drops):
                raise CorruptSpoolFileError(
                    f"file holds {artifacts} artifacts and {drops} drops, its metadata "
                    f"says {meta.artifacts} and {meta.drops}",
                    path=name,
                )
            rows = artifacts + drops
        else:
            ahead.verify()
        seconds = clock.seconds()
        attempt = Attempt(name, outcome, clock.started_at, seconds, meta, rows, file_bytes)
        with conn.pipeline():  # build_origins and the ledger row: 1 round trip
            if outcome == "applied":  # from the documents just copied
                domain.fill_release(conn, meta.product, meta.release)
            ledger.record_file(conn, meta, file_bytes, attempt)
    # The COMMIT (the stack's exit) is its own round trip, its answer read at once: queued
    # in the pipeline, a connection ended just after the server committed raised at the
    # pipeline's end, and the committed file was loaded again (as "unchanged").
    if outcome != "applied":
        return FileResult(outcome, seconds=seconds)
    return FileResult(outcome, rows, meta.json_bytes, file_bytes, seconds)


def _record_failed(
    conn: Conn, name: str, meta: fmt.FileMeta | None, clock: Clock, exc: LoadError | SpoolFileError
) -> None:
    """Append the failed attempt to ``load_attempts`` if the database is still there."""
    if conn.closed or conn.broken:
        return
    error, state = str(exc), exc.sqlstate
    attempt = Attempt(
        name, "failed", clock.started_at, clock.seconds(), meta, error=error, sqlstate=state
    )
    try:
        with conn.transaction():
            ledger.record_attempt(conn, attempt)
    except psycopg.Error as err:  # the failure itself is kept in the spool's sidecar
        log.warning("could not record the failed attempt of %s: %s", name, err)


def _failure(exc: LoadError | SpoolFileError) -> FailedAttempt:
    """The attempt the spool keeps in the failed file's sidecar."""
    cause = exc.__cause__
    if not isinstance(cause, psycopg.Error):
        return FailedAttempt.of(exc, None)
    return FailedAttempt.of(exc, type(statement_error(cause)).__name__)


def load_one(spool: Spool, conninfo: str, name: str) -> FileResult | None:
    """Load ONE named file (a worker's task), claimed by :meth:`Spool.claim`; None when
    there is nothing to do (loaded, failed, gone, or held by another claimant).  A transient
    error puts the file back in ``ready``, a fatal one sends it to ``failed`` with its
    sidecar (as :func:`load_spool` does); both are raised."""
    claim = spool.claim(name)
    if claim is None:
        return None
    try:
        with connect(conninfo) as conn:
            _migrate(conn)
            return load_file(conn, claim)
    except TransientLoadError:
        claim.retry()
        raise
    except (FatalLoadError, SpoolFileError) as exc:
        claim.fail(_failure(exc))
        raise
    finally:
        claim.close()  # no-op after a transition; leaves an orphan on anything unexpected


# --- schema, for `migrate` ----------------------------------------------------------


def _migrate(conn: Conn, compression: str = "auto") -> int:
    try:
        with conn.transaction():
            return schema.migrate(conn, compression)
    except psycopg.Error as exc:
        raise classify(exc, conn, release="", path="") from exc


def migrate_db(conninfo: str, compression: str = "auto") -> int:
    """Create or upgrade the tables; returns the schema version now in place."""
    with connect(conninfo) as conn:
        return _migrate(conn, compression)


# --- the run -------------------------------------------------------------------------


class _LoadRun:
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
        self.lock = threading.Lock()  # guards everything below
        self.stop = threading.Event()
        self.done = self.total = self.bytes_done = self.claimed = 0
        self.crash: BaseException | None = None
        self.gave_up: LoadError | None = None

    def emit(
        self, kind: LoadEventKind, name: str = "", detail: str = "", rows: int = 0,
        seconds: float = 0.0,
    ) -> None:  # fmt: skip
        if self.progress is None:
            return
        release = ""
        if name:
            with contextlib.suppress(SpoolFileError):
                release = SpoolName.parse(name).release_key
        with self.lock:
            done, total, nbytes = self.done, max(self.total, self.done), self.bytes_done
        event = LoadEvent(kind, name, release, detail, rows, done, total, nbytes, seconds)
        self.progress(event)

    def open(self) -> Conn:
        conn = connect(self.conninfo)
        try:
            _migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def next_claim(self) -> Claim | None:
        """The spool's next claim (:meth:`Spool.claim_next`), counted for the progress."""
        if self.stop.is_set():
            return None
        claim = self.spool.claim_next()
        with self.lock:
            self.claimed += claim is not None
            self.total = max(self.total, self.claimed + self.spool.backlog())
        return claim

    def handle(self, conn: Conn, ahead: Ahead) -> None:
        claim, name = ahead.claim, ahead.name
        try:
            self.emit("start", name, "orphan from loading/" if ahead.orphan else "")
            result = load_ahead(conn, ahead)
        except TransientLoadError as exc:
            claim.retry()
            with self.lock:
                if name not in self.report.requeued:
                    self.report.requeued.append(name)
            self.emit("requeued", name, str(exc))
            raise
        except (FatalLoadError, SpoolFileError) as exc:
            where = f"now in failed/{name}"
            try:
                claim.fail(_failure(exc))
            except SpoolError as err:  # e.g. a full spool disk: the others go on
                where = f"left in loading/{name}, not moved to failed/: {err}"
                with self.lock:
                    if isinstance(err, SpoolFullError):
                        self.report.spool_full = str(err)
            with self.lock:
                self.report.failed.append((name, f"{where}: {exc}"))
                self._settled(name)
            self.emit("failed", name, f"{where}: {exc}")
            return
        except BaseException:  # handed to the read-ahead to complete when it went well
            claim.close()  # leaves an orphan on anything unexpected
            raise
        with self.lock:
            r = self.report
            r.outcomes(result.outcome).append(name)
            r.seconds[name] = result.seconds
            r.rows += result.rows
            r.json_bytes += result.json_bytes
            r.file_bytes += result.file_bytes
            self.bytes_done += result.json_bytes
            self._settled(name)
        self.emit(result.outcome, name, rows=result.rows, seconds=result.seconds)

    def _settled(self, name: str) -> None:
        self.done += 1
        if name in self.report.requeued:
            self.report.requeued.remove(name)

    def work(self) -> None:
        conn: Conn | None = None
        backoff = Backoff(base=0.5, cap=10.0, budget=self.retry_seconds, clamp=True)
        rescan = False
        try:
            with ReadAhead(self.next_claim) as files:
                while not self.stop.is_set():
                    try:
                        if conn is None:
                            conn = self.open()
                        ahead = files.next()
                        if ahead is None and rescan:  # a file went back to ready/
                            rescan = False
                            continue
                        if ahead is None:
                            return
                        self.handle(conn, ahead)
                        backoff.reset()
                    except TransientLoadError as exc:
                        rescan = True
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

    Raises :class:`ConfigError` when the database cannot be used at all (bad settings),
    and :class:`TransientLoadError` when it stayed unreachable for ``retry_seconds`` before
    any file went back to ``ready``; otherwise returns the report (``ok`` is False if a
    file failed or the run stopped early).
    """
    if workers < 1:
        raise ConfigError(f"load workers must be at least 1, got {workers}")
    run = _LoadRun(spool, conninfo, retry_seconds, progress)
    threads = [threading.Thread(target=run.work, daemon=True) for _ in range(workers - 1)]
    for t in threads:
        t.start()
    run.work()  # this thread is a worker too
    for t in threads:
        t.join()
    if run.crash is not None:
        raise run.crash
    report = run.report
    if run.gave_up is not None and not report.requeued:
        raise TransientLoadError(
            f"{report.error} ({len(report.applied)} file(s) applied before that)"
        ) from run.gave_up
    return report
