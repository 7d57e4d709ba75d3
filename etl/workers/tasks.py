"""The tasks: list -> extract one release -> load one file; and the periodic reconcile.

Every task reads its settings from the worker's environment, like every command.  A task
that meets a retryable error (``EtlError.retryable``: the source, the database, the spool's
object store or the broker unavailable) is retried with exponential backoff and jitter, at
most ``ETL_TASK_MAX_RETRIES`` times; a fatal error is recorded where it is recorded today
(a load failure: ``failed/`` + error sidecar; an extract failure: the log and the run note
that ``enqueue --wait`` reports) and the task ends normally, so the broker does not
redeliver it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from celery import Task

from etl.backoff import exponential_delay
from etl.config import Settings
from etl.db import ledger as db_ledger
from etl.db.url import resolve_database_url
from etl.errors import (
    ConfigError,
    EtlError,
    FatalLoadError,
    SpoolFileError,
    SpoolFullError,
)
from etl.extract import extract_one, list_changed
from etl.listing import find_release
from etl.load import load_one
from etl.redact import redact_url
from etl.source import ReleaseRef
from etl.spool import Spool
from etl.workers import notes, reports
from etl.workers.app import app, worker_spool
from etl.workers.arguments import (
    TaskArgumentError,
    check_file,
    check_run_id,
    listing_args,
    release_args,
)
from etl.workers.reconcile import reconcile as run_reconcile

log = logging.getLogger(__name__)

#: Retry delays (etl.backoff): 1, 2, 4 ... seconds, jittered, at most this many.
BACKOFF_MAX_SECONDS = 30.0


def _task(name: str) -> Callable[[Callable[..., None]], Any]:
    """``app.task`` with our options (bound: ``self`` is the task, for retries).  An error
    the task body does not handle (the spool cannot be opened or written, so no run note)
    is retried when transient, then logged once and reported to ``enqueue --wait``
    (:mod:`etl.workers.reports`) instead of a traceback."""
    decorator: Callable[[Callable[..., None]], Any] = app.task(bind=True, name=f"{__name__}.{name}")

    def wrap(fn: Callable[..., None]) -> Any:
        @functools.wraps(fn)
        def run(self: Task, *args: Any, **kwargs: Any) -> None:
            try:
                fn(self, *args, **kwargs)
            except EtlError as exc:
                _retry_or_none(self, exc)
                reports.gave_up(self, exc)

        return decorator(run)

    return wrap


def ref_to_json(ref: ReleaseRef, full: bool = False) -> dict[str, Any]:
    """A listed release as an extract task carries it: identifiers, and its URL only when
    that URL holds no secret.  A signed URL (``X-Amz-Signature=``, ``token=``, ...: what
    :func:`etl.redact.redact_url` would hide) never travels through the broker, nor into
    the run notes: the worker finds it again in the listing (:func:`etl.listing.find_release`).
    ``full``: extract even if a file of this ``updated_at`` is spooled (``enqueue --full``).
    """
    return {
        "product": ref.product,
        "version": ref.version,
        "updated_at": ref.updated_at.isoformat() if ref.updated_at else None,
        "url": ref.url if redact_url(ref.url) == ref.url else None,
        "fingerprint": ref.fingerprint,
        "full": full,
    }


def ref_from_json(data: dict[str, Any]) -> ReleaseRef:
    updated = data.get("updated_at")
    fingerprint = data.get("fingerprint")
    return ReleaseRef(
        data["product"],
        data["version"],
        datetime.fromisoformat(updated) if updated else None,
        data.get("url") or "",
        fingerprint=fingerprint if isinstance(fingerprint, str) else None,
    )


def _valid(task: Task, check: Callable[[], object]) -> bool:
    """Run the task's argument checks; a bad argument is one log line and the task ends
    (acknowledged, never retried: the same message would fail the same way)."""
    try:
        check()
    except TaskArgumentError as exc:
        log.error("%s refused: %s", task.name, exc)
        return False
    return True


def _ledger_mark(settings: Settings) -> int | None:
    """The ledger's last load attempt now, before this run sends anything (None: the
    database is not reachable; ``enqueue --wait`` then reports the latest outcomes)."""
    try:
        return db_ledger.last_attempt(resolve_database_url(settings.database_url))
    except EtlError as exc:
        log.warning("list_releases: ledger not read (%s): --wait reports latest outcomes", exc)
        return None


def _retry_or_none(task: Task, exc: EtlError) -> None:
    """When ``exc`` is retryable (:attr:`EtlError.retryable`), raise celery's Retry after a
    backoff delay; return when it is not, or when retries are used up."""
    if not exc.retryable:
        return
    retries, most = int(task.request.retries), int(task.app.conf.etl_max_retries)
    if retries >= most:
        reports.gave_up(task, exc)
        return
    delay = exponential_delay(retries + 1, base=1.0, cap=BACKOFF_MAX_SECONDS)
    reports.first_error(task, exc)  # logged once per task, not per retry
    log.debug("%s: %s; retry %d in %.1f s", task.name, exc, retries + 1, delay)
    # the error is logged once, above; max_retries given, since None means celery's
    # default of 3, not ETL_TASK_MAX_RETRIES
    raise task.retry(countdown=delay, max_retries=most)


@_task("list_releases")
def list_releases(self: Task, run_id: str, products: list[str], full: bool) -> None:
    """List the source; one extract task per release that changed since it was spooled."""
    if not _valid(self, lambda: listing_args(run_id, products, full)):
        return
    settings = Settings.from_env(products=tuple(products) or None, full=full or None)
    spool = worker_spool(settings)
    enqueued: list[dict[str, Any]] = []
    mark = _ledger_mark(settings)

    def send(ref: ReleaseRef) -> None:
        data = ref_to_json(ref, full)
        extract_release.apply_async((run_id, data))
        enqueued.append(data)

    try:
        report = list_changed(settings, spool, send)
    except EtlError as exc:  # an unknown product is a ConfigError, as from `extract`
        _retry_or_none(self, exc)
        config = isinstance(exc, ConfigError)
        listing = notes.Listing(
            enqueued, [], [], str(exc), transient=exc.retryable, config=config, ledger_mark=mark
        )
        notes.put_listing(spool, run_id, listing)
        return
    listing = notes.Listing(enqueued, report.unchanged, report.failed, ledger_mark=mark)
    notes.put_listing(spool, run_id, listing)


@_task("extract_release")
def extract_release(self: Task, run_id: str, data: dict[str, Any]) -> None:
    """Extract one release; when its file is in ``ready/``, send its load task."""
    if not _valid(self, lambda: (check_run_id(run_id), release_args(data))):
        return
    full = data.get("full") is True
    settings = Settings.from_env(full=full or None)
    spool = worker_spool(settings)
    ref = ref_from_json(data)
    key = f"{ref.product}/{ref.version}"
    # a GitLab release whose wheels links changed keeps its updated_at: a file at that
    # updated_at is then the old content, and the extract step decides by fingerprint;
    # --full extracts again whatever is spooled
    found = (
        notes.spooled_file(spool, ref.product, ref.version, ref.updated_at)
        if ref.fingerprint is None and not full
        else None
    )
    if found is not None:  # delivered again after its file was written: don't fetch again
        name: str | None = found.name if found.state == "ready" else None
        if found.state == "ready":  # this run's load is still to come; else not this run's
            load_file.apply_async((run_id, found.name))
    else:
        try:
            if not ref.url:  # its URL was signed: found again in the listing
                ref = find_release(settings, ref)
            name = extract_one(settings, spool, ref)
        except EtlError as exc:  # retryable (source, object store down): again, later
            _retry_or_none(self, exc)
            _failed(self, spool, run_id, key, exc, spool_full=isinstance(exc, SpoolFullError))
            return
        if name is not None:
            load_file.apply_async((run_id, name))
    result = notes.ReleaseNote(key, "spooled" if name else "unchanged", name or "", "")
    notes.put_release(spool, run_id, result)


def _failed(
    task: Task, spool: Spool, run_id: str, key: str, exc: EtlError, spool_full: bool = False
) -> None:
    reports.gave_up(task, exc)  # logged once (and reported) unless already
    kind: notes.ReleaseOutcome = "spool-full" if spool_full else "failed"
    notes.put_release(spool, run_id, notes.ReleaseNote(key, kind, "", str(exc)))


@_task("load_file")
def load_file(self: Task, run_id: str, name: str) -> None:
    """Load one spool file (claimed from ``ready/`` or adopted from ``loading/``)."""
    if not _valid(self, lambda: (check_run_id(run_id), check_file(name))):
        return
    settings = Settings.from_env()
    spool = worker_spool(settings)
    try:
        result = load_one(spool, resolve_database_url(settings.database_url), name)
    except EtlError as exc:
        # retryable: the database or the object store is down; the file is back in ready/
        # (or, with the store down, stays claimed until its lease lapses)
        _retry_or_none(self, exc)
        if exc.retryable:
            log.warning("load %s: gave up for now (reconcile sends it again)", name)
            return
        if not isinstance(exc, FatalLoadError | SpoolFileError):
            raise  # the task's wrapper reports it
        log.error("load %s failed: %s", name, exc)  # in failed/ with its sidecar
        return
    if result is not None:
        log.info("load %s: %s (%d rows)", name, result.outcome, result.rows)


@_task("reconcile")
def reconcile(self: Task) -> None:
    """Periodic (Celery beat): send again what lost messages or dead workers left."""
    settings = Settings.from_env()
    try:
        report = run_reconcile(settings, relist=False)
    except EtlError as exc:
        if not exc.retryable:
            raise
        log.warning("reconcile: %s (next period tries again)", exc)
        return
    log.info("reconcile: %s", report)
