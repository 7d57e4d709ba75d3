"""Run notes: what one ``enqueue`` run listed and how each of its releases ended.

Stored through the spool (:meth:`Spool.put_note`), so every worker and the waiting
``enqueue --wait`` see them wherever they run::

    notes/runs/<run id>/listing.json            written once the listing task is done
    notes/runs/<run id>/release/<key>.json      one per release: spooled, unchanged, failed

Load outcomes are not noted: the spool state of the file and the ledger say them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from etl.errors import SpoolFileError
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


@dataclass(frozen=True)
class ReleaseNote:
    release: str  # product/version
    outcome: ReleaseOutcome
    file: str  # spool file name when spooled
    error: str


def _run(run_id: str) -> str:
    return f"runs/{quote(run_id, safe='')}"


def put_listing(spool: Spool, run_id: str, listing: Listing) -> None:
    spool.put_note(f"{_run(run_id)}/listing.json", json.dumps(asdict(listing)).encode())


def put_release(spool: Spool, run_id: str, note: ReleaseNote) -> None:
    name = quote(note.release, safe="")
    spool.put_note(f"{_run(run_id)}/release/{name}.json", json.dumps(asdict(note)).encode())


def get_listing(spool: Spool, run_id: str) -> Listing | None:
    data = spool.notes(_run(run_id)).get(f"{_run(run_id)}/listing.json")
    if data is None:
        return None
    raw = json.loads(data)
    raw["failed"] = [tuple(f) for f in raw["failed"]]
    return Listing(**raw)


def get_releases(spool: Spool, run_id: str) -> dict[str, ReleaseNote]:
    out: dict[str, ReleaseNote] = {}
    for data in spool.notes(f"{_run(run_id)}/release").values():
        note = ReleaseNote(**json.loads(data))
        out[note.release] = note
    return out


SpoolIndex = dict[tuple[str, str, datetime], SpoolFile]


def spool_index(spool: Spool) -> SpoolIndex:
    """Every spool file (any state) by ``(product, release, updated_at)``: one listing."""
    out: SpoolIndex = {}
    for f in spool.all_files():
        try:
            n = f.parsed
        except SpoolFileError:
            continue
        out[(n.product, n.release, n.updated_at)] = f
    return out


def spooled_file(
    spool: Spool, product: str, version: str, updated_at: datetime | None
) -> SpoolFile | None:
    """A spool file (any state) of this release at this ``updated_at``, if there is one."""
    if updated_at is None:
        return None
    return spool_index(spool).get((product, version, updated_at))
