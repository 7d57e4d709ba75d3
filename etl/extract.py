"""Extract: stream the source release by release into the spool.

For each release listed by the source, fetch ``release.json``, then each artifact's four
files (in parallel, through a shared pool), and write the artifact as one row group the
moment its files are in.  The release file is published into ``ready/`` only when every
artifact is written, so a failed or killed release leaves nothing visible.  Memory is
bounded by the artifacts in flight (``ByteBudget``), never by the release count: pages of
the releases listing are consumed as a stream, and at most
:func:`~etl.cpus.release_threads` releases are open at once.

Two pools: ``workers`` fetch threads (waiting on the network: more than cores hides the
source's latency) and :func:`~etl.cpus.release_threads` release threads, CPU-bound once
their files are in (parse, check, encode, compress): more than the cores only pass the GIL
back and forth (``benchmarks/FINDINGS.md``); never fewer than two, so that one release's
``release.json`` round trip overlaps another's artifacts.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from urllib.parse import urljoin

from etl.config import Settings
from etl.cpus import release_threads
from etl.crashpoint import crash_point
from etl.errors import (
    EtlError,
    FatalFetchError,
    SpoolFullError,
)
from etl.extractevents import ExtractEvent, ExtractEventKind, ExtractReport
from etl.listing import release_key, walk
from etl.protocol import ARTIFACT_FILE_KEYS, ArtifactFileKey
from etl.source import ByteBudget, Document, ProductRef, ReleaseRef, SourceClient, Validators
from etl.source import documents as parse
from etl.source.artifact import artifact_row
from etl.source.choose import Source, open_source
from etl.source.gitlabsource import GitLabSource
from etl.source.jsontext import parse_json
from etl.spool import Spool, SpoolFile, SpoolName
from etl.spooling.memory import ExtractMemory

__all__ = ["ExtractEvent", "ExtractEventKind", "ExtractReport", "extract", "extract_one"]
__all__ += ["list_changed"]

log = logging.getLogger(__name__)


class _ExtractRun:
    """State shared by the threads of one extract run."""

    def __init__(
        self,
        settings: Settings,
        spool: Spool,
        client: Source,
        state: ExtractMemory,
        progress: Callable[[ExtractEvent], None] | None,
    ) -> None:
        self.settings = settings
        self.spool = spool
        self.client = client
        self.state = state
        self.progress = progress
        self.report = ExtractReport()
        self.lock = threading.Lock()
        self.known = 0
        self.done = 0
        self.stop = threading.Event()
        self.interrupted = threading.Event()
        self.files = ThreadPoolExecutor(settings.workers, thread_name_prefix="fetch")
        self.submit_lock = threading.Lock()
        self.spooled_versions = spool.spooled_versions()

    def interrupt(self) -> None:
        """Ctrl-C: start nothing new, end every wait and read now (workers then fail fast,
        and their partial files are removed by the spool writer)."""
        self.interrupted.set()
        self.stop.set()
        self.client.cancel()
        self.files.shutdown(wait=False, cancel_futures=True)

    def emit(self, kind: ExtractEventKind, release: str, detail: str = "") -> None:
        if kind == "failed" and self.interrupted.is_set():
            log.debug("release %s stopped by the interrupt: %s", release, detail)
            return
        with self.lock:
            if kind == "listed":
                self.known += 1
            elif kind != "listing-done":  # the last product's listing ended: total is final
                self.done += 1
            if kind == "spooled":
                self.report.spooled.append(detail)
            elif kind == "unchanged":
                self.report.unchanged.append(release)
            elif kind == "failed":
                self.report.failed.append((release, detail))
            event = ExtractEvent(
                kind,
                release,
                detail,
                self.known,
                self.done,
                int(self.client.stats.get("bytes", 0)),
            )
        if kind == "failed":  # the report (and the CLI) says it; the log only for -v
            log.info("release %s failed: %s", release, detail)
        elif kind not in ("listed", "listing-done"):
            log.info("release %s %s %s", release, kind, detail)
        if self.progress is not None:
            self.progress(event)

    # --- one release ---------------------------------------------------------------

    def is_current(self, ref: ReleaseRef) -> bool:
        if self.settings.full or ref.updated_at is None:
            return False
        if ref.fingerprint is not None:  # GitLab: the listing's digest, not updated_at alone
            return self.remembers(ref.product, ref.version, ref.fingerprint)
        key = SpoolName.key(ref.product, ref.version)
        if ref.updated_at in self.spooled_versions.get(key, set()):
            return True
        known = self.state.release(ref.product, ref.version)
        return known is not None and known.updated_at == ref.updated_at

    def release(self, ref: ReleaseRef) -> None:
        key = release_key(ref)
        if self.stop.is_set():
            return
        try:
            outcome = self._release(ref, key)
        except SpoolFullError as exc:
            self.stop.set()
            with self.lock:
                self.report.fatal = str(exc)
            self.emit("failed", key, str(exc))
            return
        except EtlError as exc:
            self.failed(ref, key, str(exc))
            return
        except Exception as exc:  # a bug must not take the other releases down with it
            if self.interrupted.is_set():  # e.g. a fetch cancelled by the interrupt
                return
            log.exception("unexpected error in release %s", key)
            self.failed(ref, key, f"internal error {type(exc).__name__}: {exc}")
            return
        self.emit(outcome[0], key, outcome[1])

    def failed(self, ref: ReleaseRef, key: str, reason: str) -> None:
        """A failed release, kept in the spool's memory for ``status`` too."""
        if not self.interrupted.is_set():
            with contextlib.suppress(EtlError):  # the report and log still say it
                self.state.release_failed(ref.product, ref.version, ref.url, reason)
        self.emit("failed", key, reason)

    def remembers(self, product: str, version: str, fingerprint: str) -> bool:
        """GitLab: the memory holds this fingerprint (released_at, wheels links)."""
        known = self.state.release(product, version)
        return known is not None and known.etag == fingerprint

    def _release(self, ref: ReleaseRef, key: str) -> tuple[ExtractEventKind, str]:
        if ref.error is not None:
            raise ref.error
        if isinstance(self.client, GitLabSource):
            return self._gitlab_release(self.client, ref, key)
        known = None if self.settings.full else self.state.release(ref.product, ref.version)
        conditional = None
        if known is not None and (known.etag or known.last_modified):
            conditional = Validators(known.etag, known.last_modified)
        read_at = datetime.now(UTC)  # the file's extracted_at: when this snapshot was read
        doc = self.client.get(
            ref.url, release=key, conditional=conditional, group=("release.json", key)
        )
        if doc is None:  # 304: release.json unchanged since last spooled
            return "unchanged", "304 Not Modified"
        try:
            raw = parse_json(doc.data, url=doc.url, release=key)
        finally:
            doc.release()
        rel = parse.parse_release_doc(raw, product=ref.product, version=ref.version, url=doc.url)
        if ref.updated_at is not None and rel.updated_at != ref.updated_at:
            log.warning(
                "release %s: listing says updated_at %s, release.json says %s; using the latter",
                key,
                ref.updated_at,
                rel.updated_at,
            )
        pending: list[dict[ArtifactFileKey, Future[Document | None]]] = []
        try:
            path = self._write(rel, doc.url, key, pending, read_at)
        finally:  # failed: what the next artifact fetches is freed as soon as it arrives
            for fut in (f for futures in pending for f in futures.values()):
                fut.cancel()
                fut.add_done_callback(_discard)
        self.state.remember(
            rel.product, rel.version, rel.updated_at, etag=doc.validators.etag,
            last_modified=doc.validators.last_modified, file_name=path.name,
        )  # fmt: skip
        return "spooled", path.name

    def _gitlab_release(
        self, client: GitLabSource, ref: ReleaseRef, key: str
    ) -> tuple[ExtractEventKind, str]:
        """One GitLab release: its wheels tarballs streamed, one row each."""
        read_at = datetime.now(UTC)  # as for a protocol release: the later read wins at load
        rel = client.release(ref)
        # a worker (no listing detail): its listing may be older than the memory
        worker = ref.detail is None and not self.settings.full
        if worker and self.remembers(ref.product, rel.version, rel.fingerprint):
            return "unchanged", "same released_at and wheels links"
        compression = self.settings.spool_compression
        with self.spool.writer(
            ref.product, rel.version, rel.updated_at, ref.url, compression, read_at
        ) as writer:
            client.spool_artifacts(rel, writer, release=key, stop=self.stop)
            path = writer.commit()
        self.state.remember(  # the fingerprint is the release's validator, as an ETag is
            ref.product, rel.version, rel.updated_at, etag=rel.fingerprint,
            last_modified=None, file_name=path.name,
        )  # fmt: skip
        return "spooled", path.name

    def _write(
        self,
        rel: parse.ReleaseDoc,
        url: str,
        key: str,
        pending: list[dict[ArtifactFileKey, Future[Document | None]]],
        read_at: datetime,
    ) -> SpoolFile:
        with self.spool.writer(
            rel.product, rel.version, rel.updated_at, url, self.settings.spool_compression, read_at
        ) as writer:
            pending.extend(self._submit(url, a, key, 0) for a in rel.artifacts[:1])
            for i, art in enumerate(rel.artifacts):
                if self.stop.is_set():
                    raise FatalFetchError("run stopped", release=key)
                # fetch the next artifact's files while this one is converted and written
                if i + 1 < len(rel.artifacts):
                    pending.append(self._submit(url, rel.artifacts[i + 1], key, i + 1))
                docs = _gather(pending.pop(0))
                try:
                    writer.add(artifact_row(art, docs, release=key))
                finally:
                    for d in docs.values():
                        d.release()
                if writer.artifacts == 1:
                    crash_point("extract-mid-release")
            return writer.commit()

    def _submit(
        self, base: str, art: parse.ArtifactRef, key: str, index: int
    ) -> dict[ArtifactFileKey, Future[Document | None]]:
        """Queue one artifact's files as one budget group, together (no other artifact's
        files in between): the oldest unfinished artifact's files are then always the ones
        being fetched, which is what lets its group alone go over the byte budget."""
        group = ("artifact", key, index)
        assert isinstance(self.client, SourceClient)  # the protocol source's documents
        with self.submit_lock:
            return {
                name: self.files.submit(
                    self.client.get, urljoin(base, art.files[name]), release=key, group=group
                )
                for name in ARTIFACT_FILE_KEYS
            }


def _discard(fut: Future[Document | None]) -> None:
    """Done-callback of a fetch nobody will use: give its bytes back to the budget."""
    if not fut.cancelled() and fut.exception() is None:
        doc = fut.result()
        if doc is not None:
            doc.release()


def _gather(
    futures: dict[ArtifactFileKey, Future[Document | None]],
) -> dict[ArtifactFileKey, Document]:
    """Wait for one artifact's files; on error, free what did arrive, then raise."""
    docs: dict[ArtifactFileKey, Document] = {}
    error: BaseException | None = None
    for name, fut in futures.items():
        try:
            doc = fut.result()
        except BaseException as exc:  # re-raised below after cleanup
            error = error or exc
            continue
        if doc is None:
            error = error or FatalFetchError(f"unexpected 304 for {name}")
            continue
        docs[name] = doc
    if error is not None:
        for d in docs.values():
            d.release()
        raise error
    return docs


def extract(
    settings: Settings,
    spool: Spool,
    *,
    progress: Callable[[ExtractEvent], None] | None = None,
) -> ExtractReport:
    """Extract every (or every named) product's releases into ``spool``; never raises for a
    single release: failures are in the report.  An unusable source (bad index) raises."""
    removed = spool.clean_tmp()
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted run", removed)
    budget = ByteBudget(settings.max_inflight_bytes)
    with open_source(settings, budget=budget) as client:
        run = _ExtractRun(settings, spool, client, ExtractMemory(spool), progress)
        try:
            _extract_products(run)
        except KeyboardInterrupt:
            run.report.interrupted = True
            log.warning("interrupted: stopping; complete release files are kept")
        finally:
            run.files.shutdown(wait=True, cancel_futures=True)
        run.report.stats = dict(client.stats)
        run.report.stats["budget_peak_bytes"] = budget.peak
        run.report.stats["budget_overdrafts"] = budget.overdrafts
        return run.report


def list_changed(
    settings: Settings, spool: Spool, on_changed: Callable[[ReleaseRef], None]
) -> ExtractReport:
    """List as :func:`extract` does (same products, same incremental test), fetch nothing
    more, and call ``on_changed`` for each release that is not current.  The report holds
    the unchanged and the failed (an unknown product raises :class:`ConfigError`)."""
    with open_source(settings, budget=ByteBudget(settings.max_inflight_bytes)) as client:
        run = _ExtractRun(settings, spool, client, ExtractMemory(spool), None)
        run.files.shutdown(wait=False)

        def changed(ref: ReleaseRef) -> None:
            if ref.error is not None:  # nothing to send: its task could only fail
                run.emit("failed", release_key(ref), str(ref.error))
            else:
                on_changed(ref)

        walk(run, changed, lambda product, seen, failed: None)
        run.report.stats = dict(client.stats)
        return run.report


def extract_one(settings: Settings, spool: Spool, ref: ReleaseRef) -> str | None:
    """Extract ONE listed release into ``ready/`` as :func:`extract` does: the file's name,
    or None when unchanged (304).  Errors (:class:`EtlError`) are raised for the caller to
    retry or fail; a release's own failure is kept for ``status`` as :func:`extract` does."""
    memory = ExtractMemory(spool)
    with open_source(settings, budget=ByteBudget(settings.max_inflight_bytes)) as client:
        run = _ExtractRun(settings, spool, client, memory, None)
        try:
            kind, detail = run._release(ref, release_key(ref))
        except EtlError as exc:  # retried by the task / the run's stop: not the release's
            if not exc.retryable and not isinstance(exc, SpoolFullError):
                with contextlib.suppress(EtlError):
                    memory.release_failed(ref.product, ref.version, ref.url, str(exc))
            raise
        finally:
            run.files.shutdown(wait=True, cancel_futures=True)
        return detail if kind == "spooled" else None


def _extract_products(run: _ExtractRun) -> None:
    threads = release_threads(run.settings.workers)
    releases = ThreadPoolExecutor(threads, thread_name_prefix="release")
    slots = threading.BoundedSemaphore(threads * 2)  # bounded queue of releases

    def submit(ref: ReleaseRef) -> None:
        slots.acquire()
        fut = releases.submit(run.release, ref)
        fut.add_done_callback(lambda _f: slots.release())

    def product_done(product: ProductRef, seen: int, failed_before: int) -> None:
        # wait for this product's releases before stamping it as extracted
        for _ in range(threads * 2):
            slots.acquire()
        for _ in range(threads * 2):
            slots.release()
        run.state.product_done(product.name, seen, len(run.report.failed) - failed_before)

    try:
        walk(run, submit, product_done)
    except KeyboardInterrupt:
        run.interrupt()  # before waiting for the workers: they stop at once now
        releases.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        releases.shutdown(wait=True)
