"""Writing one release's spool file: Parquet row groups streamed into the spool's store.

:class:`ReleaseFileWriter` is the format side (one row group per artifact, the content
hash, the footer metadata, the file's name); :class:`ReleaseWriter` the spool side (an
upload that becomes visible in ``ready`` only complete, errors named after the release).
Get one from :meth:`etl.spool.Spool.writer`.  Below the spool: it knows the store, not
the :class:`~etl.spool.Spool`.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, NoReturn

import pyarrow as pa
import pyarrow.parquet as pq

from etl.errors import FatalFetchError, SpoolError, SpoolFullError
from etl.spooling.checks import oversized
from etl.spooling.format import (
    JSON_COLUMNS,
    SPOOL_SCHEMA_VERSION,
    ArtifactRow,
    FileMeta,
    parquet_writer,
)
from etl.spooling.names import SpoolFile, SpoolName, release_stem, spool_name
from etl.spooling.rows import ContentHasher, artifact_table, drops_array
from etl.spooling.store import SpoolStore, Upload

#: The Parquet writer makes about 60 small writes per artifact (a page header, a page, per
#: column); into a Python stream each one takes the GIL back from the fetch threads.  They
#: are gathered in native code and reach the stream in writes of this size.
WRITE_BUFFER = 256 * 1024


def _utf8_length(text: str | None) -> int:
    """The UTF-8 size of ``text`` without encoding it when it is ASCII (as JSON documents
    mostly are: ``isascii`` reads a flag, ``encode`` copies megabytes)."""
    if not text:
        return 0
    return len(text) if text.isascii() else len(text.encode())


class ReleaseFileWriter:
    """One release's artifacts, one row group each, into a stream; :meth:`finish` writes
    the footer and returns the file's name (which carries the content hash)."""

    def __init__(
        self,
        stream: IO[bytes] | pa.NativeFile,
        product: str,
        release: str,
        updated_at: datetime,
        source_url: str,
        compression: str = "lz4",
        read_at: datetime | None = None,
    ) -> None:
        self.product, self.release, self.updated_at = product, release, updated_at
        self.source_url = source_url
        self.read_at = read_at
        self.hasher = ContentHasher(product, release, updated_at)
        self.artifacts = self.drops = self.json_bytes = 0
        self.pending = 0  # in-memory bytes of the artifact being written
        self._sink: pa.BufferedOutputStream | None = None
        if not isinstance(stream, pa.NativeFile):
            self._sink = pa.BufferedOutputStream(
                pa.PythonFile(stream, mode="w"), buffer_size=WRITE_BUFFER
            )
        self._writer: pq.ParquetWriter | None = parquet_writer(self._sink or stream, compression)

    def add(self, row: ArtifactRow) -> None:
        assert self._writer is not None, "file already finished"
        drops = drops_array(row.drops)
        table = artifact_table(self.product, self.release, self.updated_at, row, drops)
        self.pending = table.nbytes
        self._writer.write_table(table, row_group_size=1)
        self.pending = 0
        self.hasher.add(row, drops)
        self.artifacts += 1
        self.drops += len(row.drops)
        self.json_bytes += sum(_utf8_length(getattr(row, c)) for c in JSON_COLUMNS)

    def finish(self) -> str:
        assert self._writer is not None, "file already finished"
        digest = self.hasher.hexdigest()
        meta = FileMeta(
            schema_version=SPOOL_SCHEMA_VERSION,
            product=self.product,
            release=self.release,
            updated_at=self.updated_at,
            # when the source was read, not now: of two reads of one updated_at that saw
            # different content, the later read wins at load, whichever finished first
            extracted_at=self.read_at or datetime.now(UTC),
            source_url=self.source_url,
            content_sha256=digest,
            artifacts=self.artifacts,
            drops=self.drops,
            json_bytes=self.json_bytes,
        )
        self._writer.add_key_value_metadata(meta.to_kv())
        self._writer.close()
        footer = self._writer.writer.metadata
        self._writer = None
        self._release_sink(flush=True)
        too_large = oversized(footer)  # what load would refuse is never published
        if too_large is not None:
            raise FatalFetchError(
                f"{too_large}: not spooled", release=SpoolName.key(self.product, self.release)
            )
        return spool_name(self.product, self.release, self.updated_at, digest)

    def close(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        finally:
            self._release_sink(flush=False)

    def _release_sink(self, *, flush: bool) -> None:
        """Hand the stream back to its owner (the spool's upload), flushed when asked; the
        stream itself stays open: the upload closes it."""
        sink, self._sink = self._sink, None
        if sink is None:
            return
        if flush:
            sink.detach()  # writes out what is buffered (a full disk fails here)
            return
        with contextlib.suppress(OSError, pa.ArrowException):  # abandoned: errors said already
            sink.detach()


class ReleaseWriter:
    """Writes one release's artifacts, each as its own row group, then publishes the file.

    Use as a context manager; call :meth:`commit` to publish.  Leaving the block without a
    commit (an exception, a kill) leaves nothing visible: at most a temp upload that
    ``clean_tmp`` removes.  The file is streamed to the store as it is written.
    """

    def __init__(
        self,
        store: SpoolStore,
        product: str,
        release: str,
        updated_at: datetime,
        source_url: str,
        compression: str = "lz4",
        read_at: datetime | None = None,
    ) -> None:
        self.store = store
        self.key = SpoolName.key(product, release)
        self._args = (product, release, updated_at, source_url)
        self._compression = compression
        self._read_at = read_at
        self._upload: Upload | None = None
        self._file: ReleaseFileWriter | None = None
        self.name: str | None = None

    def __enter__(self) -> ReleaseWriter:
        try:
            self._upload = self.store.upload(release_stem(*self._args[:2]))
            self._file = ReleaseFileWriter(
                self._upload.stream, *self._args, self._compression, self._read_at
            )
        except BaseException as exc:
            self._fail(exc)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.name is None:
            self.abort()

    @property
    def artifacts(self) -> int:
        return self._file.artifacts if self._file else 0

    @property
    def drops(self) -> int:
        return self._file.drops if self._file else 0

    @property
    def json_bytes(self) -> int:
        return self._file.json_bytes if self._file else 0

    def add(self, row: ArtifactRow) -> None:
        assert self._file is not None, "use ReleaseWriter as a context manager"
        try:
            self._file.add(row)
        except OSError as exc:
            raise self._error(exc) from exc

    def commit(self) -> SpoolFile:
        """Footer, then publish into ``ready`` (complete or not at all)."""
        assert self._file is not None and self._upload is not None
        try:
            name = self._file.finish()
            self._upload.publish("ready", name)
        except BaseException as exc:
            self._fail(exc)
        self.name = name
        info = self.store.info("ready", name)
        size, mtime = (info.size, info.mtime) if info else (0, time.time())
        return SpoolFile("ready", name, size, mtime)

    def abort(self) -> None:
        """Close and drop the upload, whatever happens (a full disk fails the close)."""
        try:
            if self._file is not None:
                with contextlib.suppress(Exception):  # best effort on the way out
                    self._file.close()
                self._file = None
        finally:
            if self._upload is not None:
                with contextlib.suppress(SpoolError, OSError):
                    self._upload.discard()
                self._upload = None

    def _fail(self, exc: BaseException) -> NoReturn:
        """Raise ``exc`` as :meth:`_error` names it, the upload dropped first."""
        error = self._error(exc)
        self.abort()
        raise error from exc

    def _error(self, exc: BaseException) -> BaseException:
        """OSError and SpoolError as a SpoolError naming the release (and, when the store
        is full, the space this release needs); anything else unchanged."""
        if isinstance(exc, OSError):
            exc = self._upload.error(exc) if self._upload else SpoolError(str(exc))
        if not isinstance(exc, SpoolError):
            return exc
        exc.release = self.key
        if isinstance(exc, SpoolFullError) and "needs about" not in exc.message:
            pending = self._file.pending if self._file else 0
            written = self._upload.written() if self._upload else 0
            exc.message = (
                f"no space left in spool folder {self.store.location} "
                f"({self.store.space_hint()}; this release needs about "
                f"{max(written + pending, 1)} bytes): free some space "
                "(e.g. `wheels-etl prune`) and run again"
            )
        return exc
