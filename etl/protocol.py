"""The wheel-collections protocol's shared vocabulary (no I/O, no third-party imports).

One definition of what the source side, the spool file names and the tests agree on: the
index format name, the identifier rule and the four documents of an artifact.  Kept free
of ``requests`` so that the spool and load side may import it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Final, Literal

INDEX_FORMAT: Final = "wheel-collections/1"

#: ``product``, ``version``, ``architecture``, ``variant``: they become file names and SQL
#: values, so this is a security boundary.  ``IDENT_PATTERN`` is the bare pattern, for
#: building other expressions (the spool file names).
IDENT_PATTERN: Final = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}"
IDENT_RE: Final = re.compile(rf"^{IDENT_PATTERN}$")

#: How far ahead of the reading clock a release's ``updated_at`` may be.  Newer data wins
#: by ``updated_at``, so a release stamped in year 9999 (or a typo of 2999) would make every
#: later real update *superseded*, for good: extract refuses such a release and load such a
#: spool file.  A day covers any clock skew between the publisher and us.
UPDATED_AT_MAX_AHEAD: Final = timedelta(days=1)


def too_far_ahead(updated_at: datetime, now: datetime) -> str | None:
    """Why ``updated_at`` is refused (more than :data:`UPDATED_AT_MAX_AHEAD` after
    ``now``), or None."""
    if updated_at <= now + UPDATED_AT_MAX_AHEAD:
        return None
    return (
        f"updated_at {updated_at.isoformat()} is more than {UPDATED_AT_MAX_AHEAD.days} day(s)"
        f" in the future (now {now.isoformat(timespec='seconds')})"
    )


#: The most one artifact (one row group of a spool file: its three JSON documents and its
#: drops) may decode to.  The one size contract of both sides: load refuses a file with a
#: larger artifact before decoding it (:mod:`etl.spooling.checks`), so extract refuses to
#: write one (the release fails, naming the artifact and its largest document), and
#: ``--max-file-bytes`` defaults to it (one document over it is refused before it is read).
#: Loading holds about three times an artifact's decoded size at once (decompressed pages,
#: decoded columns, their COPY rendering), so 128 MiB keeps a loader within the worker
#: pod's 512 MiB; a real artifact is a few MB (the largest benchmark artifacts: under 10 MB).
MAX_ARTIFACT_BYTES: Final = 128 * 1024 * 1024

ArtifactFileKey = Literal[
    "dependency_graph", "constraints_file", "build_sequence_summary", "wheels"
]
#: The four documents of an artifact, all required by the protocol, in this order.
ARTIFACT_FILE_KEYS: Final[tuple[ArtifactFileKey, ...]] = (
    "dependency_graph",
    "constraints_file",
    "build_sequence_summary",
    "wheels",
)
