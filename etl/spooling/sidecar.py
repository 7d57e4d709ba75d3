"""The error sidecar of a spool file (``<name>.error.json``): every failed attempt.

Kept beside its file in the store (the spool moves it with the file); written through
:meth:`etl.spool.Spool.record_failure`, read through :meth:`etl.spool.Spool.failure`
(``status`` shows the last attempt).  One timestamp format, ``...Z``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from etl.errors import CorruptSpoolFileError, EtlError
from etl.spooling.names import STATES, SpoolState
from etl.spooling.store import SpoolStore
from etl.timestamps import now_ts

SIDECAR = ".error.json"
#: An orphan found in ``loading/``: its loader died holding it.  Noted in its sidecar when
#: it is claimed, before anyone starts on it again (:meth:`etl.spool.Spool.claim_next`).
LOADER_DIED = "LoaderDied"
#: An orphan whose loaders died this many times in a row goes to ``failed/`` instead of
#: being loaded again (``etl.loadahead``): a file that kills every loader (out of memory,
#: say) would otherwise be adopted first by every run, and the files behind it in
#: ``ready/`` never loaded.
MAX_LOADER_DEATHS = 3


@dataclass(frozen=True)
class FailedAttempt:
    """One failed attempt at loading a file (an entry of its ``.error.json`` sidecar).

    ``corrupt_file``: the file itself was unreadable (a :class:`CorruptSpoolFileError`):
    it is quarantined, and its release is to be fetched again.
    """

    error_class: str
    message: str
    at: str = field(default_factory=now_ts)
    command: str = "load"
    db_error: str | None = None
    sqlstate: str | None = None
    release: str | None = None
    corrupt_file: bool = False

    @classmethod
    def of(cls, exc: EtlError, db_error: str | None = None) -> FailedAttempt:
        """The attempt that ``exc`` ended (``db_error``: the database's error class)."""
        return cls(
            error_class=type(exc).__name__,
            message=str(exc),
            db_error=db_error,
            sqlstate=exc.sqlstate,
            release=exc.release,
            corrupt_file=isinstance(exc, CorruptSpoolFileError),
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FailedAttempt:
        def opt(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        return cls(
            error_class=str(data.get("error_class") or "unknown"),
            message=str(data.get("message") or ""),
            at=str(data.get("at") or ""),
            command=str(data.get("command") or "load"),
            db_error=opt("db_error"),
            sqlstate=opt("sqlstate"),
            release=opt("release"),
            corrupt_file=data.get("corrupt_file") is True,
        )


@dataclass
class FailureRecord:
    """A file's error sidecar: every attempt, oldest first (``corrupt``: unreadable)."""

    attempts: list[FailedAttempt]
    corrupt: bool = False

    @property
    def count(self) -> int:
        return len(self.attempts)

    @property
    def deaths(self) -> int:
        """Loaders that died holding the file, in a row (since its last other attempt)."""
        n = 0
        for attempt in reversed(self.attempts):
            if attempt.error_class != LOADER_DIED:
                break
            n += 1
        return n

    @property
    def last(self) -> FailedAttempt | None:
        return self.attempts[-1] if self.attempts else None

    def to_json(self) -> dict[str, Any]:
        attempts = [asdict(a) for a in self.attempts]
        last = attempts[-1] if attempts else None
        return {"attempts": attempts, "count": self.count, "last": last}

    @classmethod
    def from_json(cls, data: Any) -> FailureRecord:
        if not isinstance(data, dict) or not isinstance(data.get("attempts"), list):
            return cls([], corrupt=True)
        return cls([FailedAttempt.from_json(a) for a in data["attempts"] if isinstance(a, dict)])


def locate(store: SpoolStore, name: str, prefer: SpoolState | None = None) -> SpoolState | None:
    """Where the sidecar of file ``name`` is: beside the file (in ``prefer``, the file's
    state, when known), or (after a kill between the file's move and its sidecar's) in
    the state it came from."""
    side = name + SIDECAR
    if prefer is None:
        prefer = next((s for s in STATES if store.info(s, name) is not None), None)
    for state in ([prefer] if prefer else []) + [s for s in STATES if s != prefer]:
        if store.info(state, side) is None:
            continue
        if state == prefer or store.info(state, name) is None:  # else another
            return state  # file of that name sits there (a failed copy): not ours
    return None


def read(store: SpoolStore, name: str, prefer: SpoolState | None = None) -> FailureRecord | None:
    """The sidecar of file ``name`` (``prefer``: its state), None when it has none."""
    state = locate(store, name, prefer)
    if state is None:
        return None
    try:
        data = store.read_json(state, name + SIDECAR)
    except ValueError:
        return FailureRecord([], corrupt=True)
    return None if data is None else FailureRecord.from_json(data)


#: What is said of a file whose sidecar does not parse (status, ``enqueue --wait``).
UNREADABLE = "its error sidecar (.error.json) is unreadable (not JSON of attempts)"


def reason(record: FailureRecord | None) -> str:
    """The last attempt's message; or that the sidecar is missing or unreadable (a junk
    sidecar is not "no sidecar": it is kept, and says so)."""
    if record is not None and record.last is not None:
        return record.last.message
    if record is not None and record.corrupt:
        return UNREADABLE
    return "no error sidecar"


def append(store: SpoolStore, name: str, state: SpoolState, attempt: FailedAttempt) -> None:
    """Add one attempt to the sidecar of file ``name`` in ``state`` (written whole there;
    over an unreadable one, the record starts by saying earlier attempts are unknown)."""
    old = locate(store, name, state)
    record = read(store, name, state) or FailureRecord([])
    if record.corrupt and not record.attempts:
        record.attempts.append(FailedAttempt("UnreadableSidecar", f"{UNREADABLE}: replaced"))
    record.attempts.append(attempt)
    store.write_json(state, name + SIDECAR, record.to_json())
    if old is not None and old != state:
        store.delete(old, name + SIDECAR)


def follow(store: SpoolStore, name: str, state: SpoolState) -> None:
    """Move the sidecar of file ``name`` to ``state``, where the file now is."""
    at = locate(store, name, state)
    if at is not None and at != state:
        store.move(name + SIDECAR, at, state)


def loader_died() -> FailedAttempt:
    """What is noted in an orphan's sidecar when it is claimed (:data:`LOADER_DIED`)."""
    return FailedAttempt(LOADER_DIED, "its loader died while loading it (found in loading/)")


def killed_message(deaths: int) -> str:
    """Why a file whose loaders died ``deaths`` times in a row is not loaded again."""
    return (
        f"its loader died {deaths} times in a row while loading it (killed, e.g. out of "
        "memory): not loaded again; replay it once the cause is fixed"
    )


class Orphan(Protocol):
    """What :func:`requeue_or_fail` needs of a claim (:class:`etl.spool.Claim`)."""

    def retry(self) -> object: ...

    def fail(self, attempt: FailedAttempt) -> object: ...


def requeue_or_fail(orphan: Orphan, record: FailureRecord | None) -> bool:
    """An orphan back to ``ready`` (True), or to ``failed`` when its loaders died
    :data:`MAX_LOADER_DEATHS` times in a row (``reconcile``'s side of the kill count: a file
    put back in ``ready`` is not checked when claimed from there)."""
    deaths = record.deaths if record is not None else 0
    if deaths < MAX_LOADER_DEATHS:
        orphan.retry()
        return True
    orphan.fail(FailedAttempt("LoaderKilledError", killed_message(deaths)))
    return False
