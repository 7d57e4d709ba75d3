"""Test hook: ``ETL_CRASH_AT`` SIGKILLs this process at a named point of its work.

``ETL_CRASH_AT=<name>`` kills at the first time the point is reached;
``ETL_CRASH_AT=<name>:<n>`` at the n-th time (counted per process, across threads), so a
test can let some releases or files through before the kill.  Points in the code:
``extract-mid-download`` (after the first chunk of a body), ``extract-mid-release`` (after
the first artifact of a release is written), ``extract-before-rename`` (file complete and
fsynced in ``tmp/``), ``load-before-copy``, ``load-mid-copy``, ``load-after-commit``.
Unset (always, outside tests), each point costs one environment lookup.
"""

from __future__ import annotations

import os
import signal
import threading

_hits: dict[str, int] = {}
_lock = threading.Lock()


def crash_point(name: str) -> None:
    spec = os.environ.get("ETL_CRASH_AT")
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    with _lock:
        _hits[name] = count = _hits.get(name, 0) + 1
        if count >= int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
