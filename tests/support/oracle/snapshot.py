"""Independent oracle: what the database must hold for a source tree, and what it holds.

The expected side is recomputed from the source files with plain ``json`` and the
oracle's own reading of constraints and wheel names (:mod:`tests.support.oracle.expected`),
not with wheels-etl's code, so a bug in extract or load cannot hide itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import psycopg

from tests.support.oracle.expected import iter_expected

Snapshot = dict[str, Any]


def _read(root: Path, base_rel: str, ref: str) -> Any:
    url = urljoin("file:///" + base_rel, ref)
    return json.loads((root / url[len("file:///") :]).read_bytes())


def expected_snapshot(root: Path) -> Snapshot:
    """``{"releases": {...}, "artifacts": {...}, "drops": {...}}`` keyed like the tables."""
    releases: dict[tuple[str, str], Any] = {}
    artifacts: dict[tuple[str, ...], Any] = {}
    drops: dict[tuple[str, ...], Any] = {}
    for rel in iter_expected(root):
        releases[(rel.product, rel.version)] = {"updated_at": rel.updated_at}
        doc = json.loads((root / rel.url).read_bytes())
        files = {(a["architecture"], a["variant"]): a["files"] for a in doc["artifacts"]}
        for art in rel.artifacts:
            key = (rel.product, rel.version, art.architecture, art.variant)
            f = files[(art.architecture, art.variant)]
            artifacts[key] = {
                "build_id": art.build_id,
                "built_at": art.built_at,
                "dependency_graph": _read(root, rel.url, f["dependency_graph"]),
                "constraints_file": [
                    {"name": c.name, "specifier": c.specifier, "marker": c.marker}
                    for c in art.constraints
                ],
                "build_sequence_summary": _read(root, rel.url, f["build_sequence_summary"]),
            }
            # PEP 691 extras straight from wheels.json (the generator does not model them)
            pep691 = {e["filename"]: e for e in _read(root, rel.url, f["wheels"])["files"]}
            for d in art.drops:
                entry = pep691[d.filename]
                yanked = entry.get("yanked")
                drops[(*key, d.filename)] = {
                    "name": d.name,
                    "version": d.version,
                    "build_tag": d.build_tag,
                    "python_tag": d.python_tag,
                    "abi_tag": d.abi_tag,
                    "platform_tag": d.platform_tag,
                    "sha256": d.sha256,
                    "size": d.size,
                    "uploaded_at": d.uploaded_at,
                    "yanked": None if yanked is None else yanked is not False,
                    "yanked_reason": yanked if isinstance(yanked, str) else None,
                    "requires_python": entry.get("requires-python"),
                }
    return {"releases": releases, "artifacts": artifacts, "drops": drops}


def db_snapshot(conninfo: str) -> Snapshot:
    """The same shape, read back from Postgres (jsonb decoded by psycopg)."""
    with psycopg.connect(conninfo) as conn:
        releases = {
            (p, r): {"updated_at": u}
            for p, r, u in conn.execute("SELECT product, release, updated_at FROM releases")
        }
        artifacts = {
            tuple(row[:4]): {
                "build_id": row[4],
                "built_at": row[5],
                "dependency_graph": row[6],
                "constraints_file": row[7],
                "build_sequence_summary": row[8],
            }
            for row in conn.execute(
                "SELECT product, release, architecture, variant, build_id, built_at,"
                " dependency_graph, constraints_file, build_sequence_summary FROM artifacts"
            )
        }
        drops = {
            tuple(row[:5]): dict(
                zip(
                    (
                        "name",
                        "version",
                        "build_tag",
                        "python_tag",
                        "abi_tag",
                        "platform_tag",
                        "sha256",
                        "size",
                        "uploaded_at",
                        "yanked",
                        "yanked_reason",
                        "requires_python",
                    ),
                    row[5:],
                    strict=True,
                )
            )
            for row in conn.execute(
                "SELECT product, release, architecture, variant, filename, name, version,"
                " build_tag, python_tag, abi_tag, platform_tag, sha256, size, uploaded_at,"
                " yanked, yanked_reason, requires_python FROM drops"
            )
        }
    return {"releases": releases, "artifacts": artifacts, "drops": drops}


def diff(expected: Snapshot, actual: Snapshot, limit: int = 5) -> list[str]:
    """Human-readable differences (empty when equal)."""
    out: list[str] = []
    for table in ("releases", "artifacts", "drops"):
        exp, act = expected[table], actual[table]
        missing = sorted(set(exp) - set(act))[:limit]
        extra = sorted(set(act) - set(exp))[:limit]
        out += [f"{table}: missing {k}" for k in missing]
        out += [f"{table}: unexpected {k}" for k in extra]
        for key in sorted(set(exp) & set(act)):
            for col, value in exp[key].items():
                got = act[key][col]
                if value != got:
                    out.append(
                        f"{table} {key} {col}: expected {str(value)[:80]!r}, got {str(got)[:80]!r}"
                    )
                    if len(out) > 4 * limit:
                        return out
    return out


def counts(snapshot: Snapshot) -> tuple[int, int, int]:
    return (len(snapshot["releases"]), len(snapshot["artifacts"]), len(snapshot["drops"]))


def assert_db_equals_source(root: Path, db_url: str) -> None:
    """The database holds exactly what the source tree at ``root`` says, field by field."""
    expected = expected_snapshot(root)
    actual = db_snapshot(db_url)
    problems = diff(expected, actual)
    assert not problems, "\n".join(problems)
    assert counts(actual) == counts(expected)
