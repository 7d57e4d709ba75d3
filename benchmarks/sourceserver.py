"""The source server of a run, in its own process (so its CPU and GIL are not ours).

``python -m benchmarks.sourceserver ROOT`` prints the URL and serves until stdin closes;
:func:`source_server` starts it and yields the URL.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.harness import REPO


def serve(root: str) -> int:
    """Print the URL, serve until stdin closes."""
    try:
        sys.path.insert(0, str(REPO))
        from tests.support import httpserver
        from tests.support.httpserver import SourceServer

        # The handler writes headers and body in two send()s on a keep-alive connection:
        # with Nagle on, every response then waits for the client's delayed ACK (~40 ms).
        httpserver._Handler.disable_nagle_algorithm = True
        server: Any = SourceServer(Path(root))
        url = server.url

        def trim() -> None:  # the test server records every request; we do not need that
            while True:
                time.sleep(2)
                with server._lock:
                    server.requests.clear()

        import threading

        threading.Thread(target=trim, daemon=True).start()
    except ImportError:  # fallback: a plain static server
        import functools
        import threading
        from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

        class Quiet(SimpleHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=root))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    print(url, flush=True)
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
