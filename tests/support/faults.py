"""What the test HTTP server (:mod:`tests.support.httpserver`) can be told to do, and what it
records: :class:`Fault` (one scripted answer) and :class:`RecordedRequest`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

FaultKind = Literal["serve", "status", "reset", "short", "stall", "drip", "huge"]


@dataclass(frozen=True)
class Fault:
    """One scripted answer.  Build with the class methods."""

    kind: FaultKind
    code: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    after: int | None = 0
    seconds: float = 0.0
    size: int = 0
    chunked: bool = False
    #: ``status`` only: a ``Retry-After`` HTTP date this many seconds after the answer is
    #: sent (computed then, not when scripted: a slow machine must not turn it into the past)
    retry_after_in: float | None = None

    @classmethod
    def serve(cls) -> Fault:
        """Answer normally (from the tree)."""
        return cls("serve")

    @classmethod
    def status(cls, code: int, headers: dict[str, str] | None = None, body: bytes = b"") -> Fault:
        """A plain answer, e.g. ``Fault.status(429, {"Retry-After": "1"})``."""
        return cls("status", code=code, headers=tuple((headers or {}).items()), body=body)

    @classmethod
    def retry_at_date(cls, code: int, seconds: float) -> Fault:
        """``code`` with ``Retry-After: <HTTP date>`` ``seconds`` after it is sent."""
        return cls("status", code=code, retry_after_in=seconds)

    @classmethod
    def content(
        cls, data: bytes, *, code: int = 200, headers: dict[str, str] | None = None
    ) -> Fault:
        """This body instead of the file's (with a correct Content-Length)."""
        return cls("status", code=code, headers=tuple((headers or {}).items()), body=data)

    @classmethod
    def redirect(cls, location: str, code: int = 302) -> Fault:
        return cls("status", code=code, headers=(("Location", location),))

    @classmethod
    def reset(cls, after: int = 16) -> Fault:
        """Headers with the full Content-Length, ``after`` body bytes, then a TCP RST."""
        return cls("reset", after=after)

    @classmethod
    def short(cls, missing: int = 10) -> Fault:
        """Full Content-Length, then ``missing`` bytes fewer and a clean close."""
        return cls("short", size=missing)

    @classmethod
    def stall(cls, seconds: float, after: int | None = 0) -> Fault:
        """Go silent for ``seconds`` (``after=None``: before the status line; else after
        headers and ``after`` body bytes), then close."""
        return cls("stall", seconds=seconds, after=after)

    @classmethod
    def drip(cls, interval: float, *, head: bool = False) -> Fault:
        """A slow-drip server: one byte every ``interval`` seconds, of the body after
        normal headers, or (``head``) from the status line on; never silent for longer than
        ``interval``, so no read timeout fires."""
        return cls("drip", seconds=interval, after=None if head else 0)

    @classmethod
    def huge(cls, size: int, *, chunked: bool = False) -> Fault:
        """``size`` bytes of ``x`` (Content-Length unless ``chunked``); ``sent()`` says how
        many the client let through before hanging up."""
        return cls("huge", size=size, chunked=chunked)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    target: str  # path and query, as sent
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())
