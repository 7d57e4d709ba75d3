"""The spool: names, atomic publish, claims, sidecars, replay, prune (no network, no DB)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from etl.errors import SpoolError, SpoolFileError
from etl.spool import FailedAttempt, FailureRecord, Spool, SpoolFile, SpoolName, spool_name
from etl.spooling import format as fmt
from tests.support.env import child_env

UPDATED = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def row(arch: str = "x86_64", variant: str = "cpu", graph: str = '{"a": 1}') -> fmt.ArtifactRow:
    drop = fmt.Drop(
        "pkg-1.0-0-py3-none-any.whl", "pkg", "1.0", "0", "py3", "none", "any", "ab" * 32, 10, None
    )
    return fmt.ArtifactRow(arch, variant, "b1", UPDATED, graph, "[]", "[]", (drop,))


def write(spool: Spool, release: str = "1.0", rows: int = 2, **kw: str) -> SpoolFile:
    with spool.writer("prod", release, UPDATED, "http://src/") as w:
        for i in range(rows):
            w.add(row(arch=f"arch{i}", **kw))
        return w.commit()


def test_name_roundtrip() -> None:
    ts = datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC)
    name = spool_name("rhai", "3.0.0+local.1", ts, "0123456789abcdef" * 4)
    assert name == "rhai~3.0.0+local.1~20260102T030405.000678Z~0123456789abcdef.parquet"
    parsed = SpoolName.parse(name)
    assert (parsed.product, parsed.release, parsed.updated_at) == ("rhai", "3.0.0+local.1", ts)
    assert str(parsed) == name


@pytest.mark.parametrize(
    "bad", ["x.parquet", "a~b~c~d.parquet", "../a~1~20260101T000000Z~0123456789abcdef.parquet"]
)
def test_name_rejects_foreign_files(bad: str) -> None:
    with pytest.raises(SpoolFileError):
        SpoolName.parse(bad)


def test_publish_is_atomic_and_complete(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    f = write(spool)
    path = tmp_path / "ready" / f.name
    assert f.state == "ready" and path.exists()
    assert list((tmp_path / "tmp").iterdir()) == []
    meta = fmt.read_meta(path)
    assert (meta.product, meta.release, meta.artifacts, meta.drops) == ("prod", "1.0", 2, 2)
    assert pq.ParquetFile(path).num_row_groups == 2  # one row group per artifact
    assert SpoolName.parse(path.name).short_hash == meta.content_sha256[:16]


def test_same_content_same_hash_different_content_different_hash(tmp_path: Path) -> None:
    a = write(Spool(tmp_path / "a"))
    b = write(Spool(tmp_path / "b"))
    c = write(Spool(tmp_path / "c"), graph='{"a": 2}')
    assert a.name == b.name
    assert a.name != c.name


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    with pytest.raises(RuntimeError), spool.writer("prod", "1.0", UPDATED, "u") as w:
        w.add(row())
        raise RuntimeError("fetch failed mid-release")
    assert list(spool.all_files()) == []
    assert list((tmp_path / "tmp").iterdir()) == []


def test_clean_tmp_spares_live_writers(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    dead = tmp_path / "tmp" / "prod~1.0.99999999.456.part"  # no such pid
    dead.write_bytes(b"PAR1 half a file")
    with spool.writer("prod", "2.0", UPDATED, "u") as w:
        w.add(row())
        assert spool.clean_tmp() == 1  # only the dead one
        assert len(list((tmp_path / "tmp").iterdir())) == 1  # the live writer's
        w.commit()
    assert not dead.exists()


def test_claim_is_exclusive_and_orphans_are_adopted(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    write(spool)
    f = spool.files("ready")[0]
    claim = spool.claim(f)
    assert claim is not None
    assert spool.claim(f) is None  # gone from ready
    assert spool.adopt_orphans() == []  # held by a live claim
    claim.close()  # the loader "died": nobody holds the lock
    orphans = spool.adopt_orphans()
    assert [o.name for o in orphans] == [f.name]
    orphans[0].complete()
    assert spool.find(f.name) is not None and spool.find(f.name).state == "loaded"  # type: ignore[union-attr]


def test_claim_by_name_takes_a_ready_file_or_adopts_an_orphan(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    f = write(spool)
    first = spool.claim(f.name)
    assert first is not None and not first.orphan
    assert spool.claim(f.name) is None  # held
    first.close()  # its loader "died"
    again = spool.claim(f.name)
    assert again is not None and again.orphan
    again.complete()
    assert spool.claim(f.name) is None  # loaded: nothing to claim


def test_claim_next_takes_orphans_first_then_ready_oldest_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    old, mid, new = (write(spool, release=r) for r in ("1.0", "2.0", "3.0"))
    for i, f in enumerate((old, mid, new)):  # written in this order: make the mtimes say so
        os.utime(tmp_path / "ready" / f.name, (1_000_000 + i, 1_000_000 + i))
    orphan = spool.claim(new.name)
    assert orphan is not None
    orphan.close()  # left in loading/ by a dead loader

    picked: list[tuple[str, bool]] = []
    while (c := spool.claim_next()) is not None:
        first_time = (c.name, c.orphan) not in picked
        picked.append((c.name, c.orphan))
        if c.name == mid.name and first_time:
            c.retry()  # the database went away: back to ready/
        else:
            c.complete()
    # the orphan first, then ready oldest first; a file put back in ready/ is found again
    assert picked == [(new.name, True), (old.name, False), (mid.name, False), (mid.name, False)]
    assert {f.name for f in spool.files("loaded")} == {old.name, mid.name, new.name}


def test_claim_next_never_hands_one_file_to_two_threads(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    files = [write(spool, release=f"{i}.0", rows=1) for i in range(12)]
    taken: list[str] = []
    lock = threading.Lock()

    def loader() -> None:
        while (c := spool.claim_next()) is not None:
            with lock:
                taken.append(c.name)
            c.complete()

    threads = [threading.Thread(target=loader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(f.name for f in files)


def test_a_claim_given_back_returns_to_ready_and_an_orphan_stays(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    a, b = write(spool, release="1.0"), write(spool, release="2.0")
    claim = spool.claim(a.name)
    assert claim is not None
    claim.give_back()
    assert spool.find(a.name).state == "ready"  # type: ignore[union-attr]
    held = spool.claim(b.name)
    assert held is not None
    held.close()
    orphan = spool.claim(b.name)
    assert orphan is not None and orphan.orphan
    orphan.give_back()
    assert spool.find(b.name).state == "loading"  # type: ignore[union-attr]
    assert spool.claim(b.name) is not None  # and is free for the next run


def test_claim_lock_held_by_another_process(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    write(spool)
    f = spool.files("ready")[0]
    claim = spool.claim(f)
    assert claim is not None
    code = (
        "import sys; from pathlib import Path; from etl.spool import Spool;"
        f"sys.exit(len(Spool(Path({str(tmp_path)!r})).adopt_orphans()))"
    )
    assert subprocess.run([sys.executable, "-c", code], env=child_env()).returncode == 0
    claim.complete()


def test_failure_history_travels_with_the_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    write(spool)
    for attempt in (1, 2):
        c = spool.claim(spool.files("ready")[0])
        assert c is not None
        c.fail(FailedAttempt("DataError", f"bad {attempt}"))
        if attempt == 1:
            assert spool.requeue(failed=True)
    failed = spool.files("failed")[0]
    side = spool.failure(failed)
    assert side is not None and side.count == 2
    assert [a.message for a in side.attempts] == ["bad 1", "bad 2"]


def test_requeue_unknown_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SpoolError):
        Spool(tmp_path).requeue(["nope.parquet"])


def test_prune_deletes_only_old_loaded_files(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for rel in ("1.0", "2.0", "3.0"):
        write(spool, release=rel)
    old, new, ready = spool.files("ready")
    for f in (old, new):
        c = spool.claim(f)
        assert c is not None
        c.complete()
    old_path = tmp_path / "loaded" / old.name
    past = time.time() - 8 * 86400
    os.utime(old_path, (past, past))
    count, freed = spool.prune(7 * 86400)
    assert count == 1 and freed > 0
    assert not old_path.exists()
    assert (tmp_path / "loaded" / new.name).exists()
    assert (tmp_path / "ready" / ready.name).exists()


def test_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    path = tmp_path / "ready" / write(spool).name
    table = pq.read_table(path)
    md = dict(pq.read_metadata(path).metadata)
    md[b"wheels_etl.schema_version"] = b"99"
    pq.write_table(table.replace_schema_metadata(md), path)
    with pytest.raises(SpoolFileError, match="unknown spool schema version 99"):
        fmt.read_meta(path)


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    path = tmp_path / "ready" / write(spool).name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SpoolFileError):
        fmt.read_meta(path)


def test_clean_tmp_spares_a_writer_that_has_not_locked_yet(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    opening = tmp_path / "tmp" / f"prod~1.0.{os.getppid()}.456.part"  # a live process
    opening.write_bytes(b"PAR1")
    assert spool.clean_tmp() == 0 and opening.exists()
    assert spool.clean_tmp(grace_seconds=0) == 1 and not opening.exists()


def test_sidecar_left_behind_by_a_kill_between_the_two_renames(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    write(spool)
    c = spool.claim(spool.files("ready")[0])
    assert c is not None
    c.fail(FailedAttempt("Error", "first"))
    name = spool.files("failed")[0].name
    # simulate a kill after the file moved to ready/ but before its sidecar followed
    os.rename(tmp_path / "failed" / name, tmp_path / "ready" / name)
    side = spool.failure(name)
    assert side is not None and side.count == 1
    c = spool.claim(spool.files("ready")[0])
    assert c is not None
    c.fail(FailedAttempt("Error", "second"))
    side = spool.failure(name)
    assert side is not None and [a.message for a in side.attempts] == ["first", "second"]
    assert sorted(p.name for p in (tmp_path / "failed").iterdir()) == [name, name + ".error.json"]


def test_failure_record_roundtrip_and_unknown_keys() -> None:
    record = FailureRecord([FailedAttempt("DataError", "bad", sqlstate="22P05")])
    data = json.loads(json.dumps(record.to_json()))
    assert data["count"] == 1 and data["last"]["sqlstate"] == "22P05"
    assert data["last"]["at"].endswith("Z")  # the one timestamp format
    data["attempts"][0]["from_a_newer_version"] = 1
    back = FailureRecord.from_json(data)
    assert back.last is not None and back.last.message == "bad" and not back.corrupt
    assert FailureRecord.from_json({"no": "attempts"}).corrupt


def test_corrupt_sidecar_is_reported_not_raised(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    f = write(spool)
    (tmp_path / "ready" / (f.name + ".error.json")).write_text("{not json")
    record = spool.failure(f)
    assert record is not None and record.corrupt and record.count == 0


def test_status_document_is_typed_and_keeps_whole_reasons(tmp_path: Path) -> None:
    from etl import status

    spool = Spool(tmp_path)
    f = write(spool)
    claim = spool.claim(f)
    assert claim is not None
    reason = "a long reason " * 30 + "that ends here\nsecond line"
    claim.fail(FailedAttempt("FatalLoadError", reason))
    doc = status.collect(spool, None)
    data = json.loads(json.dumps(doc.to_json()))
    assert data["schema_version"] == 1 and data["spool"] == spool.location
    assert data["states"]["failed"] == {"files": 1, "releases": 1, "bytes": f.size}
    [failed] = data["failed"]
    assert failed["reason"].endswith("that ends here second line")  # whole, on one line
    [line] = [ln for ln in status.render(doc).splitlines() if ln.startswith(f"  failed/{f.name}: ")]
    shown = line.split(" …")[0]  # the text render shortens it, at a word boundary
    assert shown != line and shown.rsplit(" ", 1)[-1] in {"a", "long", "reason"}


def test_move_wraps_missing_files_in_the_error_tree(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    with pytest.raises(SpoolError, match="no such spool file"):
        spool.move("prod~1.0~20261001T120000Z~0123456789abcdef.parquet", "ready")


def test_requirements_column_and_files_written_before_it(tmp_path: Path) -> None:
    """``requirements`` is stored when given, changes the content hash only then, and a
    file written before the column existed still opens, its rows reading null."""
    spool = Spool(tmp_path / "s")
    plain = write(spool)
    reqs = '[{"name":"flask","specifier":"","marker":null}]'
    with spool.writer("prod", "1.1", UPDATED, "http://src/") as w:
        w.add(fmt.ArtifactRow(**{**row().__dict__, "requirements": reqs}))
        with_reqs = w.commit()
    assert SpoolName.parse(plain.name).short_hash == "69d9a01db977883b"  # as before the column
    got = next(fmt.iter_row_groups(tmp_path / "s" / "ready" / with_reqs.name))
    assert got.column("requirements").to_pylist() == [reqs]
    # the same file as an older wheels-etl wrote it: no requirements column at all
    path = tmp_path / "s" / "ready" / plain.name
    kv = pq.read_metadata(path).metadata or {}
    old = pq.read_table(path).drop_columns(["requirements"])
    old = old.replace_schema_metadata({k: v for k, v in kv.items() if k != b"ARROW:schema"})
    older = tmp_path / plain.name
    pq.write_table(old, older, row_group_size=1)
    fmt.read_meta(older)  # accepted: the column is optional
    tables = list(fmt.iter_row_groups(older, ["architecture", "requirements"]))
    assert [t.column("requirements").to_pylist() for t in tables] == [[None], [None]]
