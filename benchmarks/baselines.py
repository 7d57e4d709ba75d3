"""Two reference collectors, written the plain way, to measure wheels-etl against.

* :func:`accumulate_all` -- what the old collector did: fetch every release's artifacts
  and drops over HTTP with ``requests`` into Python lists (documents parsed with
  ``.json()``), then write everything to Postgres at the end in one transaction.
* :func:`per_release` -- a per-release callback: fetch one release, write it with
  ``executemany`` bulk inserts, commit, next.

Both read the same source (protocol version 1, see docs/source-protocol.md) and write
the same tables as wheels-etl (``releases``, ``artifacts``, ``drops`` created by
``etl.db.schema.migrate``), storing the same values: constraints as the JSON array of
``{name, specifier, marker}``, drops split from the wheel filename.  They do not validate
identifiers, retry, or resume: they are yardsticks, not products.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import psycopg
import requests
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from psycopg.types.json import Jsonb

FILE_KEYS = ("dependency_graph", "constraints_file", "build_sequence_summary", "wheels")

REL_SQL = (
    "INSERT INTO releases (product, release, updated_at, artifact_count, drop_count, loaded_at)"
    " VALUES (%s, %s, %s, %s, %s, now())"
)
ART_SQL = (
    "INSERT INTO artifacts (product, release, architecture, variant, build_id, built_at,"
    " dependency_graph, constraints_file, build_sequence_summary, drop_count)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
#: The drop columns the baselines fill (the PEP 691 extras, yanked etc., stay NULL).
DROP_ROW_COLUMNS = (
    "product", "release", "architecture", "variant", "filename", "name", "version",
    "build_tag", "python_tag", "abi_tag", "platform_tag", "sha256", "size", "uploaded_at",
)  # fmt: skip
DROP_SQL = (
    f"INSERT INTO drops ({', '.join(DROP_ROW_COLUMNS)})"
    f" VALUES ({', '.join(['%s'] * len(DROP_ROW_COLUMNS))})"
)


def _ts(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def constraints(text: str) -> list[dict[str, Any]]:
    out = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        req = Requirement(line)
        out.append(
            {
                "name": canonicalize_name(req.name),
                "specifier": str(req.specifier),
                "marker": None if req.marker is None else str(req.marker),
            }
        )
    return out


def drop_row(key: tuple[str, str, str, str], entry: dict[str, Any]) -> tuple[Any, ...]:
    filename = entry["filename"]
    name, version, _build, _tags = parse_wheel_filename(filename)
    parts = filename[: -len(".whl")].split("-")
    return (
        *key,
        filename,
        str(name),
        str(version),
        parts[2] if len(parts) == 6 else None,
        *parts[-3:],
        entry["hashes"]["sha256"].lower(),
        entry["size"],
        _ts(entry.get("upload-time")),
    )


class Release:
    """One fetched release: its row, artifact rows (JSON parsed) and drop rows."""

    def __init__(self, product: str, version: str, updated_at: datetime | None) -> None:
        self.product = product
        self.version = version
        self.updated_at = updated_at
        self.artifacts: list[tuple[Any, ...]] = []
        self.drops: list[tuple[Any, ...]] = []


def iter_releases(session: requests.Session, base: str) -> Iterator[tuple[str, str]]:
    """(product, release.json URL) for every release of every product, page by page."""
    index_url = urljoin(base.rstrip("/") + "/", "index.json")
    index = session.get(index_url, timeout=60)
    index.raise_for_status()
    for product in index.json()["products"]:
        url: str | None = urljoin(index_url, product["releases"])
        while url:
            r = session.get(url, timeout=60)
            r.raise_for_status()
            page = r.json()
            for rel in page["releases"]:
                yield product["name"], urljoin(url, rel["url"])
            url = urljoin(url, page["next"]) if page.get("next") else None


def fetch_release(session: requests.Session, product: str, url: str) -> Release:
    r = session.get(url, timeout=60)
    r.raise_for_status()
    doc = r.json()
    rel = Release(product, doc["version"], _ts(doc.get("updated_at")))
    for art in doc["artifacts"]:
        body: dict[str, requests.Response] = {}
        for k in FILE_KEYS:
            body[k] = session.get(urljoin(url, art["files"][k]), timeout=60)
            body[k].raise_for_status()
        key = (product, rel.version, art["architecture"], art["variant"])
        drops = [drop_row(key, e) for e in body["wheels"].json()["files"]]
        rel.artifacts.append(
            (
                *key,
                art.get("build_id"),
                _ts(art.get("built_at")),
                body["dependency_graph"].json(),
                constraints(body["constraints_file"].text),
                body["build_sequence_summary"].json(),
                len(drops),
            )
        )
        rel.drops.extend(drops)
    return rel


def _write(cur: psycopg.Cursor[Any], releases: list[Release]) -> int:
    cur.executemany(
        REL_SQL,
        [(r.product, r.version, r.updated_at, len(r.artifacts), len(r.drops)) for r in releases],
    )
    cur.executemany(
        ART_SQL,
        [
            (*a[:6], Jsonb(a[6]), Jsonb(a[7]), Jsonb(a[8]), a[9])
            for r in releases
            for a in r.artifacts
        ],
    )
    drops = [d for r in releases for d in r.drops]
    if drops:
        cur.executemany(DROP_SQL, drops)
    return len(releases) + sum(len(r.artifacts) for r in releases) + len(drops)


def _run(source_url: str, url: str, per_release_cb: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    rows = 0
    held: list[Release] = []
    with requests.Session() as session, psycopg.connect(url) as conn:
        fetch_s = 0.0
        for product, rel_url in iter_releases(session, source_url):
            tf = time.perf_counter()
            rel = fetch_release(session, product, rel_url)
            fetch_s += time.perf_counter() - tf
            if per_release_cb:
                with conn.transaction(), conn.cursor() as cur:
                    rows += _write(cur, [rel])
            else:
                held.append(rel)
        if held:
            with conn.transaction(), conn.cursor() as cur:
                rows += _write(cur, held)
    return {
        "seconds": time.perf_counter() - t0,
        "fetch_seconds": fetch_s,
        "rows": rows,
        "releases": len(held) if held else None,
    }


def accumulate_all(source_url: str, url: str) -> dict[str, Any]:
    """Fetch everything into lists, then write it all in one transaction at the end."""
    return _run(source_url, url, per_release_cb=False)


def per_release(source_url: str, url: str) -> dict[str, Any]:
    """Fetch a release, ``executemany`` it, commit; next release."""
    return _run(source_url, url, per_release_cb=True)


BASELINES: dict[str, Callable[[str, str], dict[str, Any]]] = {
    "accumulate-all": accumulate_all,
    "per-release": per_release,
}
