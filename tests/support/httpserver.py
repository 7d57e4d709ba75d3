"""A real HTTP server in a thread, serving a source tree, with scriptable faults.

Tests talk to it over real sockets (no mocks)::

    with SourceServer(tree) as server:
        server.script("/rhai/releases.json", [Fault.status(503), Fault.status(503)])
        client = SourceClient(Settings(source_url=server.url, ...))
        ...
        assert server.count("/rhai/releases.json") == 3

Serving
    ``GET /a/b.json`` reads ``root/a/b.json``; a query maps to a file name with ``@``:
    ``/rhai/releases.json?page=2`` reads ``root/rhai/releases.json@page=2``.  ``put()``
    serves bytes from memory instead.  Answers carry ``ETag`` and ``Last-Modified`` and
    honour ``If-None-Match`` / ``If-Modified-Since`` with a 304; ``gzip=True`` compresses
    when the client accepts it; ``chunked=True`` sends ``Transfer-Encoding: chunked``;
    ``tls=(cert.pem, key.pem)`` serves HTTPS.

Faults (:class:`Fault`)
    ``script(path, [...])`` queues faults for a path, one per request, then serves
    normally; ``always(path, fault)`` applies a fault to every request.  ``Fault.serve()``
    in a script means "answer normally this time".

Routes
    ``route(prefix, responder)`` answers every request whose path starts with ``prefix``
    with what ``responder(request)`` returns (an :class:`Answer`: status, headers, and a
    body as bytes or as an iterable of chunks, sent chunked): a dynamic server (the GitLab
    one in :mod:`tests.support.gitlabserver`) on the same machinery.  Scripted faults
    still come first.

Holding
    ``hold(path)`` returns an event: the next request for ``path`` waits until it is set,
    then is answered normally (``held(path)``: requests waiting now).  A test can stop a
    client in the middle of its work at a known point, with no timing.

Recording
    ``requests`` lists every request (method, target, headers incl. Authorization);
    ``count(path)`` and ``sent(path)`` (body bytes written, for the size-limit tests);
    ``served(path)``: normal answers whose body was written whole.
"""

from __future__ import annotations

import gzip as gzip_mod
import hashlib
import socket
import ssl
import struct
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.support.faults import Fault, RecordedRequest

__all__ = ["Answer", "Fault", "RecordedRequest", "SourceServer"]

CHUNK = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """What a route answers: ``body`` as bytes (with ``Content-Length``) or as chunks
    (``Transfer-Encoding: chunked``, produced while sending: nothing held whole)."""

    status: int = 200
    headers: Sequence[tuple[str, str]] = field(default_factory=tuple)
    body: bytes | Iterable[bytes] = b""


Responder = Callable[[RecordedRequest], Answer]


def _key(path: str) -> str:
    return path if path.startswith("/") else "/" + path


class SourceServer:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 (port 0) serving ``root``; see module doc."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        gzip: bool = False,
        chunked: bool = False,
        etag: bool = True,
        last_modified: bool = True,
        tls: tuple[Path, Path] | None = None,
        record: bool = True,
        host: str = "127.0.0.1",
    ) -> None:
        self.root = root
        self.record = record  # keep every request in ``requests`` (off: a long-lived server)
        self.gzip = gzip
        self.chunked = chunked
        self.etag = etag
        self.last_modified = last_modified
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Fault]] = defaultdict(deque)
        self._always: dict[str, Fault] = {}
        self._memory: dict[str, bytes] = {}
        self._sent: dict[str, int] = defaultdict(int)
        self._routes: list[tuple[str, Responder]] = []
        self._served: dict[str, int] = defaultdict(int)
        self._holds: dict[str, deque[threading.Event]] = defaultdict(deque)
        self._held: dict[str, int] = defaultdict(int)
        self._stop = threading.Event()
        self._httpd = _Server((host, 0), _Handler)
        self._httpd.owner = self
        if tls is not None:  # (certificate chain, private key), both PEM
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls[0], tls[1])
            self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
        self.port: int = self._httpd.server_address[1]
        self.url = f"{'https' if tls else 'http'}://{host}:{self.port}/"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    # --- configuration ----------------------------------------------------------------

    def script(self, path: str, faults: Sequence[Fault]) -> None:
        """Queue ``faults`` for ``path`` (path + query, e.g. ``/a.json?page=2``)."""
        with self._lock:
            self._scripts[_key(path)].extend(faults)

    def always(self, path: str, fault: Fault) -> None:
        with self._lock:
            self._always[_key(path)] = fault

    def put(self, path: str, data: bytes) -> None:
        """Serve ``data`` at ``path`` (overrides the tree)."""
        with self._lock:
            self._memory[_key(path)] = data

    def route(self, prefix: str, responder: Responder) -> None:
        """Answer requests under ``prefix`` with ``responder`` (see the module doc)."""
        with self._lock:
            self._routes.append((_key(prefix), responder))

    def hold(self, path: str) -> threading.Event:
        """The next request for ``path`` waits until the returned event is set."""
        gate = threading.Event()
        with self._lock:
            self._holds[_key(path)].append(gate)
        return gate

    def held(self, path: str) -> int:
        with self._lock:
            return self._held[_key(path)]

    def served(self, path: str) -> int:
        with self._lock:
            return self._served[_key(path)]

    def link(self, path: str) -> str:
        """Absolute URL of ``path`` on this server."""
        return self.url + path.lstrip("/")

    # --- what happened ---------------------------------------------------------------

    def count(self, path: str | None = None) -> int:
        with self._lock:
            if path is None:
                return len(self.requests)
            return sum(1 for r in self.requests if r.target == _key(path))

    def requests_for(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.target == _key(path)]

    def sent(self, path: str) -> int:
        """Body bytes written for ``path`` by ``Fault.huge`` answers."""
        with self._lock:
            return self._sent[_key(path)]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    # --- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SourceServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- used by the handler ---------------------------------------------------------

    def _take(self, rec: RecordedRequest) -> Fault | None:
        with self._lock:
            if self.record:
                self.requests.append(rec)
            queue = self._scripts.get(rec.target)
            if queue:
                return queue.popleft()
            return self._always.get(rec.target)

    def _route(self, path: str) -> Responder | None:
        with self._lock:
            for prefix, responder in self._routes:
                if path.startswith(prefix):
                    return responder
        return None

    def _lookup(self, target: str) -> tuple[bytes, float] | None:
        with self._lock:
            if target in self._memory:
                return self._memory[target], 0.0
        if self.root is None:
            return None
        parts = urlsplit(target)
        name = unquote(parts.path).lstrip("/") + (f"@{parts.query}" if parts.query else "")
        root = self.root.resolve()
        path = (root / name).resolve()
        if root not in path.parents or not path.is_file():
            return None
        return path.read_bytes(), path.stat().st_mtime

    def _wait_if_held(self, target: str) -> None:
        with self._lock:
            queue = self._holds.get(target)
            gate = queue.popleft() if queue else None
            if gate is not None:
                self._held[target] += 1
        if gate is None:
            return
        try:
            while not gate.wait(0.05) and not self._stop.is_set():
                pass
        finally:
            with self._lock:
                self._held[target] -= 1

    def _add_served(self, target: str) -> None:
        with self._lock:
            self._served[target] += 1

    def _add_sent(self, target: str, n: int) -> None:
        with self._lock:
            self._sent[target] += n


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: SourceServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-answer is what these tests do


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in two send()s on keep-alive connections: without this,
    # Nagle + delayed ACK stall every response by ~40 ms
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        rec = RecordedRequest("GET", self.path, {k.lower(): v for k, v in self.headers.items()})
        fault = owner._take(rec)
        try:
            responder = owner._route(rec.path)
            if (fault is None or fault.kind == "serve") and responder is not None:
                self._answer(owner, responder(rec))
            elif fault is None or fault.kind == "serve":
                owner._wait_if_held(rec.target)
                self._serve(owner, rec)
            else:
                getattr(self, f"_fault_{fault.kind}")(owner, rec, fault)
        except OSError:
            self.close_connection = True

    # --- normal answers --------------------------------------------------------------

    def _answer(self, owner: SourceServer, answer: Answer) -> None:
        if isinstance(answer.body, bytes):
            self._send(answer.status, answer.body, answer.headers)
            return
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for part in answer.body:
                if owner._stop.is_set():
                    break
                if part:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        finally:
            self.close_connection = owner._stop.is_set()

    def _serve(self, owner: SourceServer, rec: RecordedRequest) -> None:
        found = owner._lookup(rec.target)
        if found is None:
            self._send(404, b"not found\n", [("Content-Type", "text/plain")])
            return
        data, mtime = found
        headers: list[tuple[str, str]] = [("Content-Type", "application/octet-stream")]
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        if owner.etag:
            headers.append(("ETag", etag))
        if owner.last_modified and mtime:
            headers.append(("Last-Modified", formatdate(mtime, usegmt=True)))
        if self._not_modified(owner, rec, etag, mtime):
            self._send(304, b"", headers)
            return
        if owner.gzip and "gzip" in (rec.header("accept-encoding") or ""):
            data = gzip_mod.compress(data)
            headers.append(("Content-Encoding", "gzip"))
        self._send(200, data, headers, chunked=owner.chunked)
        self.wfile.flush()
        owner._add_served(rec.target)

    def _not_modified(
        self, owner: SourceServer, rec: RecordedRequest, etag: str, mtime: float
    ) -> bool:
        inm = rec.header("if-none-match")
        if inm is not None and owner.etag:
            tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
            return etag in tags or "*" in tags
        ims = rec.header("if-modified-since")
        if ims is not None and owner.last_modified and mtime:
            try:
                return int(mtime) <= parsedate_to_datetime(ims).timestamp()
            except (TypeError, ValueError):
                return False
        return False

    def _send(
        self,
        code: int,
        body: bytes,
        headers: Sequence[tuple[str, str]] = (),
        *,
        chunked: bool = False,
    ) -> None:
        self.send_response(code)
        for name, value in headers:
            self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 1000):
                part = body[i : i + 1000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if code != 304:
                self.wfile.write(body)

    def _body_for(self, owner: SourceServer, rec: RecordedRequest, fault: Fault) -> bytes:
        if fault.body is not None:
            return fault.body
        found = owner._lookup(rec.target)
        return found[0] if found else b"x" * 4096

    def _head(self, code: int, length: int | None) -> None:
        self.send_response(code)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    # --- faults ----------------------------------------------------------------------

    def _fault_status(self, owner: SourceServer, rec: RecordedRequest, fault: Fault) -> None:
        headers = list(fault.headers)
        if fault.retry_after_in is not None:
            when = formatdate(time.time() + fault.retry_after_in, usegmt=True)
            headers.append(("Retry-After", when))
        self._send(fault.code, fault.body or b"", headers)

    def _fault_reset(self, owner: SourceServer, rec: RecordedRequest, fault: Fault) -> None:
        body = self._body_for(owner, rec, fault)
        self._head(200, len(body))
        self.wfile.write(body[: fault.after or 0])
        self.wfile.flush()
        self._hard_close()

    def _fault_short(self, owner: SourceServer, rec: RecordedRequest, fault: Fault) -> None:
        body = self._body_for(owner, rec, fault)
        self._head(200, len(body))
        self.wfile.write(body[: max(0, len(body) - fault.size)])
        self.close_connection = True

    def _fault_stall(self, owner: SourceServer, rec: RecordedRequest, fault: Fault) -> None:
        if fault.after is not None:
            body = self._body_for(owner, rec, fault)
            self._head(200, len(body))
            self.wfile.write(body[: fault.after])
            self.wfile.flush()
        owner._stop.wait(fault.seconds)
        self.close_connection = True

    def _fault_drip(self, owner: SourceServer, rec: RecordedRequest, fault: Fault) -> None:
        body = self._body_for(owner, rec, fault)
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
        data = head + body
        if fault.after is not None:  # headers at once, then the body drop by drop
            self.wfile.write(head)
            data = body
        for i in range(len(data)):
            if owner._stop.wait(fault.seconds):
                break
            self.wfile.write(data[i : i + 1])
            owner._add_sent(rec.target, 1)
        self.close_connection = True

    def _fault_huge(self, owner: SourceServer, rec: RecordedRequest, fault: Fault) -> None:
        self._head(200, None if fault.chunked else fault.size)
        block = b"x" * CHUNK
        left = fault.size
        try:
            while left > 0 and not owner._stop.is_set():
                part = block[: min(CHUNK, left)]
                if fault.chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                else:
                    self.wfile.write(part)
                owner._add_sent(rec.target, len(part))
                left -= len(part)
            if fault.chunked:
                self.wfile.write(b"0\r\n\r\n")
        finally:
            self.close_connection = True

    def _hard_close(self) -> None:
        """Close with SO_LINGER 0: the peer gets a TCP RST (connection reset by peer)."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True
