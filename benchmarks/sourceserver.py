"""The source server of a run, in its own process (so its CPU and GIL are not ours).

``python -m benchmarks.sourceserver ROOT`` prints the URL and serves until stdin closes;
:func:`source_server` starts it and yields the URL.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from benchmarks.harness import REPO


def serve(root: str) -> int:
    """Print the URL (the parent's readiness signal), serve until stdin closes."""
    sys.path.insert(0, str(REPO))
    from tests.support.httpserver import SourceServer

    with SourceServer(Path(root), record=False) as server:
        print(server.url, flush=True)
        sys.stdin.read()
    return 0


@contextlib.contextmanager
def source_server(root: Path) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.sourceserver", str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=str(REPO),
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"source server did not start (got {url!r})")
        yield url
    finally:
        with contextlib.suppress(Exception):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    raise SystemExit(serve(sys.argv[1]))
