"""Independent oracle: what the database must hold for a source tree, and what it holds.

Nothing here imports ``etl``: the expected side is recomputed from the source files
(:mod:`.expected`, with its own wheel-name split in :mod:`.wheelname`), the actual side is
read back from Postgres with plain SQL (:mod:`.snapshot`).
"""

from tests.support.oracle.expected import (
    ExpectedArtifact,
    ExpectedConstraint,
    ExpectedDrop,
    ExpectedRelease,
    expected_drop,
    iter_expected,
    parse_constraints,
)
from tests.support.oracle.snapshot import (
    Snapshot,
    assert_db_equals_source,
    counts,
    db_snapshot,
    diff,
    expected_snapshot,
)
from tests.support.oracle.wheelname import WheelName, pep503, split_wheel_name

__all__ = [
    "ExpectedArtifact",
    "ExpectedConstraint",
    "ExpectedDrop",
    "ExpectedRelease",
    "Snapshot",
    "WheelName",
    "assert_db_equals_source",
    "counts",
    "db_snapshot",
    "diff",
    "expected_drop",
    "expected_snapshot",
    "iter_expected",
    "parse_constraints",
    "pep503",
    "split_wheel_name",
]
