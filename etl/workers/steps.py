"""One step of each stage, for the tasks: list the source, extract ONE release, load ONE file.

Thin wrappers over the stage modules' own machinery (:mod:`etl.extract`'s run state and
release pipeline, :mod:`etl.load`'s per-file transaction), so a task does exactly what the
CLI does for that release or file, with the same incremental test, the same spool file and
the same failure record.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from etl.config import Settings
from etl.db.connect import connect
from etl.errors import (
    EtlError,
    FatalLoadError,
    SpoolFileError,
    SpoolFullError,
    TransientFetchError,
    TransientLoadError,
)
from etl.extract import ExtractReport, _key, _Run
from etl.load import FileResult, _failure, _migrate, load_file
from etl.source import ByteBudget, ReleaseRef, open_source
from etl.spool import Spool
from etl.spooling.memory import ExtractMemory


def list_changed(
    settings: Settings, spool: Spool, on_changed: Callable[[ReleaseRef], None]
) -> ExtractReport:
    """List the source and call ``on_changed`` for each release that is not current (the
    same incremental test as :func:`extract`); nothing is fetched beyond the listing.  The
    report holds the unchanged releases and the listing failures; ``spooled`` stays empty."""
    state = ExtractMemory(spool)
    try:
        with open_source(settings, budget=ByteBudget(settings.max_inflight_bytes)) as client:
            run = _Run(settings, spool, client, state, None)
            run.files.shutdown(wait=False)
            products = client.products()
            wanted = set(settings.products)
            for missing in sorted(wanted - {p.name for p in products}):
                run.emit("failed", missing, "product not in the source index")
            for product in (p for p in products if not wanted or p.name in wanted):
                if product.error is not None:
                    run.emit("failed", product.name, str(product.error))
                    continue
                try:
                    for ref in client.releases(product):
                        if ref.error is not None:
                            run.emit("failed", _key(ref), str(ref.error))
                        elif run.is_current(ref):
                            run.emit("unchanged", _key(ref), "same updated_at")
                        else:
                            on_changed(ref)
                except EtlError as exc:
                    run.emit("failed", f"{product.name} (listing)", str(exc))
            run.report.stats = dict(client.stats)
            return run.report
    finally:
        state.close()


def extract_release(settings: Settings, spool: Spool, ref: ReleaseRef) -> str | None:
    """Extract ONE listed release into ``ready/``; returns the spool file name, or None when
    its ``release.json`` answered 304.  Errors are raised, not reported (the caller decides
    between retrying and failing): :class:`EtlError` subclasses only."""
    state = ExtractMemory(spool)
    try:
        with open_source(settings, budget=ByteBudget(settings.max_inflight_bytes)) as client:
            run = _Run(settings, spool, client, state, None)
            try:
                kind, detail = run._release(ref, _key(ref))
            except (TransientFetchError, SpoolFullError):
                raise  # retried by the task / reported as the run's stop, not the release's
            except EtlError as exc:  # kept for `status`, as `wheels-etl extract` keeps it
                with contextlib.suppress(EtlError):
                    state.release_failed(ref.product, ref.version, ref.url, str(exc))
                raise
            finally:
                run.files.shutdown(wait=True, cancel_futures=True)
            return detail if kind == "spooled" else None
    finally:
        state.close()


def load_named(spool: Spool, conninfo: str, name: str) -> FileResult | None:
    """Load ONE spool file, found in ``ready`` (claimed) or left orphaned in ``loading``
    (adopted once its claim lapsed: completed from the ledger when it was committed).  None
    when there is nothing to do: already loaded or failed, gone, or claimed by another.

    A transient error puts the file back in ``ready`` and is raised (retry later); a fatal
    one sends it to ``failed`` with its error sidecar, exactly as :func:`load_spool` does,
    and is raised too.
    """
    found = spool.find(name)
    if found is None or found.state not in ("ready", "loading"):
        return None
    orphan = found.state == "loading"
    claim = spool.adopt(found.name) if orphan else spool.claim(found)
    if claim is None:
        return None
    try:
        with connect(conninfo) as conn:
            _migrate(conn)
            return load_file(conn, claim, orphan=orphan)
    except TransientLoadError:
        claim.retry()
        raise
    except (FatalLoadError, SpoolFileError) as exc:
        claim.fail(_failure(exc))
        raise
    finally:
        claim.close()  # no-op after a transition; leaves an orphan on anything unexpected
