"""load + schema against a real Postgres (a fresh database per test, via ``db_url``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg.conninfo import make_conninfo

from etl import cli, load
from etl.db import ledger as db_ledger
from etl.db import releases, schema
from etl.errors import ConfigError, LoadError, TransientLoadError
from etl.spool import Spool, SpoolState
from etl.spooling import format as fmt
from tests.support.env import child_env

T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)


# --- helpers -------------------------------------------------------------------------


def drop(filename: str, *, name: str = "pkg", version: str = "1.0", size: int = 10) -> fmt.Drop:
    return fmt.Drop(
        filename=filename,
        name=name,
        version=version,
        build_tag=None,
        python_tag="cp311",
        abi_tag="cp311",
        platform_tag="linux_x86_64",
        sha256=(filename.encode().hex() * 8)[:64],
        size=size,
        uploaded_at=T0 + timedelta(minutes=size),
    )


def artifact(
    arch: str = "x86_64",
    variant: str = "cpu",
    *,
    drops: tuple[fmt.Drop, ...] = (),
    graph: Any = None,
    build_id: str | None = "b1",
) -> fmt.ArtifactRow:
    graph = {"nodes": {"torch": ["numpy"]}, "arch": arch} if graph is None else graph
    return fmt.ArtifactRow(
        architecture=arch,
        variant=variant,
        build_id=build_id,
        built_at=T0 - timedelta(hours=1),
        dependency_graph=json.dumps(graph),
        constraints_file=json.dumps({"format": "text", "text": 'torch==2.5\n\tx\\"é'}),
        build_sequence_summary=json.dumps([{"step": 1, "name": "ünïcode"}]),
        drops=drops,
    )


def write(
    spool: Spool,
    rows: list[fmt.ArtifactRow],
    *,
    product: str = "rhai",
    release: str = "3.0",
    updated_at: datetime = T0,
) -> Path:
    with spool.writer(product, release, updated_at, f"file:///src/{product}/{release}") as w:
        for row in rows:
            w.add(row)
        return _dir(spool, "ready") / w.commit().name


def _dir(spool: Spool, state: str) -> Path:
    """A local spool's state folder (these tests poke files on disk)."""
    return Path(spool.location) / state


def two_artifacts() -> list[fmt.ArtifactRow]:
    return [
        artifact("x86_64", "cpu", drops=(drop("a-1.0-x.whl", size=1), drop("b-2.0-x.whl", size=2))),
        artifact("aarch64", "cuda", drops=(drop("c-1.0-y.whl", name="c", size=3),)),
    ]


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every data table in full (JSON as parsed values), in key order."""
    queries = {
        "releases": "SELECT * FROM releases ORDER BY 1, 2",
        "artifacts": "SELECT * FROM artifacts ORDER BY 1, 2, 3, 4",
        "drops": "SELECT * FROM drops ORDER BY 1, 2, 3, 4, 5",
    }
    with psycopg.connect(url) as conn:
        return {t: conn.execute(q).fetchall() for t, q in queries.items()}


def ledger(url: str) -> dict[str, tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT file_name, outcome, load_count, content_sha256 FROM spool_files"
        ).fetchall()
    return {r[0]: r[1:] for r in rows}


def attempts(url: str, name: str) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn:
        return db_ledger.attempts(conn, name)


def names(spool: Spool, state: SpoolState) -> set[str]:
    return {f.name for f in spool.files(state)}


def sidecar(spool: Spool, name: str) -> dict[str, Any]:
    record = spool.failure(name)
    data = None if record is None else record.to_json()
    assert data is not None, f"no sidecar for {name}"
    return data


def run(spool: Spool, url: str, **kw: Any) -> load.LoadReport:
    kw.setdefault("retry_seconds", 0)
    return load.load_spool(spool, url, **kw)


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "spool")


# --- loading -------------------------------------------------------------------------


def test_file_loads_and_database_equals_it(spool: Spool, db_url: str) -> None:
    rows = two_artifacts()
    path = write(spool, rows)
    meta = fmt.read_meta(path)
    report = run(spool, db_url)
    assert report.ok and report.applied == [path.name]
    assert report.rows == 2 + 3 and report.json_bytes == meta.json_bytes
    assert names(spool, "loaded") == {path.name} and not names(spool, "ready")

    with psycopg.connect(db_url) as conn:
        rel = conn.execute(
            "SELECT updated_at, extracted_at, content_sha256, spool_file, source_url,"
            " artifact_count, drop_count, loaded_at IS NOT NULL FROM releases"
            " WHERE product = 'rhai' AND release = '3.0'"
        ).fetchone()
        arts = conn.execute(
            "SELECT architecture, variant, build_id, built_at, dependency_graph,"
            " constraints_file, build_sequence_summary, drop_count FROM artifacts"
        ).fetchall()
        drops = conn.execute(
            "SELECT architecture, variant, filename, name, version, build_tag, python_tag,"
            " abi_tag, platform_tag, sha256, size, uploaded_at FROM drops"
        ).fetchall()
    assert rel == (
        T0,
        meta.extracted_at,
        meta.content_sha256,
        path.name,
        "file:///src/rhai/3.0",
        2,
        3,
        True,
    )
    want_arts = [
        (
            r.architecture,
            r.variant,
            r.build_id,
            r.built_at,
            json.loads(r.dependency_graph or ""),
            json.loads(r.constraints_file or ""),
            json.loads(r.build_sequence_summary or ""),
            len(r.drops),
        )
        for r in rows
    ]
    assert sorted(arts, key=repr) == sorted(want_arts, key=repr)
    want_drops = sorted(
        (
            r.architecture,
            r.variant,
            d.filename,
            d.name,
            d.version,
            d.build_tag,
            d.python_tag,
            d.abi_tag,
            d.platform_tag,
            d.sha256,
            d.size,
            d.uploaded_at,
        )
        for r in rows
        for d in r.drops
    )
    assert sorted(drops) == want_drops
    assert ledger(db_url) == {path.name: ("applied", 1, meta.content_sha256)}


def test_loading_twice_changes_nothing(spool: Spool, db_url: str) -> None:
    path = write(spool, two_artifacts())
    assert run(spool, db_url).applied == [path.name]
    before = dump(db_url)
    spool.requeue([path.name])
    second = run(spool, db_url)
    assert second.ok and second.unchanged == [path.name] and not second.applied
    assert second.rows == 0
    assert dump(db_url) == before  # loaded_at included: not even the releases row moved
    # what applied the data stays on record; the latest load and the history are kept too
    assert ledger(db_url)[path.name][:2] == ("applied", 2)
    with psycopg.connect(db_url) as conn:
        latest = conn.execute(
            "SELECT last_outcome, seconds FROM spool_files WHERE file_name = %s", [path.name]
        ).fetchone()
    assert latest is not None and latest[0] == "unchanged" and latest[1] >= 0
    history = attempts(db_url, path.name)
    assert [a["outcome"] for a in history] == ["applied", "unchanged"]
    assert history[0]["rows"] == 5 and history[1]["rows"] == 0
    assert all(a["seconds"] >= 0 and a["error"] is None for a in history)
    assert set(second.seconds) == {path.name}


def test_newer_file_replaces_release_exactly(spool: Spool, db_url: str) -> None:
    old = write(spool, two_artifacts())
    assert run(spool, db_url).applied == [old.name]
    newer_rows = [
        # aarch64/cuda removed; b-2.0 withdrawn; a new wheel; the graph changed
        artifact(
            "x86_64",
            "cpu",
            drops=(drop("a-1.0-x.whl", size=1), drop("d-3.0-x.whl", size=4)),
            graph={"nodes": {"torch": ["numpy", "sympy"]}},
        ),
    ]
    new = write(spool, newer_rows, updated_at=T0 + timedelta(days=1))
    report = run(spool, db_url)
    assert report.applied == [new.name] and report.ok
    data = dump(db_url)
    assert [(a[2], a[3]) for a in data["artifacts"]] == [("x86_64", "cpu")]
    assert data["artifacts"][0][6] == {"nodes": {"torch": ["numpy", "sympy"]}}
    assert [d[4] for d in data["drops"]] == ["a-1.0-x.whl", "d-3.0-x.whl"]
    assert data["releases"][0][2] == T0 + timedelta(days=1)
    assert data["releases"][0][7:9] == (1, 2)  # artifact_count, drop_count


def test_stale_file_is_superseded_and_changes_nothing(spool: Spool, db_url: str) -> None:
    new = write(spool, [artifact(drops=(drop("n-1.0-x.whl"),))], updated_at=T0 + timedelta(1))
    assert run(spool, db_url).applied == [new.name]
    before = dump(db_url)
    stale = write(spool, two_artifacts(), updated_at=T0)
    report = run(spool, db_url)
    assert report.ok and report.superseded == [stale.name] and report.rows == 0
    assert dump(db_url) == before
    assert ledger(db_url)[stale.name][0] == "superseded"
    assert stale.name in names(spool, "loaded")


def test_two_files_of_a_release_in_one_run_end_with_the_newest(spool: Spool, db_url: str) -> None:
    write(spool, two_artifacts(), updated_at=T0)
    newest = write(spool, [artifact(drops=())], updated_at=T0 + timedelta(hours=1))
    report = run(spool, db_url, workers=2)
    assert report.ok and len(report.applied) + len(report.superseded) == 2
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT spool_file FROM releases").fetchone() == (newest.name,)
        assert conn.execute("SELECT count(*) FROM drops").fetchone() == (0,)


# --- bad files -------------------------------------------------------------------------


def test_nul_in_json_fails_with_sidecar_and_others_still_load(spool: Spool, db_url: str) -> None:
    good1 = write(spool, two_artifacts(), release="1.0")
    bad_row = artifact(graph={"text": "a\u0000b"}, drops=(drop("x-1-x.whl"),))
    bad = write(spool, [bad_row], release="2.0")
    good2 = write(spool, two_artifacts(), release="3.0")
    report = run(spool, db_url)
    assert not report.ok
    assert sorted(report.applied) == sorted([good1.name, good2.name])
    assert [f for f, _ in report.failed] == [bad.name]
    reason = report.failed[0][1]
    assert "rhai/2.0" in reason and bad.name in reason and "22P05" in reason
    assert names(spool, "failed") == {bad.name}
    side = sidecar(spool, bad.name)
    assert side["last"]["sqlstate"] == "22P05" and side["last"]["command"] == "load"
    assert side["last"]["error_class"] == "FatalLoadError" and side["count"] == 1
    with psycopg.connect(db_url) as conn:  # nothing of the bad release, not even its row
        assert conn.execute("SELECT count(*) FROM releases WHERE release = '2.0'").fetchone() == (
            0,
        )
    assert bad.name not in ledger(db_url)
    (failed,) = attempts(db_url, bad.name)  # the failed attempt is on record all the same
    assert failed["outcome"] == "failed" and failed["sqlstate"] == "22P05"
    assert "rhai/2.0" in failed["error"] and failed["rows"] == 0


_FAIL_ON = """CREATE FUNCTION wetl_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.release = TG_ARGV[0] THEN
        RAISE EXCEPTION 'refused by a test trigger' USING ERRCODE = '22023';
    END IF;
    RETURN NEW;
END $$"""


def test_a_failure_in_the_commit_round_trip_fails_that_file_only(spool: Spool, db_url: str) -> None:
    """The build_origins fill, the ledger row and the COMMIT go in one round trip: a
    statement failing there rolls the file back and the connection goes on."""
    load.migrate_db(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(_FAIL_ON)
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON build_origins"
            " FOR EACH ROW EXECUTE FUNCTION wetl_test_refuse('2.0')"
        )
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON spool_files"
            " FOR EACH ROW EXECUTE FUNCTION wetl_test_refuse('4.0')"
        )
    files = {r: write(spool, two_artifacts(), release=r).name for r in ("1.0", "2.0", "3.0")}
    files |= {r: write(spool, two_artifacts(), release=r).name for r in ("4.0", "5.0")}
    report = run(spool, db_url)
    assert sorted(report.applied) == sorted(files[r] for r in ("1.0", "3.0", "5.0"))
    assert sorted(f for f, _ in report.failed) == sorted([files["2.0"], files["4.0"]])
    assert names(spool, "failed") == {files["2.0"], files["4.0"]}
    with psycopg.connect(db_url) as conn:  # nothing of the failed releases
        got = conn.execute("SELECT release FROM releases ORDER BY 1").fetchall()
        assert got == [("1.0",), ("3.0",), ("5.0",)]
        origins = conn.execute("SELECT DISTINCT release FROM build_origins ORDER BY 1").fetchall()
        assert origins == [("1.0",), ("3.0",), ("5.0",)]
    assert set(ledger(db_url)) == {files[r] for r in ("1.0", "3.0", "5.0")}
    for r in ("2.0", "4.0"):  # recorded on the same connection, after the rollback
        (failed,) = attempts(db_url, files[r])
        assert failed["outcome"] == "failed" and failed["sqlstate"] == "22023"


def test_truncated_file_fails_with_sidecar(spool: Spool, db_url: str) -> None:
    path = write(spool, two_artifacts())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    report = run(spool, db_url)
    assert [f for f, _ in report.failed] == [path.name] and not report.ok
    assert "rhai/3.0" in report.failed[0][1]
    assert sidecar(spool, path.name)["last"]["error_class"] == "CorruptSpoolFileError"


def _rewrite_meta(path: Path, dest: Path, **changes: str) -> None:
    table = pq.read_table(path)
    kv = dict(pq.read_metadata(path).metadata or {})
    for key, value in changes.items():
        kv[(fmt.META_PREFIX + key).encode()] = value.encode()
    pq.write_table(table.replace_schema_metadata(kv), dest, row_group_size=1)


def test_unknown_schema_version_fails_with_sidecar(spool: Spool, db_url: str) -> None:
    path = write(spool, two_artifacts())
    tmp = Path(spool.location) / "tmp" / "x.parquet"
    _rewrite_meta(path, tmp, schema_version="99")
    os.replace(tmp, path)
    report = run(spool, db_url)
    assert [f for f, _ in report.failed] == [path.name]
    assert "unknown spool schema version 99" in sidecar(spool, path.name)["last"]["message"]


def test_name_and_metadata_mismatch_fails(spool: Spool, db_url: str) -> None:
    path = write(spool, two_artifacts(), release="3.0")
    other = path.with_name(path.name.replace("~3.0~", "~3.1~"))
    path.rename(other)
    report = run(spool, db_url)
    assert [f for f, _ in report.failed] == [other.name]
    assert "metadata says rhai/3.0" in report.failed[0][1]
    assert sidecar(spool, other.name)["last"]["error_class"] == "CorruptSpoolFileError"


def test_row_not_matching_the_file_aborts_the_copy(spool: Spool, db_url: str) -> None:
    good = write(spool, two_artifacts(), release="1.0")
    path = write(spool, two_artifacts(), release="2.0")
    table = pq.read_table(path)
    column = table.schema.get_field_index("release")
    kv = pq.read_metadata(path).metadata
    table = table.set_column(
        column, table.schema.field(column), pa.array(["2.0", "9.9"], pa.string())
    ).replace_schema_metadata(kv)
    tmp = Path(spool.location) / "tmp" / "x.parquet"
    pq.write_table(table, tmp, row_group_size=1)
    os.replace(tmp, path)
    report = run(spool, db_url)
    assert report.applied == [good.name] and [f for f, _ in report.failed] == [path.name]
    assert "release differs" in report.failed[0][1]
    with psycopg.connect(db_url) as conn:  # the aborted COPY left nothing behind
        assert conn.execute("SELECT release FROM releases").fetchall() == [("1.0",)]
        assert conn.execute("SELECT count(*) FROM artifacts").fetchone() == (2,)


# --- orphans and crashes -----------------------------------------------------------------


def test_orphan_already_in_ledger_is_completed_without_reapplying(
    spool: Spool, db_url: str
) -> None:
    path = write(spool, two_artifacts())
    run(spool, db_url)
    # a loader died after COMMIT, before moving the file: it is still in loading/
    os.replace(_dir(spool, "loaded") / path.name, _dir(spool, "loading") / path.name)
    with psycopg.connect(db_url) as conn:  # re-applying would bring this drop back
        conn.execute("DELETE FROM drops WHERE filename = 'c-1.0-y.whl'")
    before = dump(db_url)
    report = run(spool, db_url)
    assert report.ok and report.recovered == [path.name] and not report.applied
    assert names(spool, "loaded") == {path.name} and not names(spool, "loading")
    assert dump(db_url) == before
    assert ledger(db_url)[path.name][:2] == ("applied", 1)


def test_orphan_without_ledger_row_is_loaded(spool: Spool, db_url: str) -> None:
    path = write(spool, two_artifacts())
    os.replace(path, _dir(spool, "loading") / path.name)  # claimed, loader died before commit
    report = run(spool, db_url)
    assert report.ok and report.applied == [path.name]
    assert names(spool, "loaded") == {path.name}
    assert len(dump(db_url)["drops"]) == 3


@pytest.mark.parametrize("point", ["load-before-copy", "load-mid-copy", "load-after-commit"])
def test_sigkill_at_crash_points_then_next_run_finishes(
    spool: Spool, db_url: str, point: str
) -> None:
    path = write(spool, two_artifacts())
    code = (
        "import sys; from pathlib import Path; from etl import load; from etl.spool import Spool;"
        "load.load_spool(Spool(Path(sys.argv[1])), sys.argv[2], retry_seconds=0)"
    )
    env = child_env(ETL_CRASH_AT=point)
    proc = subprocess.run(
        [sys.executable, "-c", code, spool.location, db_url], env=env, timeout=120, check=False
    )
    assert proc.returncode == -9
    assert names(spool, "loading") == {path.name}
    committed = point == "load-after-commit"
    assert (path.name in ledger(db_url)) == committed
    report = run(spool, db_url)
    assert report.ok
    assert (report.recovered if committed else report.applied) == [path.name]
    assert names(spool, "loaded") == {path.name}
    assert len(dump(db_url)["drops"]) == 3
    assert ledger(db_url)[path.name][:2] == ("applied", 1)


# --- the database going away -------------------------------------------------------------


def _terminate_loader_once(db_url: str) -> Any:
    fired: list[str] = []

    def on_event(ev: load.LoadEvent) -> None:
        if ev.kind == "start" and not fired:
            fired.append(ev.file)
            with psycopg.connect(db_url, autocommit=True) as conn:
                killed = conn.execute(
                    "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchall()
            assert killed and all(k[0] for k in killed)

    return on_event, fired


def test_terminated_connection_requeues_file_and_later_run_finishes(
    spool: Spool, db_url: str
) -> None:
    path = write(spool, two_artifacts())
    on_event, fired = _terminate_loader_once(db_url)
    report = run(spool, db_url, progress=on_event, retry_seconds=0)
    assert fired == [path.name]
    assert not report.ok and report.requeued == [path.name] and not report.failed
    assert report.error and "gave up" in report.error
    assert names(spool, "ready") == {path.name} and not names(spool, "failed")
    assert spool.failure(path.name) is None
    later = run(spool, db_url)
    assert later.ok and later.applied == [path.name]


def test_terminated_connection_is_retried_within_the_run(spool: Spool, db_url: str) -> None:
    paths = [write(spool, two_artifacts(), release=r) for r in ("1.0", "2.0")]
    on_event, fired = _terminate_loader_once(db_url)
    events: list[load.LoadEvent] = []

    def progress(ev: load.LoadEvent) -> None:
        events.append(ev)
        on_event(ev)

    report = run(spool, db_url, progress=progress, retry_seconds=60)
    assert len(fired) == 1
    assert report.ok and sorted(report.applied) == sorted(p.name for p in paths)
    assert not report.requeued
    kinds = [e.kind for e in events]
    assert "requeued" in kinds and "retry" in kinds
    assert names(spool, "loaded") == {p.name for p in paths}


def test_connection_terminated_inside_the_transaction_is_retried(spool: Spool, db_url: str) -> None:
    path = write(spool, two_artifacts())
    load.migrate_db(db_url)
    events: list[load.LoadEvent] = []
    result: list[load.LoadReport] = []
    with psycopg.connect(db_url) as holder:  # holds the release lock: the loader waits on it
        holder.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext('rhai/3.0'))", [releases.RELEASE_LOCK_KEY]
        )

        def go() -> None:
            result.append(run(spool, db_url, progress=events.append, retry_seconds=60))

        loader = threading.Thread(target=go)
        loader.start()
        with psycopg.connect(db_url, autocommit=True) as admin:
            for _ in range(6000):  # until the loader's backend waits for the lock, in its txn
                waiting = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event = 'advisory' AND state = 'active'"
                ).fetchall()
                if waiting or not loader.is_alive():
                    break
                loader.join(timeout=0.01)  # wakes at once if the loader ends; else look again
            assert len(waiting) == 1
            assert admin.execute(
                "SELECT pg_terminate_backend(%s, 10000)", [waiting[0][0]]
            ).fetchone() == (True,)
        holder.rollback()  # lets the retried attempt through
        loader.join(timeout=120)
    assert result and result[0].ok and result[0].applied == [path.name]
    assert [e.kind for e in events if e.kind in ("requeued", "applied")] == ["requeued", "applied"]
    assert "rhai/3.0" in next(e.detail for e in events if e.kind == "requeued")
    assert len(dump(db_url)["drops"]) == 3 and ledger(db_url)[path.name][:2] == ("applied", 1)


def test_load_file_loads_a_claimed_file(spool: Spool, db_url: str) -> None:
    path = write(spool, two_artifacts())
    load.migrate_db(db_url)
    claim = spool.claim(spool.files("ready")[0])
    assert claim is not None
    with psycopg.connect(db_url, autocommit=True) as conn:
        result = load.load_file(conn, claim)
    assert (result.outcome, result.rows) == ("applied", 5) and result.seconds > 0
    assert names(spool, "loaded") == {path.name}


def test_unreachable_database_raises_transient(spool: Spool) -> None:
    write(spool, two_artifacts())
    with pytest.raises(TransientLoadError):
        run(spool, "host=127.0.0.1 port=1 dbname=x user=postgres connect_timeout=2")
    assert len(names(spool, "ready")) == 1


@pytest.mark.parametrize(
    "change",
    [{"dbname": "no_such_database"}, {"user": "no_such_role"}, {"port": "not-a-port"}],
    ids=["database", "role", "url"],
)
def test_wrong_database_settings_are_configuration_errors(
    spool: Spool, db_url: str, change: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    write(spool, two_artifacts())
    wrong = make_conninfo(db_url, **change)
    with pytest.raises(ConfigError, match="cannot connect to the database"):
        run(spool, wrong)
    assert len(names(spool, "ready")) == 1
    code = cli.main(["load", "--spool", spool.location, "--database-url", wrong])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "cannot connect" in err  # exit 2, one line
    assert len(names(spool, "ready")) == 1


# --- concurrency ---------------------------------------------------------------------------


def test_concurrent_runs_load_every_file_exactly_once(spool: Spool, db_url: str) -> None:
    paths = [write(spool, two_artifacts(), release=f"{i}.0") for i in range(12)]
    reports: list[load.LoadReport] = []
    errors: list[BaseException] = []

    def go() -> None:
        try:
            reports.append(run(spool, db_url, workers=2))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    applied = [n for r in reports for n in r.applied]
    assert sorted(applied) == sorted(p.name for p in paths)  # each once, none twice
    assert all(r.ok for r in reports)
    assert {v[1] for v in ledger(db_url).values()} == {1}
    assert names(spool, "loaded") == {p.name for p in paths}
    assert len(dump(db_url)["drops"]) == 3 * 12


def test_many_versions_with_workers_end_with_the_newest(spool: Spool, db_url: str) -> None:
    written = []
    for hours in (2, 0, 1):  # written out of order: oldest-first by mtime is not by updated_at
        for release in ("1.0", "2.0", "3.0"):
            rows = [artifact(drops=(drop(f"w-{hours}.whl"),), build_id=f"b{hours}")]
            at = T0 + timedelta(hours=hours)
            written.append(write(spool, rows, release=release, updated_at=at))
    report = run(spool, db_url, workers=3)
    assert report.ok and len(report.applied) + len(report.superseded) == 9
    data = dump(db_url)
    assert [(r[1], r[2]) for r in data["releases"]] == [
        (release, T0 + timedelta(hours=2)) for release in ("1.0", "2.0", "3.0")
    ]
    assert {d[4] for d in data["drops"]} == {"w-2.whl"}
    assert set(ledger(db_url)) == {p.name for p in written}


def test_migrate_twice_and_concurrently(db_url: str) -> None:
    results: list[int] = []
    errors: list[BaseException] = []

    def go() -> None:
        try:
            results.append(load.migrate_db(db_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [schema.SCHEMA_VERSION] * 4
    assert load.migrate_db(db_url) == schema.SCHEMA_VERSION
    with psycopg.connect(db_url) as conn:
        versions = conn.execute("SELECT version FROM wheels_etl_schema").fetchall()
    assert versions == [(v,) for v, _, _ in schema.MIGRATIONS]


# --- compression ---------------------------------------------------------------------------


def test_compression_auto_follows_server_and_explicit_choices_stick(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        supported = schema.lz4_supported(conn)
        enumvals = conn.execute(
            "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'"
        ).fetchone()
        assert supported == (enumvals is not None and "lz4" in enumvals[0])
        with pytest.raises(LoadError, match="inside a transaction"):
            schema.migrate(conn)  # only etl.load opens transactions

        def migrate(compression: str = "auto") -> None:
            with conn.transaction():
                schema.migrate(conn, compression)

        migrate()
        want = "lz4" if supported else "pglz"
        assert schema.recorded_compression(conn) == want
        assert set(schema.column_compression(conn).values()) == {want}
        migrate("pglz")
        assert schema.recorded_compression(conn) == "pglz"
        assert set(schema.column_compression(conn).values()) == {"pglz"}
        migrate()  # auto keeps what is recorded
        assert schema.recorded_compression(conn) == "pglz"
        if supported:
            migrate("lz4")
            assert set(schema.column_compression(conn).values()) == {"lz4"}


# --- status helpers ------------------------------------------------------------------------


def test_ledger_summary_and_names(spool: Spool, db_url: str) -> None:
    assert db_ledger.names(db_url) == set()
    assert db_ledger.summary(db_url)["files"] == 0
    a = write(spool, two_artifacts(), release="1.0")
    b = write(spool, two_artifacts(), release="2.0")
    run(spool, db_url)
    spool.requeue([a.name])
    run(spool, db_url)
    summary = db_ledger.summary(db_url)
    # a's re-load was `unchanged`; what applied its data stays on record
    assert summary["files"] == 2 and summary["outcomes"] == {"applied": 2}
    assert [a["outcome"] for a in attempts(db_url, a.name)] == ["applied", "unchanged"]
    assert summary["last_file"] == a.name and summary["last_loaded_at"]
    assert (summary["releases"], summary["artifacts"], summary["drops"]) == (2, 4, 6)
    json.dumps(summary)
    assert db_ledger.names(db_url) == {a.name, b.name}
