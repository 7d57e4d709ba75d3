"""Reading a tree back (any protocol tree on disk, including etl/sample_collection)."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


# --------------------------------------------------------------------------------------
# Reading a tree back (any protocol tree on disk, including etl/sample_collection)
# --------------------------------------------------------------------------------------
def resolve(doc_path: Path, url: str, root: Path) -> Path:
    """The file a relative URL inside ``doc_path`` names (file trees only)."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        raise ValueError(f"absolute URL {url!r} cannot be resolved in a file tree")
    if parts.query or parts.fragment:
        raise ValueError(f"URL {url!r} has a query or fragment: not a static file")
    base = doc_path.parent.relative_to(root).as_posix()
    joined = posixpath.normpath(posixpath.join(base, parts.path))
    if joined.startswith("../") or joined == "..":
        raise ValueError(f"URL {url!r} in {doc_path} leaves the source root")
    return root / joined


def _load(path: Path) -> Any:
    with path.open("rb") as fh:
        return json.load(fh)


def iter_release_entries(root: Path) -> Iterator[tuple[str, Path, dict[str, Any], Path]]:
    """(product, page path, release entry, release.json path), page by page."""
    index_path = root / "index.json"
    index = _load(index_path)
    for product in index["products"]:
        page_path: Path | None = resolve(index_path, product["releases"], root)
        seen: set[Path] = set()
        while page_path is not None:
            if page_path in seen:
                raise ValueError(f"pagination loop at {page_path}")
            seen.add(page_path)
            page = _load(page_path)
            for entry in page["releases"]:
                yield product["name"], page_path, entry, resolve(page_path, entry["url"], root)
            nxt = page.get("next")
            page_path = resolve(page_path, nxt, root) if nxt else None
