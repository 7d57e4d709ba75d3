"""Compare what a run (killed or not) leaves behind: the database and the spool.

(Running and killing the CLI is :mod:`tests.support.cli`.)

* :func:`dump_db`: every column of the data tables and the ledger, JSON as ``jsonb::text``
  (normalised), rows ordered by key, minus the columns that legitimately differ between
  two runs (load and extract timestamps).
* :func:`spool_snapshot`: the file names per state, the ``tmp/`` leftovers, and a check
  that every spool file opens and reads completely.
* :func:`fresh_database`: a new database on the test server, dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from etl.spool import STATES
from etl.spooling import format as fmt

REPO = Path(__file__).resolve().parents[2]

#: Columns that differ between two correct runs: when a row was loaded / extracted, and
#: how long its load took.
LOAD_TIMES = {
    "releases": ("loaded_at",),
    "spool_files": ("first_loaded_at", "last_loaded_at", "seconds"),
}
EXTRACT_TIMES = {
    "releases": ("loaded_at", "extracted_at"),
    "spool_files": ("first_loaded_at", "last_loaded_at", "extracted_at", "seconds"),
}
TABLE_KEYS = {
    "releases": 2,
    "artifacts": 4,
    "drops": 5,
    "spool_files": 1,
}


# --- the database ----------------------------------------------------------------------


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new empty database on the server of ``server_url``; dropped (forcibly) afterwards."""
    name = f"wetl_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    try:
        yield make_conninfo("", **params)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


Dump = dict[str, list[tuple[Any, ...]]]


def dump_db(url: str, skip: Mapping[str, Sequence[str]] = LOAD_TIMES) -> Dump:
    """Every row of releases, artifacts, drops and spool_files, ordered by key, with every
    column (found in the catalog, so new columns are compared too) except ``skip``."""
    out: Dump = {}
    with psycopg.connect(url) as conn:
        for table, nkey in TABLE_KEYS.items():
            cols = conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = %s"
                " ORDER BY ordinal_position",
                [table],
            ).fetchall()
            assert cols, f"table {table} missing"
            select = [
                sql.SQL("{}::text").format(sql.Identifier(c)) if t == "jsonb" else sql.Identifier(c)
                for c, t in cols
                if c not in skip.get(table, ())
            ]
            order = sql.SQL(", ").join(sql.Literal(i + 1) for i in range(nkey))
            query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
                sql.SQL(", ").join(select), sql.Identifier(table), order
            )
            out[table] = conn.execute(query).fetchall()
    return out


def dump_diff(expected: Dump, actual: Dump, limit: int = 6) -> list[str]:
    """Readable differences between two dumps (empty when identical)."""
    problems: list[str] = []
    for table in TABLE_KEYS:
        exp, act = expected.get(table, []), actual.get(table, [])
        if exp == act:
            continue
        nkey = TABLE_KEYS[table]
        ekeys = {r[:nkey]: r for r in exp}
        akeys = {r[:nkey]: r for r in act}
        problems.append(f"{table}: {len(exp)} rows expected, {len(act)} found")
        problems += [f"  missing {k}" for k in sorted(set(ekeys) - set(akeys))[:limit]]
        problems += [f"  unexpected {k}" for k in sorted(set(akeys) - set(ekeys))[:limit]]
        changed = [k for k in sorted(set(ekeys) & set(akeys)) if ekeys[k] != akeys[k]]
        for k in changed[:limit]:
            problems.append(f"  differs {k}: {str(ekeys[k])[:160]} != {str(akeys[k])[:160]}")
    return problems


# --- the spool ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SpoolSnapshot:
    states: dict[str, frozenset[str]]  # state -> .parquet names
    sidecars: dict[str, frozenset[str]]  # state -> names with an .error.json beside them
    other: dict[str, frozenset[str]]  # state -> anything else (half files, strays)
    tmp: frozenset[str]
    unreadable: dict[str, str]  # path -> why

    @property
    def all_files(self) -> frozenset[str]:
        return frozenset().union(*self.states.values())

    def in_state(self, state: str) -> frozenset[str]:
        return self.states[state]

    def problems(self) -> list[str]:
        """What must never be seen once a command has finished (leftovers, half files)."""
        out = [f"tmp/ leftover {n}" for n in sorted(self.tmp)]
        out += [f"{s}/ stray {n}" for s, names in self.other.items() for n in sorted(names)]
        out += [f"unreadable {p}: {why}" for p, why in sorted(self.unreadable.items())]
        return out


def spool_snapshot(root: Path, *, read: bool = True) -> SpoolSnapshot:
    """The spool as seen from outside; with ``read``, every file is opened and read whole."""
    states: dict[str, frozenset[str]] = {}
    sidecars: dict[str, frozenset[str]] = {}
    other: dict[str, frozenset[str]] = {}
    unreadable: dict[str, str] = {}
    for state in STATES:
        folder = root / state
        names = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
        files = {n for n in names if n.endswith(".parquet")}
        sides = {n[: -len(".error.json")] for n in names if n.endswith(".parquet.error.json")}
        states[state] = frozenset(files)
        sidecars[state] = frozenset(sides)
        other[state] = frozenset(
            n for n in names if n not in files and not n.endswith(".parquet.error.json")
        )
        if read:
            for n in files:
                why = unreadable_reason(folder / n)
                if why:
                    unreadable[f"{state}/{n}"] = why
    tmp_dir = root / "tmp"
    tmp = frozenset(p.name for p in tmp_dir.iterdir()) if tmp_dir.exists() else frozenset()
    return SpoolSnapshot(states, sidecars, other, tmp, unreadable)


def unreadable_reason(path: Path) -> str | None:
    """None when the file is a complete spool file (metadata + every row group)."""
    try:
        meta = fmt.read_meta(path)
        pf = pq.ParquetFile(path)
        rows = 0
        for i in range(pf.num_row_groups):
            rows += pf.read_row_group(i).num_rows
    except Exception as exc:  # any reason at all: the caller reports it
        return f"{type(exc).__name__}: {exc}"
    if rows != meta.artifacts:
        return f"{rows} rows but metadata says {meta.artifacts} artifacts"
    return None


def copy_spool(src: Path, dst: Path) -> None:
    """A copy keeping mtimes (loaders take files oldest first, so the order is kept)."""
    import shutil

    shutil.copytree(src, dst, copy_function=shutil.copy2)
