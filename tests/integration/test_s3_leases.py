"""Leases on a real S3 server (SeaweedFS) exclude, are judged on the store's clock, renew
from the COPY loop, and claim + complete costs at most 6 requests.

The races run two stores (two botocore clients, as two loaders would have) from two
threads released together by a barrier: both requests are in flight at the server at once.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections import Counter
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from etl.db.connect import connect
from etl.load import load_file, migrate_db
from etl.spool import Spool
from etl.spooling.store.s3 import S3Lease, S3Store
from etl.spooling.store.s3lease import HOST, LeaseLostError
from tests.support.s3spool import s3_store, write_release

RACES = 1000
LAPSE = 6  # s: the lease of the tests that wait for one to lapse


def _race(stores: tuple[S3Store, S3Store], name: str, lease_seconds: float) -> list[S3Lease]:
    """Both stores ask for the lease on ``name`` at the same instant; the leases won."""
    barrier = threading.Barrier(2)
    won: list[S3Lease] = []

    def claim(store: S3Store) -> None:
        barrier.wait()
        lease = store.lock("ready", name, lease_seconds)
        if lease is not None:
            won.append(lease)

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won


def test_two_claimants_racing_for_one_lease_exactly_one_wins(s3_spool: str) -> None:
    stores = (S3Store.from_url(s3_spool), S3Store.from_url(s3_spool))
    winners: Counter[int] = Counter()
    for i in range(RACES):
        won = _race(stores, f"race-{i}.parquet", lease_seconds=900)
        assert len(won) == 1, f"race {i}: {len(won)} winners"
        winners[stores.index(won[0].store)] += 1
    assert sum(winners.values()) == RACES
    print(f"lease create races: {RACES}, one winner each; wins per claimant {dict(winners)}")


def test_two_claimants_taking_over_one_lapsed_lease_exactly_one_wins(s3_spool: str) -> None:
    """Lapsed leases are taken over with If-Match on the ETag read: of two claimants that
    both found one lapsed, one wins (a loser that reads after the winner's take-over finds
    a young lease).  Lapsed two ways: its owner is a process of this host that is gone (no
    wait, and the winner's lease stays young for the 900 s of the race), and by age on the
    store's clock (LAPSE s, waited for on the store's own Date; a loser would have to lag
    its winner by LAPSE - 1 s to see the winner's lease lapsed too)."""
    first, watch = S3Store.from_url(s3_spool), S3Store.from_url(s3_spool)
    stores = (S3Store.from_url(s3_spool), S3Store.from_url(s3_spool))
    aged = [f"aged-{i}.parquet" for i in range(RACES // 50)]
    for name in aged:  # first: they age while the dead owners' races run
        assert first.lock("ready", name, LAPSE) is not None
    dead = f"{socket.gethostname()}:{_never_a_pid()}:gone"
    races = RACES // 5
    for i in range(races):
        _put_lease(watch, s3_spool, f"dead-{i}.parquet", dead)
        won = _race(stores, f"dead-{i}.parquet", lease_seconds=900)
        assert len(won) == 1, f"take-over race {i} (dead owner): {len(won)} winners"
    _wait_older_than(watch, s3_spool, aged[-1], LAPSE)
    for name in aged:
        won = _race(stores, name, lease_seconds=LAPSE)
        assert len(won) == 1, f"take-over race {name} (lapsed): {len(won)} winners"
    print(f"lease take-over races: {races} of dead owners, {len(aged)} lapsed, one winner each")


def _never_a_pid() -> int:
    """A pid no process has: Linux allocates pids below ``pid_max``."""
    pid = int(Path("/proc/sys/kernel/pid_max").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    return pid


def _lease_key(s3_spool: str, name: str) -> tuple[str, str]:
    """Bucket and key of ``leases/<name>`` in the spool ``s3://bucket/prefix``."""
    bucket, _, prefix = s3_spool.removeprefix("s3://").partition("/")
    return bucket, f"{prefix}/leases/{name}"


def _put_lease(watch: S3Store, s3_spool: str, name: str, owner: str) -> None:
    bucket, key = _lease_key(s3_spool, name)
    watch.client.put_object(Bucket=bucket, Key=key, Body=json.dumps({"owner": owner}).encode())


def _lease_clock(watch: S3Store, s3_spool: str, name: str) -> tuple[datetime, datetime]:
    """The store's clock now (the Date of a HEAD of ``leases/<name>``) and the lease's
    Last-Modified, both whole seconds of the store's clock, read by the test itself."""
    bucket, key = _lease_key(s3_spool, name)
    head = watch.client.head_object(Bucket=bucket, Key=key)
    date = parsedate_to_datetime(head["ResponseMetadata"]["HTTPHeaders"]["date"])
    return date, head["LastModified"]


def _wait_older_than(watch: S3Store, s3_spool: str, name: str, seconds: float) -> None:
    """Until ``leases/<name>`` is ``seconds`` old on the store's clock (60 s at most)."""
    deadline = time.monotonic() + 60
    while True:
        now, modified = _lease_clock(watch, s3_spool, name)
        if (now - modified).total_seconds() >= seconds:
            return
        assert time.monotonic() < deadline, f"{name} not {seconds} s old on the store's clock"
        time.sleep(0.2)


def test_a_lease_cut_short_by_its_writers_death_is_taken_over_at_once(s3_spool: str) -> None:
    """A holder SIGKILLed in the middle of its lease PUT leaves an empty (or cut) object on
    SeaweedFS; no live holder wrote it (a live writer's PUT fails), so a claimant takes it
    over at once instead of skipping the file until the lease lapses (900 s here)."""
    spool = Spool(s3_spool)
    names = [write_release(spool, v) for v in ("1.0", "2.0")]
    watch = s3_store(Spool(s3_spool))
    for name, body in zip(names, (b"", b'{"owner": "vm:1'), strict=True):
        bucket, key = _lease_key(s3_spool, name)
        watch.client.put_object(Bucket=bucket, Key=key, Body=body)
    claims = [spool.claim_next(), spool.claim_next()]
    assert sorted(c.name for c in claims if c is not None) == sorted(names)
    for claim in claims:
        assert claim is not None
        claim.complete()
    assert not watch.list_folder("leases") and not watch.list_folder("ready")
    live = write_release(spool, "3.0")
    _put_lease(watch, s3_spool, live, f"{HOST}:{os.getpid()}:other")  # a live owner's
    assert spool.claim(live) is None  # still refused


def test_a_claimant_whose_clock_is_an_hour_ahead_steals_nothing(s3_spool: str) -> None:
    spool = Spool(s3_spool)
    write_release(spool, "1.0")
    write_release(spool, "2.0")
    [held, free] = spool.files("ready")
    claim = spool.claim(held)
    assert claim is not None
    ahead = Spool(s3_spool)
    ahead.store = S3Store.from_url(s3_spool, clock=lambda: time.time() + 3600)
    assert ahead.claim(held.name) is None
    assert ahead.adopt_orphans() == []  # the live claim is not an orphan to it
    assert ahead.reconcile().requeued == []  # nor to its reconcile
    assert [f.name for f in spool.files("loading")] == [held.name]
    taken = ahead.claim(free.name)  # its claims work as anyone's
    assert taken is not None
    taken.complete()
    claim.complete()
    assert [f.state for f in spool.all_files()] == ["loaded", "loaded"]


def test_a_lapsed_lease_is_judged_on_the_store_clock(s3_spool: str) -> None:
    """The holder stops renewing; a claimant whose clock is an hour BEHIND still sees the
    lease lapse after lease_seconds of the store's time, not before.  Each look is judged
    on the store's clock as the test reads it (the Date of a HEAD just before and just
    after it, against the lease's Last-Modified): a refusal must come while the lease is
    younger than LAPSE s, the adoption once it is LAPSE s old, however late either runs."""
    spool = Spool(s3_spool, lease_seconds=LAPSE)
    behind = Spool(s3_spool, lease_seconds=LAPSE)
    behind.store = S3Store.from_url(s3_spool, clock=lambda: time.time() - 3600)
    watch = S3Store.from_url(s3_spool)
    name = write_release(spool, "1.0")
    claim = spool.claim(name)
    assert claim is not None
    deadline = time.monotonic() + 60
    refused = 0
    while True:
        before, modified = _lease_clock(watch, s3_spool, name)
        adopted = behind.adopt_orphans()
        if adopted:
            break
        age = (before - modified).total_seconds()
        assert age < LAPSE, f"refused a lease {age:g} s old on the store's clock"
        refused += 1
        assert time.monotonic() < deadline, "the lease never lapsed"
        time.sleep(0.2)
    after, _ = _lease_clock(watch, s3_spool, name)  # now behind's lease: its Date only
    age = (after - modified).total_seconds()
    assert age >= LAPSE, f"adopted a lease {age:g} s old on the store's clock ({refused} refusals)"
    assert [c.name for c in adopted] == [name]
    adopted[0].complete()


def test_a_renewal_after_a_take_over_says_the_lease_was_lost(s3_spool: str) -> None:
    store, other = S3Store.from_url(s3_spool), S3Store.from_url(s3_spool)
    lease = store.lock("ready", "x.parquet", 900)
    assert lease is not None
    lease.renew()  # ours: fine
    assert other.lock("ready", "x.parquet", 0) is not None  # taken over (counted lapsed)
    with pytest.raises(LeaseLostError):
        lease.renew()


def test_claim_and_complete_take_at_most_six_requests(s3_spool: str) -> None:
    spool = Spool(s3_spool)
    names = [write_release(spool, "1.0"), write_release(spool, "2.0")]
    store = s3_store(spool)
    listed = spool.files("ready")
    counts = []
    for f, how in zip(listed, ("listed", "by name"), strict=True):
        before = store.requests
        claim = spool.claim(f if how == "listed" else f.name)
        assert claim is not None
        mid = store.requests
        claim.complete()
        counts.append((how, mid - before, store.requests - mid))
    print(f"requests per file (claim, complete): {counts}")
    for how, claimed, completed in counts:
        assert claimed + completed <= 6, (how, claimed, completed)
    assert sorted(f.name for f in spool.files("loaded")) == sorted(names)
    assert not store.list_folder("leases") and not store.list_folder("moves")


def test_claims_from_a_listing_ask_nothing_before_the_lease(s3_spool: str) -> None:
    """claim_next takes files as one listing showed them: after that listing, a claim is
    its lease, copy and delete (3 requests; 5 with its completion), with no Expect: 100-
    continue round trip before the lease's small body.  A file claimed by another spool
    since the listing is found out by its lease, and nothing of the loser is left."""
    spool, rival = Spool(s3_spool), Spool(s3_spool)
    names = sorted(write_release(spool, v) for v in ("1.0", "2.0", "3.0"))
    store = s3_store(spool)
    expect: list[str | None] = []

    def headers(request: Any, **_: Any) -> None:
        expect.append(request.headers.get("Expect"))

    store.client.meta.events.register("before-send.s3.PutObject", headers)
    first = spool.claim_next()  # lists loading/ and ready/, then claims the oldest
    assert first is not None
    ready = {f.name: f for f in rival.files("ready")}
    taken = rival.claim(ready[sorted(ready)[0]])  # behind the first spool's listing
    assert taken is not None
    before = store.requests
    second = spool.claim_next()  # the rival's file is next in the listing: lost, then the last
    assert second is not None and second.name not in (first.name, taken.name)
    after_listing = store.requests - before
    assert after_listing <= 3 + 3, after_listing  # a lost lease (create + read), one claim
    before = store.requests
    second.complete()
    assert store.requests - before <= 2
    assert spool.claim_next() is None
    assert expect and not any(expect), expect  # lease PUTs never wait for 100 Continue
    for claim in (first, taken):
        claim.complete()
    assert sorted(f.name for f in spool.files("loaded")) == names
    assert not store.list_folder("leases") and not store.list_folder("moves")
    listed = {f.name: f.mtime for f in spool.files("loaded")}
    headed = {n: i.mtime for n in names if (i := store.info("loaded", n)) is not None}
    assert listed == headed  # the listing's and HEAD's timestamps read alike


def test_a_long_load_renews_its_lease_from_the_copy_loop(s3_spool: str, db_url: str) -> None:
    """A lease so short that every batch is due a renewal: the lease is rewritten while
    the rows stream (seen as PUTs of leases/<name> by the store's own client)."""
    spool = Spool(s3_spool, lease_seconds=0.001)
    name = write_release(spool, "1.0", rows=5)
    puts: list[str] = []

    def seen(params: dict[str, Any], **_: Any) -> None:
        if "/leases/" in params.get("url_path", ""):
            puts.append(params["method"])

    s3_store(spool).client.meta.events.register("before-call.s3.PutObject", seen)
    claim = spool.claim(name)
    assert claim is not None
    migrate_db(db_url)
    with connect(db_url) as conn:
        assert load_file(conn, claim).outcome == "applied"
    assert len(puts) >= 1 + 5, puts  # the create, then a renewal at least per row group
