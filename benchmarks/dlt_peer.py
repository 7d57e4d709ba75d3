"""The peer: the same source loaded into Postgres by dlt (optional; ``pip install .[bench]``).

A dlt resource walks the source release by release with ``requests`` (the same fetch code
as :mod:`benchmarks.baselines`) and yields one row per release, artifact and drop; the
three JSON documents are yielded parsed, with a ``json`` column hint, so dlt stores each as
one ``jsonb`` column (as wheels-etl does) rather than exploding it into child tables.

Variants (the knobs are the ones dlt's "Optimizing dlt" docs page names):

* ``defaults``: ``pipeline.run(...)`` as documented, nothing tuned (insert_values, gzip,
  5000-item buffers, 20 load threads);
* ``small-buffers``: ``loader_file_format="csv"``, ``DATA_WRITER__BUFFER_MAX_ITEMS=50``,
  ``DATA_WRITER__FILE_MAX_ITEMS=100`` -- dlt's documented memory knobs;
* ``tuned``: the same plus ``DATA_WRITER__DISABLE_COMPRESSION=true`` (its fastest setting
  in the peer study).

:func:`run_dlt` is called by ``benchmarks.measure`` in a fresh process with the variant's
environment already set (dlt reads its config from the environment at import).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {"format": None, "env": {}},
    "small-buffers": {
        "format": "csv",
        "env": {"DATA_WRITER__BUFFER_MAX_ITEMS": "50", "DATA_WRITER__FILE_MAX_ITEMS": "100"},
    },
    "tuned": {
        "format": "csv",
        "env": {
            "DATA_WRITER__BUFFER_MAX_ITEMS": "50",
            "DATA_WRITER__FILE_MAX_ITEMS": "100",
            "DATA_WRITER__DISABLE_COMPRESSION": "true",
        },
    },
}
BASE_ENV = {"RUNTIME__DLTHUB_TELEMETRY": "false", "RUNTIME__LOG_LEVEL": "WARNING"}
JSON_HINTS = {
    c: {"data_type": "json"}
    for c in ("dependency_graph", "constraints_file", "build_sequence_summary")
}


def available() -> str | None:
    """dlt's version, or None when it is not installed."""
    try:
        import dlt
    except ImportError:
        return None
    return str(getattr(dlt, "__version__", "?"))


def variant_env(variant: str) -> dict[str, str]:
    return {**BASE_ENV, **VARIANTS[variant]["env"]}


def dsn_with_password(url: str) -> str:
    """dlt insists on a password even under trust auth: add a dummy one."""
    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(url)
    host = p.get("host", "127.0.0.1")
    port = p.get("port", "5432")
    return f"postgresql://{p.get('user', 'postgres')}:bench@{host}:{port}/{p['dbname']}"


def _rows(source_url: str) -> Iterator[Any]:
    import dlt
    import requests

    from benchmarks.baselines import DROP_ROW_COLUMNS, fetch_release, iter_releases

    cols = ("product", "release", "architecture", "variant", "build_id", "built_at")
    with requests.Session() as session:
        for product, url in iter_releases(session, source_url):
            rel = fetch_release(session, product, url)
            yield dlt.mark.with_table_name(
                {
                    "product": rel.product,
                    "release": rel.version,
                    "updated_at": rel.updated_at,
                    "artifact_count": len(rel.artifacts),
                    "drop_count": len(rel.drops),
                },
                "releases",
            )
            for a in rel.artifacts:
                row = dict(zip(cols, a[:6], strict=True))
                row["dependency_graph"], row["constraints_file"] = a[6], a[7]
                row["build_sequence_summary"], row["drop_count"] = a[8], a[9]
                yield dlt.mark.with_table_name(row, "artifacts")
            for d in rel.drops:
                yield dlt.mark.with_table_name(dict(zip(DROP_ROW_COLUMNS, d, strict=True)), "drops")


def drop_dataset(url: str, variant: str, pipelines_dir: str) -> None:
    """Remove what :func:`run_dlt` left (its schemas and its pipeline folder)."""
    import psycopg

    dataset = "dlt_" + variant.replace("-", "_")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {dataset} CASCADE")
        conn.execute(f"DROP SCHEMA IF EXISTS {dataset}_staging CASCADE")
    shutil.rmtree(os.path.join(pipelines_dir, f"wetl_bench_{dataset}"), ignore_errors=True)


def run_dlt(source_url: str, url: str, variant: str, pipelines_dir: str) -> dict[str, Any]:
    """Extract + normalize + load the whole source with dlt; returns step times and rows."""
    import dlt
    import psycopg

    dataset = "dlt_" + variant.replace("-", "_")
    name = f"wetl_bench_{dataset}"
    shutil.rmtree(os.path.join(pipelines_dir, name), ignore_errors=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {dataset} CASCADE")
        conn.execute(f"DROP SCHEMA IF EXISTS {dataset}_staging CASCADE")

    resource = dlt.resource(
        _rows(source_url), name="wheels", write_disposition="append", columns=JSON_HINTS
    )
    pipeline = dlt.pipeline(
        pipeline_name=name,
        destination=dlt.destinations.postgres(dsn_with_password(url)),
        dataset_name=dataset,
        pipelines_dir=pipelines_dir,
    )
    t0 = time.perf_counter()
    fmt = VARIANTS[variant]["format"]
    if fmt:
        pipeline.run(resource, loader_file_format=fmt)
    else:
        pipeline.run(resource)
    seconds = time.perf_counter() - t0
    trace = pipeline.last_trace
    steps = {
        s.step: (s.finished_at - s.started_at).total_seconds()
        for s in (trace.steps if trace is not None else [])
        if s.finished_at is not None
    }
    counts = {}
    with psycopg.connect(url) as conn:
        for t in ("releases", "artifacts", "drops"):
            row = conn.execute(f"SELECT count(*) FROM {dataset}.{t}").fetchone()
            counts[t] = int(row[0]) if row else 0
        kinds = conn.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = %s"
            " AND table_name = 'artifacts' AND column_name = 'dependency_graph'",
            [dataset],
        ).fetchone()
    return {
        "seconds": seconds,
        "steps": steps,
        "counts": counts,
        "json_column_type": kinds[0] if kinds else None,
    }
