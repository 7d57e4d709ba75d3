"""The wheel-collections protocol's shared vocabulary (no I/O, no third-party imports).

One definition of what the source side, the spool file names and the tests agree on: the
index format name, the identifier rule and the four documents of an artifact.  Kept free
of ``requests`` so that the spool and load side may import it.
"""

from __future__ import annotations

import re
from typing import Final, Literal

INDEX_FORMAT: Final = "wheel-collections/1"

#: ``product``, ``version``, ``architecture``, ``variant``: they become file names and SQL
#: values, so this is a security boundary.  ``IDENT_PATTERN`` is the bare pattern, for
#: building other expressions (the spool file names).
IDENT_PATTERN: Final = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}"
IDENT_RE: Final = re.compile(rf"^{IDENT_PATTERN}$")

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
