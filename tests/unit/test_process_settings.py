"""What importing ``etl`` sets for the process before pyarrow (and numpy) load: Arrow's
allocator and OpenBLAS's threads; a value the user set wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

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


@pytest.mark.skipif(sys.platform != "linux", reason="the settings are made on Linux")
def test_import_sets_one_blas_thread_and_jemalloc() -> None:
    assert _probe() == ["1", "jemalloc"]


@pytest.mark.skipif(sys.platform != "linux", reason="the settings are made on Linux")
def test_the_users_values_win() -> None:
    assert _probe(OPENBLAS_NUM_THREADS="2", ARROW_DEFAULT_MEMORY_POOL="system") == ["2", "system"]
