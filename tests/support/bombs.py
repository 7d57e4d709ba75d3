"""Crafted spool files that are tiny on disk and huge once decoded (issue 23, item 1).

Written with pyarrow directly, not with wheels-etl's writer: a hostile file is whatever
bytes someone put in ``ready/``.  Footer and name are made consistent (the counts, the
release, ``updated_at`` and the hash prefix agree), so only the decoded size is wrong.

* :func:`drops_bomb`: one artifact with 2,000,000 identical drops in one zstd row group
  (about 90 kB: dictionary and run-length encoding make identical values nearly free);
* :func:`json_bomb`: one artifact whose dependency graph is a 200 MB JSON document (one
  long string; about 25 kB once compressed);
* :func:`evasive_bomb`: 100,000 drops sharing one 10,000-character file name.  The footer
  counts 100,000 values of a 10 kB dictionary, which the decoded-size estimate takes for
  a few MB; decoded, it is over a GB.  What the estimate cannot see, the loader's kill
  count catches.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from etl.spooling.format import DROP_TYPE, SCHEMA, FileMeta
from etl.spooling.names import spool_name

UPDATED = datetime(2026, 10, 1, 12, tzinfo=UTC)
BOMB_DROPS = 2_000_000
BOMB_JSON_BYTES = 200 * 1000 * 1000


def _write(folder: Path, release: str, drops: pa.Array, graph: str | None, ndrops: int) -> Path:
    digest = hashlib.sha256(f"bomb {release}".encode()).hexdigest()
    given = {
        "product": pa.array(["bomb"], pa.string()),
        "release": pa.array([release], pa.string()),
        "release_updated_at": pa.array([UPDATED], SCHEMA.field("release_updated_at").type),
        "architecture": pa.array(["x86_64"], pa.string()),
        "variant": pa.array(["cpu"], pa.string()),
        "build_id": pa.array(["b1"], pa.string()),
        "built_at": pa.array([UPDATED], SCHEMA.field("built_at").type),
        "dependency_graph": pa.array([graph], pa.large_string()),
        "constraints_file": pa.array(["[]"], pa.large_string()),
        "build_sequence_summary": pa.array(["[]"], pa.large_string()),
        "drops": pa.ListArray.from_arrays(
            pa.array([0, len(drops)], pa.int32()), drops, type=SCHEMA.field("drops").type
        ),
    }
    columns = [given.get(f.name, pa.nulls(1, f.type)) for f in SCHEMA]  # others: null
    table = pa.Table.from_arrays(columns, schema=SCHEMA)
    meta = FileMeta(
        schema_version=1,
        product="bomb",
        release=release,
        updated_at=UPDATED,
        extracted_at=UPDATED,
        source_url="http://example.invalid/bomb/release.json",
        content_sha256=digest,
        artifacts=1,
        drops=ndrops,
        json_bytes=len(graph or "") + 4,
    )
    folder.mkdir(parents=True, exist_ok=True)
    path: Path = folder / spool_name("bomb", release, UPDATED, digest)
    with pq.ParquetWriter(path, SCHEMA, compression="zstd") as writer:
        writer.add_key_value_metadata(meta.to_kv())
        writer.write_table(table, row_group_size=1)
    return path


def _drops(count: int, filename: str) -> pa.Array:
    one = {
        "filename": filename,
        "name": "a",
        "version": "1.0",
        "build_tag": None,
        "python_tag": "py3",
        "abi_tag": "none",
        "platform_tag": "any",
        "sha256": "0" * 64,
        "size": 1,
        "uploaded_at": UPDATED,
    }
    return pa.repeat(pa.scalar(one, DROP_TYPE), count)


def drops_bomb(folder: Path, release: str = "drops") -> Path:
    drops = _drops(BOMB_DROPS, "a-1.0-py3-none-any.whl")
    return _write(folder, release, drops, "{}", BOMB_DROPS)


def json_bomb(folder: Path, release: str = "json") -> Path:
    graph = '{"a": "' + "x" * (BOMB_JSON_BYTES - 9) + '"}'
    return _write(folder, release, pa.array([], DROP_TYPE), graph, 0)


EVASIVE_DROPS = 100_000


def evasive_bomb(folder: Path, release: str = "evasive") -> Path:
    drops = _drops(EVASIVE_DROPS, "a" * 10_000 + "-1.0-py3-none-any.whl")
    return _write(folder, release, drops, "{}", EVASIVE_DROPS)
