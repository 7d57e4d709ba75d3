"""``status``: the spool and the database ledger at a glance (text or JSON)."""

from __future__ import annotations

import time
from typing import Any

from etl.errors import EtlError
from etl.progress import human_bytes
from etl.spool import STATES, Spool, SpoolName
from etl.spoolstate import SpoolState


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def collect(spool: Spool, conninfo: str | None) -> dict[str, Any]:
    """Everything ``status`` shows, as plain data (the ``--json`` output)."""
    now = time.time()
    states: dict[str, Any] = {}
    names_by_state: dict[str, set[str]] = {}
    for state in STATES:
        files = spool.files(state)
        names_by_state[state] = {f.name for f in files}
        releases = set()
        for f in files:
            try:
                releases.add(SpoolName.parse(f.name).release_key)
            except EtlError:
                releases.add(f"? {f.name}")
        states[state] = {
            "files": len(files),
            "releases": len(releases),
            "bytes": sum(f.size for f in files),
        }
    ready = spool.files("ready")
    oldest = min((f.mtime for f in ready), default=None)
    failed = []
    for f in spool.files("failed"):
        side = spool.sidecar(f.path) or {}
        last = side.get("last") or {}
        failed.append(
            {
                "file": f.name,
                "attempts": side.get("count", 0),
                "error_class": last.get("error_class"),
                "sqlstate": last.get("sqlstate"),
                "reason": (last.get("message") or "no error sidecar").splitlines()[0][:200],
                "replay": f"wheels-etl replay {f.name}",
            }
        )
    state_db = SpoolState(spool.sqlite_path())
    try:
        products = [
            {"product": p, "last_extracted_at": at, "releases_seen": seen, "releases_failed": bad}
            for p, at, seen, bad in state_db.products()
        ]
    finally:
        state_db.close()
    out: dict[str, Any] = {
        "spool": str(spool.root.resolve()),
        "states": states,
        "oldest_ready_age_seconds": None if oldest is None else round(now - oldest, 1),
        "failed": failed,
        "products": products,
        "database": None,
        "warnings": [],
    }
    if conninfo is None:
        return out
    try:
        from etl.db import ledger as db_ledger

        ledger = db_ledger.summary(conninfo)
        known = db_ledger.names(conninfo)
    except EtlError as exc:
        out["database"] = {"error": str(exc)}
        out["warnings"].append(f"database unreachable: {exc}")
        return out
    out["database"] = ledger
    unknown = sorted(names_by_state["loaded"] - known)
    if unknown:
        out["warnings"].append(
            f"{len(unknown)} file(s) in loaded/ unknown to the database ledger"
            f" (e.g. {unknown[0]}): the database was reset or restored? "
            "`wheels-etl replay --loaded` re-applies them"
        )
    back = sorted(known & (names_by_state["ready"] | names_by_state["failed"]))
    if back:
        out["warnings"].append(
            f"{len(back)} file(s) the ledger has loaded sit in ready/ or failed/"
            f" (e.g. {back[0]}): loading them again changes nothing unless newer data exists"
        )
    return out


def render(info: dict[str, Any]) -> str:
    lines = [f"spool {info['spool']}"]
    lines.append(f"  {'state':<8} {'files':>7} {'releases':>9} {'bytes':>10}")
    for state, s in info["states"].items():
        lines.append(
            f"  {state:<8} {s['files']:>7} {s['releases']:>9} {human_bytes(s['bytes']):>10}"
        )
    age = info["oldest_ready_age_seconds"]
    lines.append(f"oldest ready file: {'none' if age is None else _age(age) + ' old'}")
    for p in info["products"]:
        lines.append(
            f"product {p['product']}: last extracted {p['last_extracted_at']}"
            f" ({p['releases_seen']} releases listed, {p['releases_failed']} failed)"
        )
    if info["failed"]:
        lines.append(f"failed files ({len(info['failed'])}):")
        for f in info["failed"]:
            code = f" [{f['sqlstate']}]" if f.get("sqlstate") else ""
            lines.append(f"  {f['file']}: {f['reason']}{code} (attempts: {f['attempts']})")
            lines.append(f"    replay: {f['replay']}")
    db = info["database"]
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
    for w in info["warnings"]:
        lines.append(f"WARNING: {w}")
    return "\n".join(lines)
