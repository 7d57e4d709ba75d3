"""``status``: the spool and the database ledger at a glance, as one typed document.

:func:`collect` builds a :class:`StatusDoc`; ``to_json()`` is the ``--json`` output
(``schema`` ``wheels-etl/status/1``; every timestamp ``...Z``; documented in
``docs/status-json.md``), :func:`render` the text.
"""

from __future__ import annotations

import textwrap
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from etl.errors import ConfigError, EtlError
from etl.progress import human_bytes
from etl.spool import STATES, Spool, SpoolName, SpoolState
from etl.spooling.memory import ExtractMemory, ProductState
from etl.spooling.sidecar import reason as sidecar_reason
from etl.summary import replay_command, shown
from etl.timestamps import format_ts, parse_ts

STATUS_SCHEMA_VERSION = 1
STATUS_SCHEMA = f"wheels-etl/status/{STATUS_SCHEMA_VERSION}"


@dataclass(frozen=True)
class StateCounts:
    files: int
    releases: int
    bytes: int


@dataclass(frozen=True)
class FailedFile:
    file: str
    path: str  # where it is now: ``failed/<file>`` under the spool
    corrupt: bool  # unreadable: nothing to replay, the next extract fetches it again
    next_step: str  # what brings its data into the database
    attempts: int
    error_class: str | None
    sqlstate: str | None
    reason: str  # the last attempt's whole message, on one line
    replay: str  # the command that puts it back in ready/ and loads it


@dataclass
class StatusDoc:
    spool: str
    states: dict[SpoolState, StateCounts]
    oldest_ready_age_seconds: float | None
    failed: list[FailedFile]
    products: list[ProductState]
    database: dict[str, Any] | None = None  # the ledger summary, or {"error": ...}
    warnings: list[str] = field(default_factory=list)
    schema_version: int = STATUS_SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        return {"schema": STATUS_SCHEMA, **asdict(self)}


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _release_of(name: str) -> str:
    try:
        return SpoolName.parse(name).release_key
    except EtlError:
        return f"? {name}"


def collect(spool: Spool, conninfo: str | None) -> StatusDoc:
    """Everything ``status`` shows (the database part only when ``conninfo`` is given)."""
    now = time.time()
    listed = {state: spool.files(state) for state in STATES}
    states = {
        state: StateCounts(
            len(files), len({_release_of(f.name) for f in files}), sum(f.size for f in files)
        )
        for state, files in listed.items()
    }
    oldest = min((f.mtime for f in listed["ready"]), default=None)
    failed = []
    for f in listed["failed"]:
        record = spool.failure(f)
        last = record.last if record else None
        message = sidecar_reason(record)
        corrupt = spool.failed_as_corrupt(f)
        replay = replay_command(f.name)
        if corrupt:
            step = f"the next `wheels-etl extract` fetches {_release_of(f.name)} again"
        else:
            step = f"fix the cause, then `{replay}`"
        failed.append(
            FailedFile(
                file=f.name,
                path=f"failed/{f.name}",
                corrupt=corrupt,
                next_step=step,
                attempts=record.count if record else 0,
                error_class=last.error_class if last else None,
                sqlstate=last.sqlstate if last else None,
                reason=" ".join(message.split()),
                replay=replay,
            )
        )
    doc = StatusDoc(
        spool=spool.location,
        states=states,
        oldest_ready_age_seconds=None if oldest is None else round(now - oldest, 1),
        failed=failed,
        products=ExtractMemory(spool).products(),
    )
    if conninfo is not None:
        _add_database(doc, {s: {f.name for f in files} for s, files in listed.items()}, conninfo)
    return doc


def _add_database(doc: StatusDoc, names: dict[SpoolState, set[str]], conninfo: str) -> None:
    try:
        from etl.db import ledger as db_ledger

        ledger = db_ledger.summary(conninfo)
        known = db_ledger.names(conninfo)
    except ConfigError:  # a bad setting (exit 2), not an unreachable database (exit 3)
        raise
    except EtlError as exc:
        doc.database = {"error": str(exc)}
        return
    if isinstance(ledger.get("last_loaded_at"), str):  # the one timestamp format, ...Z
        ledger["last_loaded_at"] = format_ts(parse_ts(ledger["last_loaded_at"]))
    doc.database = ledger
    unknown = sorted(names["loaded"] - known)
    if unknown:
        doc.warnings.append(
            f"{len(unknown)} file(s) in loaded/ unknown to the database ledger"
            f" (e.g. {unknown[0]}): the database was reset or restored? "
            "`wheels-etl replay --loaded` re-applies them"
        )
    back = sorted(known & (names["ready"] | names["failed"]))
    if back:
        doc.warnings.append(
            f"{len(back)} file(s) the ledger has loaded sit in ready/ or failed/"
            f" (e.g. {back[0]}): loading them again changes nothing unless newer data exists"
        )


def render(doc: StatusDoc) -> str:
    lines = [f"spool {doc.spool}"]
    lines.append(f"  {'state':<8} {'files':>7} {'releases':>9} {'bytes':>10}")
    for state, s in doc.states.items():
        lines.append(f"  {state:<8} {s.files:>7} {s.releases:>9} {human_bytes(s.bytes):>10}")
    age = doc.oldest_ready_age_seconds
    lines.append(f"oldest ready file: {'none' if age is None else _age(age) + ' old'}")
    for p in doc.products:
        lines.append(
            f"product {p.product}: last extracted {p.last_extracted_at}"
            f" ({p.releases_seen} releases listed, {p.releases_failed} failed)"
        )
        for x in p.failures:
            lines.append(f"  extract of {p.product}/{x.release} failed at {x.at}: {x.reason}")
            lines.append(f"    url: {x.url}")
    if doc.failed:
        lines.append(f"failed files ({len(doc.failed)}):")
        for f in doc.failed:
            code = f" [{f.sqlstate}]" if f.sqlstate else ""
            reason = textwrap.shorten(f.reason, 300, placeholder=" …")  # at a word boundary
            lines.append(f"  {f.path}: {reason}{code} (attempts: {f.attempts})")
            if f.corrupt:
                lines.append(f"    next: {f.next_step}")
            lines.append(f"    replay: {f.replay}")
    db = doc.database
    if db is None:
        lines.append("database: not queried")
    elif "error" in db:
        lines.append(f"database: {db['error']}")
    else:
        last = db.get("last_file") or "nothing loaded yet"
        when = db.get("last_loaded_at") or ""
        lines.append(f"database ledger: {db.get('files', 0)} file(s); last {last} {when}".rstrip())
        outcomes = db.get("outcomes") or {}
        if outcomes:
            lines.append(
                "  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
            )
        for key in ("releases", "artifacts", "drops"):
            if key in db:
                lines.append(f"  {key}: {db[key]}")
    for w in doc.warnings:
        lines.append(f"WARNING: {w}")
    return "\n".join(shown(line) for line in lines)  # odd file names never break a line
