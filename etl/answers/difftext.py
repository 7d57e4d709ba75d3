"""The two human forms of a ``wheels-etl/diff/1`` document: terminal text and Markdown
release-notes tables (pasteable into a merge request)."""

from __future__ import annotations

from typing import Any


def _build(b: dict[str, Any]) -> str:
    if b["variant_from"] == b["variant_to"]:
        return f"{b['architecture']}/{b['variant_from']}"
    if b["variant_from"] is None:
        return f"{b['architecture']}/{b['variant_to']}"
    if b["variant_to"] is None:
        return f"{b['architecture']}/{b['variant_from']}"
    return f"{b['architecture']}/{b['variant_from']} -> {b['variant_to']}"


def _vs(versions: list[str]) -> str:
    return ", ".join(versions)


def rows(b: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """``(change, package, from, to)`` for every difference of one build."""
    out = [("added", a["name"], "", _vs(a["versions"])) for a in b["added"]]
    out += [("removed", r["name"], _vs(r["versions"]), "") for r in b["removed"]]
    out += [(f"changed ({c['direction']})", c["name"], _vs(c["from"]), _vs(c["to"]))
            for c in b["changed"]]  # fmt: skip
    for r in b["rebuilt"]:
        tags = f" (build {_vs(r['build_tags_from']) or '-'} -> {_vs(r['build_tags_to']) or '-'})"
        out.append(("rebuilt", r["name"], r["version"], r["version"] + tags))
    out += [("origin changed", f"{o['name']} {o['version']}", o["from"] or "none",
             o["to"] or "none") for o in b["origin_changed"]]  # fmt: skip
    c = b["constraints"]
    out += [("constraint added", x["name"], "", _line(x)) for x in c["added"]]
    out += [("constraint removed", x["name"], _line(x), "") for x in c["removed"]]
    out += [("constraint changed", x["name"], " | ".join(x["from"]), " | ".join(x["to"]))
            for x in c["changed"]]  # fmt: skip
    return out


def _line(x: dict[str, Any]) -> str:
    return str(x["specifier"]) + (f"; {x['marker']}" if x["marker"] else "")


def _counts(b: dict[str, Any]) -> str:
    c = b["constraints"]
    parts = [
        f"{len(b[k])} {k.replace('_', ' ')}"
        for k in ("added", "removed", "changed", "rebuilt", "origin_changed")
        if b[k]
    ]
    n = len(c["added"]) + len(c["removed"]) + len(c["changed"])
    if n:
        parts.append(f"{n} constraint(s)")
    return ", ".join(parts)


def text(doc: dict[str, Any]) -> str:
    lines = [f"{doc['product']} {doc['from']} -> {doc['to']}"]
    for b in doc["builds"]:
        detail = _counts(b)
        lines.append(f"{_build(b)}: {b['status']}" + (f" ({detail})" if detail else ""))
        for change, name, old, new in rows(b):
            arrow = f"{old} -> {new}" if old and new else (new or old)
            lines.append(f"  {change:<19} {name:<28} {arrow}".rstrip())
    return "\n".join(lines)


def _cell(value: str) -> str:
    return value.replace("|", "\\|") or " "


def markdown(doc: dict[str, Any]) -> str:
    out = [f"## {doc['product']} {doc['from']} → {doc['to']}", ""]
    out += ["| build | status | added | removed | changed | rebuilt | origin changed "
            "| constraints |", "|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for b in doc["builds"]:
        c = b["constraints"]
        n = len(c["added"]) + len(c["removed"]) + len(c["changed"])
        counts = [len(b[k]) for k in ("added", "removed", "changed", "rebuilt", "origin_changed")]
        cells = [_cell(_build(b).replace("->", "→")), b["status"], *map(str, counts), str(n)]
        out.append("| " + " | ".join(cells) + " |")
    for b in doc["builds"]:
        changes = rows(b)
        if not changes:
            continue
        out += ["", f"### {_cell(_build(b).replace('->', '→'))}", ""]
        out += ["| change | package | from | to |", "|---|---|---|---|"]
        out += [f"| {' | '.join(_cell(x) for x in r)} |" for r in changes]
    return "\n".join(out)
