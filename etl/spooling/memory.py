"""Incremental-extract memory, stored through the spool (so it lives where the spool does).

Per release: why its last extract failed, if it did (release, URL, reason, when; removed
once it is spooled), the ``updated_at`` last spooled, the ``ETag``/``Last-Modified`` of its
``release.json``, and the file it went to.  Per product: when it was last extracted.
Each is one small JSON object under the spool's ``state/`` (``release~<product>~<release>
.json``, ``product~<product>.json``), written whole, so it works the same in a local folder
and on object storage, and an extractor on another machine sees it.  Two extractors
writing the same release's record write the same facts; the last one wins.  Spool file
names carry ``updated_at`` too, so losing these records costs only the conditional
requests for releases whose files were pruned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from etl.spool import Spool
from etl.spooling.names import name_part, release_stem
from etl.timestamps import format_ts, now_ts, parse_ts


@dataclass(frozen=True)
class ReleaseState:
    updated_at: datetime
    etag: str | None
    last_modified: str | None
    file_name: str | None


@dataclass(frozen=True)
class ExtractFailure:
    """A release the last extract of it could not spool (kept until it is spooled)."""

    release: str
    url: str
    reason: str  # the whole message, on one line
    at: str  # ...Z


@dataclass(frozen=True)
class ProductState:
    product: str
    last_extracted_at: str
    releases_seen: int
    releases_failed: int
    failures: list[ExtractFailure] = field(default_factory=list)


def _release_record(product: str, release: str) -> str:
    return f"release~{release_stem(product, release)}.json"


def _failure_record(product: str, release: str) -> str:
    return f"failure~{release_stem(product, release)}.json"


def _str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


class ExtractMemory:
    """The memory of one spool (thread-safe: every call is one whole-object read or write)."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool

    def release(self, product: str, release: str) -> ReleaseState | None:
        data = self.spool.read_record(_release_record(product, release))
        if not isinstance(data, dict) or not isinstance(data.get("updated_at"), str):
            return None
        if (data.get("product"), data.get("release")) != (product, release):
            return None  # another release whose shortened name collides: not ours
        file_name = _str(data, "file_name")
        if file_name is not None and self._lost(file_name):
            return None  # its file failed as corrupt: what was remembered is no use
        try:
            updated_at = parse_ts(data["updated_at"])
        except ValueError:
            return None
        return ReleaseState(
            updated_at, _str(data, "etag"), _str(data, "last_modified"), _str(data, "file_name")
        )

    def _lost(self, file_name: str) -> bool:
        """The remembered file sits in failed/ as corrupt, with no usable copy anywhere
        (``find`` looks in ``failed`` last: found there, it is in no other state)."""
        found = self.spool.find(file_name)
        return found is not None and found.state == "failed" and self.spool.failed_as_corrupt(found)

    def remember(
        self,
        product: str,
        release: str,
        updated_at: datetime,
        *,
        etag: str | None,
        last_modified: str | None,
        file_name: str | None,
    ) -> None:
        self.spool.write_record(
            _release_record(product, release),
            {
                "product": product,
                "release": release,
                "updated_at": format_ts(updated_at),
                "etag": etag,
                "last_modified": last_modified,
                "file_name": file_name,
                "extracted_at": now_ts(),
            },
        )
        self.spool.delete_record(_failure_record(product, release))

    def release_failed(self, product: str, release: str, url: str, reason: str) -> None:
        """Keep why the release could not be spooled (shown by ``status``), until it is."""
        self.spool.write_record(
            _failure_record(product, release),
            {
                "product": product,
                "release": release,
                "url": url,
                "reason": " ".join(reason.split()),
                "at": now_ts(),
            },
        )

    def _failures(self) -> dict[str, list[ExtractFailure]]:
        """Every release failure kept, by product, each list sorted by release (every
        record read once: on object storage each read is a request)."""
        out: dict[str, list[ExtractFailure]] = {}
        for name in self.spool.records("failure~"):
            data = self.spool.read_record(name)
            product = data.get("product") if isinstance(data, dict) else None
            if not isinstance(product, str):
                continue
            out.setdefault(product, []).append(
                ExtractFailure(
                    str(data.get("release") or ""),
                    str(data.get("url") or ""),
                    str(data.get("reason") or ""),
                    str(data.get("at") or ""),
                )
            )
        for failures in out.values():
            failures.sort(key=lambda f: f.release)
        return out

    def product_done(self, product: str, seen: int, failed: int) -> None:
        self.spool.write_record(
            f"product~{name_part(product)}.json",
            {
                "product": product,
                "last_extracted_at": now_ts(),
                "releases_seen": seen,
                "releases_failed": failed,
            },
        )

    def products(self) -> list[ProductState]:
        failures = self._failures()
        out = []
        for name in self.spool.records("product~"):
            data = self.spool.read_record(name)
            if not isinstance(data, dict) or not isinstance(data.get("product"), str):
                continue
            out.append(
                ProductState(
                    data["product"],
                    str(data.get("last_extracted_at") or ""),
                    int(data.get("releases_seen") or 0),
                    int(data.get("releases_failed") or 0),
                    failures.get(data["product"], []),
                )
            )
        # a release that failed on a Celery worker: its product has no run record yet
        known = {p.product for p in out}
        for product, failed in failures.items():
            if product not in known:
                last = max((f.at for f in failed), default="")
                out.append(ProductState(product, last, 0, len(failed), failed))
        return sorted(out, key=lambda p: p.product)
