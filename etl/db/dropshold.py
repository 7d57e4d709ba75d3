"""The drops' CSV of one spool file, held until its artifacts are in.

Drops reference artifacts, so they are copied after them: their CSV waits for the end of
the file.  Up to :data:`HOLD_IN_MEMORY` it waits as views of Arrow's buffers; past that,
in an unnamed temporary file under ``$TMPDIR`` (scratch space of this process, never the
spool), so that a release of any size loads in the same memory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO

from etl.errors import TransientLoadError

#: How much of a release's drops CSV is held in memory for the second COPY; the rest goes
#: to a temporary file (``$TMPDIR``), so that a release of any size loads in the same
#: memory.  About 4,000 drops fit.  The bench's 1 GB release has 69,000 drops, about 17 MB
#: of CSV: with 8 MB held here its load peaked at 149-154 MB, with 1 MB at 137-138 MB, as
#: much as the 133 MB release's 132-136 MB (benchmarks/FINDINGS.md).
HOLD_IN_MEMORY = 1024 * 1024
_READ_CHUNK = 1024 * 1024


class DropsHold:
    """The drops' CSV of one file, held until the artifacts are in: views of Arrow's
    buffers while small, an unnamed temporary file once over ``limit``."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = HOLD_IN_MEMORY if limit is None else limit
        self.size = 0
        self._views: list[memoryview] = []
        self._file: IO[bytes] | None = None

    def __enter__(self) -> DropsHold:
        return self

    def __exit__(self, *exc: object) -> None:
        self._views.clear()
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def spilled(self) -> bool:
        return self._file is not None

    def add(self, data: memoryview) -> None:
        try:
            if self._file is None and self.size + len(data) > self.limit:
                # unnamed (O_TMPFILE where the system has it): nothing left behind, even
                # by a kill; closed by __exit__
                self._file = tempfile.TemporaryFile(prefix="wheels-etl-drops-")  # noqa: SIM115
                while self._views:
                    self._file.write(self._views.pop(0))
            if self._file is not None:
                self._file.write(data)
            else:
                self._views.append(data)  # a view of Arrow's buffer, not a copy
        except OSError as exc:  # a full or read-only $TMPDIR: the file is fine, try later
            raise TransientLoadError(f"cannot hold the drops in a temporary file: {exc}") from exc
        self.size += len(data)

    def chunks(self) -> Iterator[memoryview | bytes]:
        """The held CSV in order, each piece given up once yielded."""
        if self._file is None:
            while self._views:
                yield self._views.pop(0)
            return
        try:
            self._file.flush()
            self._file.seek(0)
            while chunk := self._file.read(_READ_CHUNK):
                yield chunk
        except OSError as exc:
            raise TransientLoadError(f"cannot read back the held drops: {exc}") from exc
