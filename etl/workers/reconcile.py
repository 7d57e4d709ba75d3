"""Reconcile: send again the work that lost messages or dead workers left behind.

Run by ``wheels-etl reconcile`` and periodically by Celery beat.  It looks only at the
spool and the ledger, never at the broker, so it recovers from a broker that lost every
message (a Redis restarted without persistence):

* the spool repairs what dead processes left (:meth:`Spool.reconcile`: half-done moves,
  stale uploads and leases, and every file in ``loading`` whose lock lapsed goes back to
  ``ready``), and temporary files of dead writers are removed;
* every file in ``ready`` gets a load task: those the ledger does not hold were never
  loaded (their task was lost, or gave up on an unavailable database); those it holds were
  put back by a replay, or were orphans committed before their loader died, or were written
  twice by a redelivered extract: they load as ``unchanged``, never applied twice;
* run notes (``state/run~*``) older than ``ETL_RUN_NOTES_MAX_AGE`` (7 days) are deleted;
* with ``relist``, the listing task is sent too: releases whose extract task was lost are
  neither spooled nor remembered, so the incremental listing sends them again.

Sending a task twice is harmless: a file is claimed by one loader at a time and the ledger
turns a second load into ``unchanged``.
"""

from __future__ import annotations

from dataclasses import dataclass

from etl.config import Settings
from etl.db import ledger as db_ledger
from etl.db.url import resolve_database_url
from etl.workers import notes
from etl.workers.app import TASKS, app, broker_errors, check_broker_url, worker_spool
from etl.workers.runs import enqueue
from etl.workers.settings import WorkerSettings


@dataclass(frozen=True)
class ReconcileReport:
    tmp_removed: int
    orphans: list[str]  # back from loading to ready (their lock had lapsed)
    repaired: list[str]  # store-level repairs
    ready_not_in_ledger: list[str]
    ready_in_ledger: list[str]
    relisted: str | None  # run id of the listing sent, if any
    notes_pruned: int = 0  # run notes older than ETL_RUN_NOTES_MAX_AGE deleted

    @property
    def sent(self) -> int:
        return len(self.ready_not_in_ledger) + len(self.ready_in_ledger)

    def __str__(self) -> str:
        text = (
            f"{self.sent} load task(s) sent: {len(self.ready_not_in_ledger)} ready file(s) "
            f"never loaded, {len(self.ready_in_ledger)} already in the ledger "
            f"({len(self.orphans)} orphan(s) back from loading); "
            f"{len(self.repaired)} store repair(s), "
            f"{self.tmp_removed} temporary file(s) removed, "
            f"{self.notes_pruned} old run note(s) deleted"
        )
        if self.relisted:
            text += f"; listing sent (run {self.relisted})"
        return text


def reconcile(
    settings: Settings,
    *,
    relist: bool = False,
    products: tuple[str, ...] = (),
    full: bool = False,
) -> ReconcileReport:
    # The broker's settings first, even when there is nothing to send: a reconcile CronJob
    # with a bad ETL_BROKER_URL must fail (exit 2), not pass until a file needs sending.
    check_broker_url(WorkerSettings.from_env().broker_url)
    spool = worker_spool(settings)
    ledger = db_ledger.names(resolve_database_url(settings.database_url))
    repaired = spool.reconcile()
    removed = spool.clean_tmp()
    pruned = notes.prune(spool, settings.notes_max_age)
    ready = [f.name for f in spool.files("ready")]
    with broker_errors():
        for name in ready:
            app.send_task(f"{TASKS}.load_file", ("reconcile", name))
    relisted = enqueue(settings, products=products, full=full) if relist else None
    return ReconcileReport(
        removed,
        repaired.requeued,
        repaired.repaired,
        [n for n in ready if n not in ledger],
        [n for n in ready if n in ledger],
        relisted,
        pruned,
    )
