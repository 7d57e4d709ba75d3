"""How a claim takes a file and completes it, in the fewest store requests.

On object storage each request is a round trip, so a claim asks once where the file and
its error sidecar are (:meth:`SpoolStore.lookup`: one listing), then takes the lock and
moves them to ``loading``; completing moves what the claim moved, with nothing searched.
Claim + complete of a file without a sidecar is 6 requests on object storage (lookup,
lease, copy, delete; copy, one delete that takes the lease along), renames locally; 5
when the claim comes from a listing that just showed the file (:meth:`Spool.claim_next`).

A sidecar left in another state by a move cut in half is not followed here:
:func:`etl.spooling.sidecar.locate` finds it wherever it is when it is read or appended to.
"""

from __future__ import annotations

from dataclasses import dataclass

from etl.errors import SpoolError
from etl.spooling import sidecar
from etl.spooling.names import SUFFIX, SpoolState
from etl.spooling.sidecar import SIDECAR, loader_died
from etl.spooling.store import Lock, ObjectInfo, SpoolStore


@dataclass(frozen=True)
class Taken:
    lock: Lock
    info: ObjectInfo  # the file as found (size, modification time)
    sidecar: bool  # its error sidecar was beside it, and moved with it


#: What a listing showed of a file and its sidecar, by name (None: not listed just now).
Listed = dict[str, ObjectInfo] | None

#: A file :meth:`etl.spool.Spool.claim_next` may claim: its state, its name and, when a
#: listing of that state just showed it, what it showed of the file and its sidecar.
Candidate = tuple[SpoolState, str, Listed]


def listed(store: SpoolStore, state: SpoolState) -> list[Candidate]:
    """The files of one listing of ``state``, oldest first, each with what the listing
    showed of it and of its sidecar (a claim then asks nothing more before its lock)."""
    objects = {o.name: o for o in store.list_folder(state)}
    files = sorted(
        (o for o in objects.values() if o.name.endswith(SUFFIX)), key=lambda o: (o.mtime, o.name)
    )
    out: list[Candidate] = []
    for o in files:
        seen = {o.name: o}
        side = objects.get(o.name + SIDECAR)
        if side is not None:
            seen[side.name] = side
        out.append((state, o.name, seen))
    return out


def take(
    store: SpoolStore, name: str, src: SpoolState, lease_seconds: float,
    listed: Listed = None,
) -> Taken | None:  # fmt: skip
    """Lock ``name`` and move it from ``src`` to ``loading`` (an orphan already there stays,
    its loader's death noted in its sidecar); None when it is not in ``src`` any more or
    another claimant holds it.

    ``listed``: what a listing of ``src`` just showed of ``name`` and its sidecar (by
    name), so that a claim from ``ready`` asks nothing before taking the lock.  A file
    claimed by someone else since is found out all the same: its lock is held, or the
    move finds it gone."""
    if listed is not None and src == "ready":
        found = listed
    else:
        found = {o.name: o for o in store.lookup(src, name, (SIDECAR,))}
    info: ObjectInfo | None = found.get(name)
    if info is None:  # claimed or finished by another loader since it was listed
        return None
    lock = store.lock(src, name, lease_seconds)
    if lock is None:
        return None
    side = name + SIDECAR in found
    try:
        if src != "loading":  # undone by a power loss: ready again, harmless
            store.move(name, src, "loading", durable=False)
            if side:
                store.move(name + SIDECAR, src, "loading")
        elif store.info("loading", name) is None:
            info = None  # an orphan finished by its owner between the lookup and the lock
        else:  # its loader died: noted in its sidecar before it is loaded again
            sidecar.append(store, name, "loading", loader_died())
            side = True
    except FileNotFoundError:  # another loader moved it between the lookup and the lock
        info = None
    except BaseException:
        lock.release()
        raise
    if info is None:
        lock.release()
        return None
    return Taken(lock, info, side)


def finish(store: SpoolStore, name: str, sidecar: bool) -> None:
    """``loading`` → ``loaded``, with the sidecar the claim moved.  Already there (another
    claimant of a lapsed claim finished it first) is no error; gone elsewhere is."""
    try:
        store.move(name, "loading", "loaded", durable=False)  # see spool._VOLATILE
        if sidecar:
            store.move(name + SIDECAR, "loading", "loaded")
    except FileNotFoundError as exc:
        if store.info("loaded", name) is None:
            raise SpoolError(f"moved by someone else meanwhile: {exc}", path=name) from exc
