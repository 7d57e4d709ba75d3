"""Protocol constants and the axes a generated collection varies over."""

from __future__ import annotations

from datetime import UTC, datetime

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
