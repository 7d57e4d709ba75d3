"""``enqueue``: send the listing task; with ``wait``, follow the run until it settles.

The waiter never asks Celery (results are not kept): it reads the run notes, the spool
state of each file and the ledger, so it can run anywhere the spool and database are
visible and survives a worker, or itself, being restarted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from etl import load
from etl.config import Settings
from etl.db import ledger as db_ledger
from etl.errors import SpoolError
from etl.spool import Spool, SpoolFile
from etl.spooling.sidecar import reason as sidecar_reason
from etl.summary import replay_command
from etl.workers import notes, reports
from etl.workers.app import TASKS, app, broker_errors

#: Task-error listeners of the runs this process follows (``enqueue(follow=True)``).
_listeners: dict[str, reports.Listener] = {}


def enqueue(
    settings: Settings, *, products: tuple[str, ...] = (), full: bool = False, follow: bool = False
) -> str:
    """Send the listing task; returns the run id (the key of the run notes).  With
    ``follow`` (``enqueue --wait``), the spool is read first (bad settings or an unreachable
    store fail here, before anything is sent) and the workers' task errors are listened
    for from before the listing task is sent, for :func:`wait`."""
    run_id = f"{datetime.now().strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    if follow:
        notes.get_listing(Spool(settings.spool_dir), run_id)
        with broker_errors():
            listener = reports.Listener(app, run_id)
            listener.start()
        _listeners[run_id] = listener
    try:
        with broker_errors():
            app.send_task(f"{TASKS}.list_releases", (run_id, list(products), full))
    except BaseException:
        if follow:
            _listeners.pop(run_id).stop()
        raise
    return run_id


@dataclass
class RunSummary:
    """How one run ended (or stands), in the terms of ``extract`` + ``load``."""

    spooled: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    extract_failed: list[tuple[str, str]] = field(default_factory=list)
    #: spool file name -> ledger outcome (applied, unchanged, superseded)
    loaded: dict[str, load.Outcome] = field(default_factory=dict)
    load_failed: list[tuple[str, str]] = field(default_factory=list)
    #: releases or files not settled yet
    pending: list[str] = field(default_factory=list)
    listing_error: str | None = None
    listing_transient: bool = False
    listing_config: bool = False  # the listing's settings were wrong (an unknown product)
    spool_full: str | None = None
    listed: bool = False
    #: The last load attempt before the run began (from the listing): later ones are its.
    ledger_mark: int | None = None
    #: tasks that gave up, each with its first error (from the workers' events)
    task_errors: list[reports.TaskError] = field(default_factory=list)

    @property
    def error_code(self) -> int | None:
        """2 when a task gave up on bad settings, else 3 when on something unavailable."""
        codes = {e.code for e in self.task_errors}
        return 2 if 2 in codes else 3 if 3 in codes else None

    def add_task_errors(self, failed: list[reports.TaskError]) -> None:
        """Tasks that gave up settle what they were doing (their notes may be missing:
        the error may be the very one that keeps a worker from writing to the spool)."""
        self.task_errors = failed
        first = {e.key: e.message for e in failed}
        self.extract_failed = [(k, first.get(k, reason)) for k, reason in self.extract_failed]
        for error in failed:
            if error.key == reports.LISTING:
                self.listed = True
                self.listing_error = error.message
                self.listing_transient = error.code == 3
            if error.key in self.pending:
                self.pending.remove(error.key)
            if error.key == reports.LISTING and "(listing)" in self.pending:
                self.pending.remove("(listing)")

    @property
    def settled(self) -> bool:
        return self.listed and not self.pending

    @property
    def ok(self) -> bool:
        return (
            self.settled
            and not self.extract_failed
            and not self.load_failed
            and self.listing_error is None
        )

    def count(self, outcome: load.Outcome) -> int:
        return sum(1 for o in self.loaded.values() if o == outcome)


def look(spool: Spool, run_id: str) -> RunSummary:
    """The run as it stands now (no database: ``loaded`` outcomes are left unknown)."""
    s = RunSummary()
    listing = notes.get_listing(spool, run_id)
    if listing is None:
        s.pending.append("(listing)")
        return s
    s.listed = True
    s.ledger_mark = listing.ledger_mark
    s.unchanged.extend(listing.unchanged)
    s.extract_failed.extend(listing.failed)
    if listing.fatal is not None:
        s.listing_error = listing.fatal
        s.listing_transient = listing.transient
        s.listing_config = listing.config
    by_release = notes.get_releases(spool, run_id)
    index: notes.SpoolIndex | None = None  # one listing of the spool per look, if needed
    for ref in listing.enqueued:
        key = f"{ref['product']}/{ref['version']}"
        note = by_release.get(key)
        if note is None:  # its message may be lost: a file another run made settles it too
            index = notes.spool_index(spool) if index is None else index
            updated = datetime.fromisoformat(ref["updated_at"]) if ref["updated_at"] else None
            found = index.get((ref["product"], ref["version"], updated)) if updated else None
            if found is None or found.state not in ("loaded", "failed"):
                s.pending.append(key)
                continue
            note = notes.ReleaseNote(key, "spooled", found.name, "")
        if note.outcome == "unchanged":
            s.unchanged.append(key)
        elif note.outcome in ("failed", "spool-full"):
            s.extract_failed.append((key, note.error))
            if note.outcome == "spool-full":
                s.spool_full = note.error
        else:
            s.spooled.append(note.file)
            _file(spool, note.file, s)
    return s


def _file(spool: Spool, name: str, s: RunSummary) -> None:
    found: SpoolFile | None = spool.find(name)
    if found is None or found.state == "loaded":  # (pruned since: it was loaded)
        s.loaded[name] = "applied"
    elif found.state == "failed":
        record = spool.failure(found)
        s.load_failed.append((name, sidecar_reason(record)))
    else:
        s.pending.append(name)


def wait(
    settings: Settings,
    spool: Spool,
    conninfo: str,
    run_id: str,
    *,
    poll_seconds: float | None = None,
    timeout: float | None = None,
    progress: Callable[[RunSummary], None] | None = None,
) -> RunSummary:
    """Poll until every release the run enqueued is loaded or failed (or ``timeout``);
    the loaded files' outcomes then come from the ledger.  ``poll_seconds`` defaults to
    ``ETL_WAIT_POLL_SECONDS`` (1)."""
    if poll_seconds is None:
        poll_seconds = float(app.conf.etl_wait_poll_seconds)
    deadline = None if timeout is None else time.monotonic() + timeout
    listener = _listeners.pop(run_id, None)
    try:
        summary = _wait(spool, run_id, listener, poll_seconds, deadline, progress)
    finally:
        if listener is not None:
            listener.stop()
    if summary.loaded:  # this run's loads only: a file loaded before it changed nothing now
        after = summary.ledger_mark or 0  # noted by the listing task, before any extract
        outcomes = db_ledger.outcomes(conninfo, sorted(summary.loaded), after=after)
        summary.loaded = {n: outcomes.get(n, "unchanged") for n in summary.loaded}
    return summary


def _wait(
    spool: Spool,
    run_id: str,
    listener: reports.Listener | None,
    poll_seconds: float,
    deadline: float | None,
    progress: Callable[[RunSummary], None] | None,
) -> RunSummary:
    errors = 0
    while True:
        try:
            summary = look(spool, run_id)
            if listener is not None:
                summary.add_task_errors(listener.failed())
            errors = 0
        except SpoolError:  # the store hiccuped, or a file moved while looked at
            errors += 1
            if errors >= 10:
                raise
        else:
            if progress is not None:
                progress(summary)
            if summary.settled or (deadline is not None and time.monotonic() >= deadline):
                return summary
        time.sleep(poll_seconds)


def render(s: RunSummary, where: str) -> tuple[str, list[str]]:
    """The summary as ``extract`` + ``load`` print it, and the lines for stderr."""
    out = (
        f"extract: {len(s.spooled)} spooled, {len(s.unchanged)} unchanged, "
        f"{len(s.extract_failed)} failed -> {where}/ready\n"
        f"load: {s.count('applied')} applied, {s.count('unchanged')} unchanged, "
        f"{s.count('superseded')} superseded, {len(s.load_failed)} failed"
    )
    err = [f"  failed {release}: {reason}" for release, reason in s.extract_failed]
    for name, reason in s.load_failed:
        err += [f"  failed {name}: {reason}", f"    replay with: {replay_command(name)}"]
    covered = {r for r, _ in s.extract_failed} | {n for n, _ in s.load_failed}
    for e in s.task_errors:
        if e.key not in covered and e.key != reports.LISTING:
            err.append(f"  failed {e.task.replace('_', ' ')} {e.key}: {e.message}")
    if s.listing_error is not None:
        err.append(f"enqueue: listing failed: {s.listing_error}")
    if not s.settled:
        err.append(f"enqueue: {len(s.pending)} still pending after the timeout")
    return out, err
