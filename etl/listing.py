"""The source's listing, walked the same way for ``extract`` and for the workers' listing
task: which products (the unknown-product rule), which releases, and which of them are
current (spooled with the same ``updated_at``) and which changed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from etl.config import Settings
from etl.errors import ConfigError, EtlError, FatalFetchError
from etl.extractevents import ExtractEventKind, ExtractReport
from etl.source import ByteBudget, ProductRef, ReleaseRef
from etl.source.choose import Source, open_source
from etl.spool import SpoolName

__all__ = ["Walk", "find_release", "release_key", "walk", "wanted_products"]


class Walk(Protocol):
    """What the listing loop needs from an extract run."""

    settings: Settings
    client: Source
    stop: threading.Event
    report: ExtractReport

    def emit(self, kind: ExtractEventKind, release: str, detail: str = "") -> None: ...

    def is_current(self, ref: ReleaseRef) -> bool: ...


def release_key(ref: ReleaseRef) -> str:
    """``product/version``; for a listing entry without a valid version, where it was
    listed (``rhai (releases page 2 entry 7)``), as its error says."""
    if ref.version or ref.error is None or not ref.error.release:
        return SpoolName.key(ref.product, ref.version)
    return ref.error.release


def wanted_products(products: list[ProductRef], wanted: tuple[str, ...]) -> list[ProductRef]:
    """The products ``--product`` names (all when none): THE unknown-product rule, naming
    one the index lacks is a :class:`ConfigError` (exit 2 from ``extract`` and
    ``enqueue`` alike)."""
    if not wanted:
        return products
    names, chosen = {p.name for p in products}, set(wanted)
    missing = sorted(chosen - names)
    if missing:
        listed = ", ".join(sorted(n for n in names if n)) or "none"
        raise ConfigError(f"unknown product {', '.join(missing)}: the source index lists {listed}")
    return [p for p in products if p.name in chosen]


def walk(
    run: Walk,
    on_changed: Callable[[ReleaseRef], None],
    on_product_done: Callable[[ProductRef, int, int], None],
) -> None:
    """THE listing loop (of :func:`etl.extract.extract` and :func:`~etl.extract.list_changed`):
    every wanted product's releases, each either current (``unchanged``) or handed to
    ``on_changed``; ``on_product_done(product, listed, failed)`` after each product's
    listing; ``listing-done`` (the total is final) once at the end, whatever happened to the
    last product (its entry bad, its listing broken off, the run stopped)."""
    try:
        _walk(run, wanted_products(run.client.products(), run.settings.products),
              on_changed, on_product_done)  # fmt: skip
    finally:
        run.emit("listing-done", "")


def _walk(
    run: Walk,
    products: list[ProductRef],
    on_changed: Callable[[ReleaseRef], None],
    on_product_done: Callable[[ProductRef, int, int], None],
) -> None:
    for product in products:
        if run.stop.is_set():
            break
        if product.error is not None:
            run.emit("failed", product.name, str(product.error))
            continue
        failed_before = len(run.report.failed)
        seen = 0
        try:
            for ref in run.client.releases(product):
                if run.stop.is_set():
                    break
                seen += 1
                run.emit("listed", release_key(ref))
                if ref.error is None and run.is_current(ref):
                    same = "same updated_at" if ref.fingerprint is None else "same fingerprint"
                    run.emit("unchanged", release_key(ref), same)
                    continue
                on_changed(ref)
        except EtlError as exc:  # listing broke off: what was listed still goes on
            run.emit("failed", f"{product.name} (listing)", str(exc))
        on_product_done(product, seen, failed_before)


def find_release(settings: Settings, ref: ReleaseRef) -> ReleaseRef:
    """The listing's entry for ``ref``'s product and version, read again from the source:
    for a release whose URL was not sent through the broker because it holds a secret
    (:func:`etl.workers.tasks.ref_to_json`).  Raises :class:`FatalFetchError` when the
    source no longer lists it."""
    with open_source(settings, budget=ByteBudget(settings.max_inflight_bytes)) as client:
        for product in client.products():
            if product.name != ref.product:
                continue
            if product.error is not None:
                raise product.error
            for entry in client.releases(product):
                if entry.version == ref.version:
                    if entry.error is not None:
                        raise entry.error
                    found: ReleaseRef = entry
                    return found
    raise FatalFetchError("no longer listed by the source", release=release_key(ref))
