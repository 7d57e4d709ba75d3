"""``wheels-etl search``: every build holding a wheel of a package (schema
``wheels-etl/search/1``, see ``docs/search-json.md``).

One indexed query: ``drops`` by ``name`` (``drops_name_version_idx``), each drop's origin
from its build's ``build_origins`` row and the release's ``updated_at``, both by key; the
``--version`` filter is PEP 440 (packaging) on the rows of that one name.
"""

from __future__ import annotations

from typing import Any

from etl.answers import store
from etl.timestamps import format_ts

SCHEMA = "wheels-etl/search/1"

QUERY = """SELECT d.product, d.release, d.architecture, d.variant, d.version, d.filename,
       o.origins[array_position(o.wheel_files, d.filename)] AS origin,
       d.sha256, d.size, d.build_tag, r.updated_at
FROM drops d
JOIN releases r ON r.product = d.product AND r.release = d.release
LEFT JOIN build_origins o ON o.product = d.product AND o.release = d.release
    AND o.architecture = d.architecture AND o.variant = d.variant
WHERE d.name = %(name)s AND (%(product)s::text IS NULL OR d.product = %(product)s)
ORDER BY r.updated_at DESC, d.product, d.release DESC, d.architecture, d.variant, d.filename"""

_FIELDS = ("product", "release", "architecture", "variant", "version", "filename", "origin",
           "sha256", "size", "build_tag")  # fmt: skip


def search(
    conninfo: str, name: str, *, version: str | None = None, product: str | None = None
) -> dict[str, Any]:
    """The ``wheels-etl/search/1`` document: matches newest release first."""
    canonical = store.package_name(name)
    spec = store.version_filter(version)
    with store.reader(conninfo) as conn:
        if product is not None:
            store.check_product(conn, product)
        rows = conn.execute(QUERY, {"name": canonical, "product": product}).fetchall()
    matches = [
        dict(zip(_FIELDS, row[:10], strict=True)) | {"release_updated_at": format_ts(row[10])}
        for row in rows
        if store.matches(spec, row[4])
    ]
    return {
        "schema": SCHEMA,
        "schema_version": 1,
        "name": canonical,
        "version": version,
        "product": product,
        "matches": matches,
    }


def text(doc: dict[str, Any]) -> str:
    """One line per match, aligned; a terminal's width for the usual names."""
    if not doc["matches"]:
        return f"no wheel of {doc['name']} found"
    rows = [
        (
            f"{m['product']} {m['release']}",
            f"{m['architecture']}/{m['variant']}",
            m["version"],
            m["origin"] or "-",
            m["filename"],
            f"{m['size']:,}",
            m["sha256"][:12],
        )
        for m in doc["matches"]
    ]
    head = ("release", "build", "version", "origin", "file", "bytes", "sha256")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = []
    for r in [head, *rows]:
        cells = [str(c).ljust(w) if i != 5 else str(c).rjust(w) for i, (c, w) in enumerate(
            zip(r, widths, strict=True))]  # fmt: skip
        lines.append("  ".join(cells).rstrip())
    builds = {(m["product"], m["release"], m["architecture"], m["variant"]) for m in doc["matches"]}
    lines.append(f"{len(doc['matches'])} wheel(s) of {doc['name']} in {len(builds)} build(s)")
    return "\n".join(lines)
