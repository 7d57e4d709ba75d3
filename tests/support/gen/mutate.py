"""mutate_release: "changed at the source"."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from tests.support.gen.model import _h, _sha, bump_version, fmt_ts, parse_ts, wheel_name_part
from tests.support.gen.readback import _load, iter_release_entries, resolve
from tests.support.gen.render import _dump, dump_graph


# --------------------------------------------------------------------------------------
# mutate_release: "changed at the source"
# --------------------------------------------------------------------------------------
def _write_json(path: Path, doc: Any, *, compact: bool = False) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc) if compact else _dump(doc))
    os.replace(tmp, path)


def mutate_release(
    root: Path,
    product: str,
    version: str,
    *,
    drop_artifact: bool = False,
    withdraw_wheel: bool = False,
    rebuild_graph: bool = False,
) -> datetime:
    """Change one release in place and bump its ``updated_at``; returns the new value.

    * ``drop_artifact``: the last artifact disappears (its files are deleted).
    * ``withdraw_wheel``: the first wheel of every remaining artifact is withdrawn.
    * ``rebuild_graph``: every artifact is rebuilt (new build_id and built_at); one package
      moves to a newer version in graph.json, constraints.txt, the summary and wheels.json.

    The new ``updated_at`` is one minute after the newest one of the product, so it is
    distinct and newer than anything the ETL has seen. Works on any tree on disk.
    """
    root = Path(root)
    target: tuple[Path, dict[str, Any], Path] | None = None
    newest: datetime | None = None
    for name, page_path, entry, rel_path in iter_release_entries(root):
        if name != product:
            continue
        ts = parse_ts(entry["updated_at"])
        newest = ts if newest is None or ts > newest else newest
        if entry["version"] == version:
            target = (page_path, entry, rel_path)
    if target is None or newest is None:
        raise KeyError(f"no release {product} {version} in {root}")
    page_path, _entry, rel_path = target
    new_ts = newest + timedelta(minutes=1)

    rel = _load(rel_path)
    if drop_artifact:
        if len(rel["artifacts"]) < 2:
            raise ValueError("the release has a single artifact; refusing to drop it")
        gone = rel["artifacts"].pop()
        for url in gone["files"].values():
            path = resolve(rel_path, url, root)
            if path.exists() and not _shared(rel, rel_path, root, path):
                path.unlink()
        with_dir = resolve(rel_path, gone["files"]["dependency_graph"], root).parent
        if with_dir.exists() and not any(with_dir.iterdir()):
            shutil.rmtree(with_dir)
    if withdraw_wheel:
        for art in rel["artifacts"]:
            path = resolve(rel_path, art["files"]["wheels"], root)
            doc = _load(path)
            if doc["files"]:
                doc["files"].pop(0)
                _write_json(path, doc)
    if rebuild_graph:
        bumped: dict[Path, tuple[str, str, str]] = {}  # graph file -> (name, old, new)
        for n, art in enumerate(rel["artifacts"]):
            _rebuild_artifact(rel_path, art, root, new_ts, n, bumped)
    rel["updated_at"] = fmt_ts(new_ts)
    _write_json(rel_path, rel)

    page = _load(page_path)
    for entry in page["releases"]:
        if entry["version"] == version:
            entry["updated_at"] = fmt_ts(new_ts)
    _write_json(page_path, page)
    return new_ts


def _shared(rel: dict[str, Any], rel_path: Path, root: Path, path: Path) -> bool:
    return any(
        resolve(rel_path, url, root) == path
        for a in rel["artifacts"]
        for url in a["files"].values()
    )


def _rebuild_artifact(
    rel_path: Path,
    art: dict[str, Any],
    root: Path,
    new_ts: datetime,
    n: int,
    bumped: dict[Path, tuple[str, str, str]],
) -> None:
    files = art["files"]
    graph_path = resolve(rel_path, files["dependency_graph"], root)
    if graph_path in bumped:  # a graph file shared by several artifacts: bump it once
        name, old, new = bumped[graph_path]
    else:
        graph = _load(graph_path)
        keys = [k for k in graph if k and not graph[k].get("pre_built")]
        if not keys:
            return
        old_key = keys[_h(rel_path.relative_to(root).as_posix(), len(keys)) % len(keys)]
        node = graph[old_key]
        name, old = node["canonicalized_name"], node["version"]
        new = bump_version(old)
        while f"{name}=={new}" in graph:
            new = bump_version(new)
        new_key = f"{name}=={new}"
        rebuilt: dict[str, Any] = {}
        for key, value in graph.items():
            for edge in value["edges"]:
                if edge["key"] == old_key:
                    edge["key"] = new_key
                    edge["req"] = edge["req"].replace(f"=={old}", f"=={new}")
            if key == old_key:
                value["version"] = new
                value["download_url"] = value["download_url"].replace(f"-{old}", f"-{new}")
                rebuilt[new_key] = value
            else:
                rebuilt[key] = value
        graph_path.write_text(dump_graph(rebuilt))
        bumped[graph_path] = (name, old, new)

    c_path = resolve(rel_path, files["constraints_file"], root)
    lines = c_path.read_text().splitlines()
    out = []
    for line in lines:
        if not line.startswith("#") and line.split(";")[0].strip() == f"{name}=={old}":
            line = line.replace(f"{name}=={old}", f"{name}=={new}", 1)
        out.append(line)
    c_path.write_text("".join(line + "\n" for line in out))

    s_path = resolve(rel_path, files["build_sequence_summary"], root)
    summary = _load(s_path)
    stem_old = f"{wheel_name_part(name)}-{old}-"
    stem_new = f"{wheel_name_part(name)}-{new}-"
    for entry in summary:
        if str(canonicalize_name(entry["name"])) == name and entry["version"] == old:
            entry["version"] = new
            entry["download_url"] = entry["download_url"].replace(f"-{old}", f"-{new}")
            entry["wheel_filename"] = entry["wheel_filename"].replace(stem_old, stem_new)
    _write_json(s_path, summary, compact=True)

    build_id = f"{art.get('build_id') or 'build'}-rebuild"
    art["build_id"] = build_id
    built_at = new_ts - timedelta(minutes=30) + timedelta(seconds=n)
    art["built_at"] = fmt_ts(built_at)
    w_path = resolve(rel_path, files["wheels"], root)
    wheels = _load(w_path)
    for k, f in enumerate(wheels["files"]):
        fn = (
            f["filename"].replace(stem_old, stem_new)
            if f["filename"].startswith(stem_old)
            else f["filename"]
        )
        f["filename"] = fn
        f["hashes"] = {"sha256": _sha(build_id, fn)}
        f["upload-time"] = fmt_ts(built_at + timedelta(seconds=k))
    wheels["files"].sort(key=lambda f: f["filename"])
    _write_json(w_path, wheels)
