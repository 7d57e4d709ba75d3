"""Run notes: what one ``enqueue`` run listed and how each of its releases ended.

Stored as spool records (:meth:`Spool.write_record`, local folder or object store), so
every worker and the waiting ``enqueue --wait`` see them wherever they run::

    run~<run id>~listing.json             written once the listing task is done
    run~<run id>~release~<key>.json       one per release: spooled, unchanged, failed

Load outcomes are not noted: the spool state of the file and the ledger say them.  Notes
older than ``ETL_RUN_NOTES_MAX_AGE`` (a week) are deleted by ``prune`` and ``reconcile``
(:func:`prune`), so ``state/`` does not grow with every run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from etl.errors import SpoolError
from etl.spool import Spool, SpoolFile

ReleaseOutcome = Literal["spooled", "unchanged", "failed", "spool-full"]


@dataclass(frozen=True)
class Listing:
    #: The releases sent to extract tasks (``ref_to_json`` dicts).
    enqueued: list[dict[str, Any]]
    #: ``product/version`` of releases skipped as current.
    unchanged: list[str]
    #: ``(release, reason)`` of listing entries that failed.
    failed: list[tuple[str, str]]
    #: Why the listing itself failed, if it did.
    fatal: str | None = None
    transient: bool = field(default=False)
    #: The listing's settings were wrong (an unknown product): ``enqueue`` exits 2.
    config: bool = field(default=False)
    #: The last load attempt in the ledger when the listing began (None: the database was
    #: not reachable): ``enqueue --wait`` reports the attempts after it as the run's.
    ledger_mark: int | None = None


@dataclass(frozen=True)
class ReleaseNote:
    release: str  # product/version
    outcome: ReleaseOutcome
    file: str  # spool file name when spooled
    error: str


def _run(run_id: str) -> str:
    return f"run~{quote(run_id, safe='')}~"


def prune(spool: Spool, older_than_seconds: float) -> int:
    """Delete the notes of every run older than the age (judged on the store's clock);
    returns how many were deleted."""
    old = spool.records("run~", older_than=older_than_seconds)
    for name in old:
        spool.delete_record(name)
    return len(old)


def put_listing(spool: Spool, run_id: str, listing: Listing) -> None:
    spool.write_record(f"{_run(run_id)}listing.json", asdict(listing))


def put_release(spool: Spool, run_id: str, note: ReleaseNote) -> None:
    name = quote(note.release, safe="")
    spool.write_record(f"{_run(run_id)}release~{name}.json", asdict(note))


def get_listing(spool: Spool, run_id: str) -> Listing | None:
    raw = spool.read_record(f"{_run(run_id)}listing.json")
    if not isinstance(raw, dict):
        return None
    raw["failed"] = [tuple(f) for f in raw["failed"]]
    return Listing(**raw)


def get_releases(spool: Spool, run_id: str) -> dict[str, ReleaseNote]:
    out: dict[str, ReleaseNote] = {}
    for name in spool.records(f"{_run(run_id)}release~"):
        raw = spool.read_record(name)
        if isinstance(raw, dict):
            note = ReleaseNote(**raw)
            out[note.release] = note
    return out


SpoolIndex = dict[tuple[str, str, datetime], SpoolFile]


def spool_index(spool: Spool) -> SpoolIndex:
    """Every spool file (any state) by ``(product, release, updated_at)``: one listing."""
    out: SpoolIndex = {}
    for f in spool.all_files():
        try:
            n = f.parsed
            meta = spool.read_meta(f) if n.shortened else None  # long names: full in footer
        except SpoolError:
            continue
        ident = (meta.product, meta.release) if meta else (n.product, n.release)
        out[(*ident, n.updated_at)] = f
    return out


def spooled_file(
    spool: Spool, product: str, version: str, updated_at: datetime | None
) -> SpoolFile | None:
    """A spool file (any state) of this release at this ``updated_at``, if there is one."""
    if updated_at is None:
        return None
    return spool_index(spool).get((product, version, updated_at))
