"""What importing ``etl`` sets for the process before pyarrow (and numpy) load: Arrow's
allocator and OpenBLAS's threads; a value the user set wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys

_PROBE = (
    "import json, os, etl, pyarrow;"
    "print(json.dumps([os.environ.get('OPENBLAS_NUM_THREADS'),"
    " pyarrow.default_memory_pool().backend_name]))"
)
_OURS = ("ARROW_DEFAULT_MEMORY_POOL", "OPENBLAS_NUM_THREADS")


def _probe(**env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k not in _OURS}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env={**clean, **env}, capture_output=True, text=True,
        check=True, timeout=60,
    )  # fmt: skip
    got: list[str] = json.loads(out.stdout)
    return got


#: Arrow's allocator is chosen on Linux only (jemalloc is in pyarrow's Linux wheels).
_LINUX = sys.platform == "linux"


def test_import_sets_one_blas_thread_and_jemalloc() -> None:
    blas, pool = _probe()
    assert blas == "1"
    assert pool == "jemalloc" or not _LINUX


def test_the_users_values_win() -> None:
    blas, pool = _probe(OPENBLAS_NUM_THREADS="2", ARROW_DEFAULT_MEMORY_POOL="system")
    assert blas == "2"
    assert pool == "system"
