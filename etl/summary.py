"""Run summaries: what ``extract`` and ``load`` print at the end, as text or as JSON.

The JSON documents (``extract --json`` / ``load --json``) are for schedulers: one object on
stdout, with a ``schema`` key naming its version, counts, bytes, retries, 304s and seconds.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import TYPE_CHECKING, Any

from etl.progress import human_bytes

if TYPE_CHECKING:
    from etl.extract import ExtractReport
    from etl.load import LoadReport

EXTRACT_SCHEMA = "wheels-etl/extract-summary/1"
LOAD_SCHEMA = "wheels-etl/load-summary/1"
_SAFE = re.compile(r"[A-Za-z0-9@%+=:,./~_-]+")


def extract_doc(report: ExtractReport, seconds: float, spool: str) -> dict[str, Any]:
    stats = report.stats
    return {
        "schema": EXTRACT_SCHEMA,
        "ok": report.ok,
        "seconds": round(seconds, 3),
        "spool": spool,
        "spooled": len(report.spooled),
        "unchanged": len(report.unchanged),
        "failed": len(report.failed),
        "requests": int(stats.get("requests", 0)),
        "bytes_fetched": int(stats.get("bytes", 0)),
        "retries": int(stats.get("retries", 0)),
        "not_modified": int(stats.get("not_modified", 0)),
        "downloads": int(stats.get("downloads", 0)),  # GitLab tarballs fetched
        "files": list(report.spooled),
        "failures": [{"release": r, "reason": why} for r, why in report.failed],
        "fatal": report.fatal,
    }


def extract_text(report: ExtractReport, seconds: float, spool: str) -> str:
    d = extract_doc(report, seconds, spool)
    return (
        f"extract: {d['spooled']} spooled, {d['unchanged']} unchanged, {d['failed']} failed; "
        f"{d['requests']} requests ({d['not_modified']} not modified, {d['retries']} retried), "
        f"{human_bytes(d['bytes_fetched'])} fetched in {seconds:.1f} s -> {spool}"
    )


def load_doc(report: LoadReport, seconds: float, spool: str) -> dict[str, Any]:
    return {
        "schema": LOAD_SCHEMA,
        "ok": report.ok,
        "seconds": round(seconds, 3),
        "spool": spool,
        "applied": len(report.applied),
        "unchanged": len(report.unchanged),
        "superseded": len(report.superseded),
        "recovered": len(report.recovered),
        "failed": len(report.failed),
        "requeued": len(report.requeued),
        "rows": report.rows,
        "json_bytes": report.json_bytes,
        "file_bytes": report.file_bytes,
        "failures": [
            {"file": name, "reason": why, "replay": replay_command(name)}
            for name, why in report.failed
        ],
        "error": report.error,
    }


def load_text(report: LoadReport, seconds: float) -> str:
    return (
        f"load: {len(report.applied)} applied, {len(report.unchanged)} unchanged, "
        f"{len(report.superseded)} superseded, {len(report.failed)} failed, "
        f"{len(report.requeued)} back to ready; {report.rows} rows, "
        f"{human_bytes(report.json_bytes)} of JSON in {seconds:.1f} s"
    )


def replay_command(name: str) -> str:
    """A copy-pasteable shell command, whatever the file name holds (quoted only when a
    shell would read it differently: spool names with ``~`` in the middle stay bare)."""
    bare = _SAFE.fullmatch(name) is not None and not name.startswith("~")
    if bare:
        return f"wheels-etl replay {name}"
    if any(not c.isprintable() or "\udc80" <= c <= "\udcff" for c in name):
        return f"wheels-etl replay {_ansi_c(name)}"  # one line, every byte as it is
    return f"wheels-etl replay {shlex.quote(name)}"


def _ansi_c(name: str) -> str:
    """``$'...'`` quoting (bash, zsh, ksh) with non-printable and undecodable bytes as
    ``\\xNN``: the exact bytes of the name, on one line, in plain ASCII."""
    out = []
    for b in name.encode("utf-8", "surrogateescape"):
        c = chr(b)
        out.append(c if 0x20 <= b < 0x7F and c not in "'\\" else f"\\x{b:02x}")
    return "$'" + "".join(out) + "'"


def shown(name: str) -> str:
    """A file name for a terminal line: undecodable bytes and control characters escaped
    (``\\xff``, ``\\n``), so printing never fails and one name stays on one line."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text


def dumps(doc: Any) -> str:
    return json.dumps(doc, indent=2, default=str)
