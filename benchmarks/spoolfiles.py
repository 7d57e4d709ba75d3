"""Spool files for the benchmarks: list, total, copy fresh, re-encode, read, and the one huge
release of section 3."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from etl.spooling import format as fmt


def spool_files(spool_dir: str | Path, state: str = "ready") -> list[Path]:
    return sorted((Path(spool_dir) / state).glob("*.parquet"))


def spool_totals(files: list[Path]) -> dict[str, int]:
    """Artifacts, drops, JSON bytes and file bytes of spool files (from their footers)."""
    tot = {"files": 0, "artifacts": 0, "drops": 0, "json_bytes": 0, "file_bytes": 0}
    for p in files:
        m = fmt.read_meta(p)
        tot["files"] += 1
        tot["artifacts"] += m.artifacts
        tot["drops"] += m.drops
        tot["json_bytes"] += m.json_bytes
        tot["file_bytes"] += p.stat().st_size
    tot["releases"] = tot["files"]
    tot["rows"] = tot["artifacts"] + tot["drops"] + tot["files"]
    return tot


def read_spool(spool_dir: str) -> dict[str, Any]:
    """Decode every column of every ready file (the loader's Parquet cost, no database)."""
    files = spool_files(spool_dir)
    t0 = time.perf_counter()
    n = 0
    for path in files:
        for tbl in row_groups(path, [f.name for f in fmt.SCHEMA]):
            n += tbl.num_rows
    return {"seconds": time.perf_counter() - t0, "rows": n}


def fresh_spool(src_ready: str | Path, dst: str | Path) -> Path:
    """A new spool root whose ``ready/`` hard-links the files of ``src_ready`` (instant)."""
    import shutil

    dst = Path(dst)
    shutil.rmtree(dst, ignore_errors=True)
    (dst / "ready").mkdir(parents=True)
    for p in sorted(Path(src_ready).glob("*.parquet")):
        os.link(p, dst / "ready" / p.name)
    return dst


def rewrite_codec(src_dir: str, dst_dir: str, codec: str) -> dict[str, Any]:
    """Copy every ready spool file with another Parquet codec (one row group per artifact,
    same key-value metadata, the writer extract uses); returns encode seconds and bytes."""
    src = spool_files(src_dir)
    out = Path(dst_dir) / "ready"
    out.mkdir(parents=True, exist_ok=True)
    total = 0
    t0 = time.perf_counter()
    for path in src:
        pf = pq.ParquetFile(path)
        kv = {
            k.decode(): v.decode()
            for k, v in (pf.metadata.metadata or {}).items()
            if k.decode().startswith(fmt.META_PREFIX)
        }
        dst = out / path.name
        with open(dst, "wb") as fh, fmt.parquet_writer(fh, codec) as w:  # extract's settings
            for i in range(pf.num_row_groups):
                tbl = pf.read_row_group(i).replace_schema_metadata(None)
                w.write_table(tbl.cast(fmt.SCHEMA), row_group_size=max(1, tbl.num_rows))
            w.add_key_value_metadata(kv)
        total += dst.stat().st_size
    return {"seconds": time.perf_counter() - t0, "bytes": total, "files": len(src)}


def big_release(tree: str, spool_dir: str, target_json_bytes: int) -> dict[str, Any]:
    """One spool file holding at least ``target_json_bytes`` of JSON in many artifacts.

    The artifacts of the first release of a generated source tree are parsed the way
    extract parses them, then written over and over (variant renamed ``<variant>-<n>``)
    through the spool's own ``ReleaseWriter`` until the target is reached.
    """
    import dataclasses
    import json as _json

    from etl.source import documents as parse
    from etl.source.constraints import constraints_to_json
    from etl.source.wheels import wheels_to_drops
    from etl.spool import Spool

    root = Path(tree)
    index = _json.loads((root / "index.json").read_text())
    product = index["products"][0]
    listing_path = root / product["releases"]
    listing = _json.loads(listing_path.read_text())
    rel_path = (listing_path.parent / listing["releases"][0]["url"]).resolve()
    raw = _json.loads(rel_path.read_text())
    rel = parse.parse_release_doc(
        raw, product=raw["product"], version=raw["version"], url=rel_path.as_uri()
    )
    rows = []
    for art in rel.artifacts:
        data = {k: (rel_path.parent / v).read_bytes() for k, v in art.files.items()}
        u = rel_path.as_uri()
        rows.append(
            fmt.ArtifactRow(
                architecture=art.architecture,
                variant=art.variant,
                build_id=art.build_id,
                built_at=art.built_at,
                dependency_graph=parse.json_document_text(
                    data["dependency_graph"], url=u, expect=dict
                ),
                constraints_file=constraints_to_json(data["constraints_file"], url=u),
                build_sequence_summary=parse.json_document_text(
                    data["build_sequence_summary"], url=u, expect=list
                ),
                drops=wheels_to_drops(data["wheels"], url=u),
            )
        )
    spool = Spool(spool_dir)
    t0 = time.perf_counter()
    with spool.writer(rel.product, rel.version, rel.updated_at, rel_path.as_uri()) as w:
        n = 0
        while w.json_bytes < target_json_bytes:
            base = rows[n % len(rows)]
            w.add(dataclasses.replace(base, variant=f"{base.variant}-{n // len(rows)}"))
            n += 1
        f = w.commit()
        json_bytes, drops = w.json_bytes, w.drops
    return {
        "path": str(Path(spool_dir) / f.state / f.name),
        "artifacts": n,
        "drops": drops,
        "json_bytes": json_bytes,
        "file_bytes": f.size,
        "seconds": time.perf_counter() - t0,
    }


def row_groups(path: Path, columns: list[str]) -> Iterator[pa.Table]:
    pf = pq.ParquetFile(path)
    for i in range(pf.num_row_groups):
        yield pf.read_row_group(i, columns=columns)
