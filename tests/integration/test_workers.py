"""wheels-etl on real Celery workers (real Redis, real RabbitMQ, real worker processes):
the database must equal the source field by field, exactly as with extract + load."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.cli import cli_env, run_cli
from tests.support.gen import GenSpec, generate
from tests.support.httpserver import Fault, SourceServer
from tests.support.oracle import (
    assert_db_equals_source,
)
from tests.support.procs import spool_snapshot
from tests.support.redisserver import RedisServer
from tests.support.s3server import S3Server
from tests.support.workers import (
    Broker,
    SpoolView,
    rabbitmq_broker,
    redis_broker,
    spool_busy,
    wait_loaded,
    workers,
)

SPEC = GenSpec(products=2, releases=5, artifacts=3, packages=30, drops=40, seed=11, page_size=2)


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    generate(root, SPEC)
    return root


@pytest.fixture(params=["local", "s3"])
def spool(request: pytest.FixtureRequest, tmp_path: Path) -> SpoolView:
    """The shared spool of the workers: a folder, or a prefix of a fresh S3 bucket."""
    if request.param == "local":
        return SpoolView.local(tmp_path / "spool")
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = server.new_bucket()
    return SpoolView(server.filesystem(), f"{bucket}/spool", f"s3://{bucket}/spool", server.env())


@pytest.fixture
def redis(redis_server: RedisServer) -> Iterator[Broker]:
    with redis_broker(redis_server) as broker:
        yield broker


def env_for(
    broker: Broker, source: str | Path, spool: Path | SpoolView, db_url: str
) -> dict[str, str]:
    if isinstance(spool, SpoolView):
        extra = {**broker.env(), **spool.env}
        return cli_env(spool=spool.location, source=source, database_url=db_url, **extra)
    return cli_env(spool=spool, source=source, database_url=db_url, **broker.env())


def enqueue_wait(env: dict[str, str], *extra: str) -> tuple[int, str, str]:
    result = run_cli("enqueue", "--wait", "--timeout", "150", *extra, env=env, timeout=180)
    return result.returncode, result.stdout, result.stderr


def test_three_workers_on_redis_land_the_source_exactly(
    generated: Path, tmp_path: Path, db_url: str, redis: Broker, spool: SpoolView
) -> None:
    with SourceServer(generated) as server:
        env = env_for(redis, server.url, spool, db_url)
        with workers(env, tmp_path / "logs", 3) as pool:
            code, out, err = enqueue_wait(env)
            assert code == 0, (out, err, pool.log_tail())
            # --wait returns once the database holds every file; the worker that committed
            # the last one may still be moving it to loaded/ (on S3: intent, copy, delete).
            # Stopped as Kubernetes stops it (SIGTERM, warm shutdown), it finishes that.
            pool.stop()
    assert "extract: 10 spooled, 0 unchanged, 0 failed" in out
    assert "load: 10 applied, 0 unchanged, 0 superseded, 0 failed" in out
    assert_db_equals_source(generated, db_url)
    assert len(spool.names("loaded")) == 10 and spool.busy() == []


def test_three_workers_on_rabbitmq_land_the_source_exactly(
    generated: Path, tmp_path: Path, db_url: str
) -> None:
    spool = tmp_path / "spool"
    with rabbitmq_broker() as broker, SourceServer(generated) as server:
        env = env_for(broker, server.url, spool, db_url)
        with workers(env, tmp_path / "logs", 3) as pool:
            code, out, err = enqueue_wait(env)
            assert code == 0, (out, err, pool.log_tail())
    assert "load: 10 applied" in out
    assert_db_equals_source(generated, db_url)


def artifact_requests(server: SourceServer) -> list[str]:
    """Requests for artifact documents (anything but index, listings and release.json)."""
    return [
        r.target
        for r in server.requests
        if not r.target.endswith(("/index.json", "release.json"))
        and "releases" not in r.target.rsplit("/", 1)[-1]
        and r.target != "/index.json"
    ]


def test_incremental_rerun_from_another_worker_fetches_no_artifact(
    generated: Path, tmp_path: Path, db_url: str, redis: Broker, spool: SpoolView
) -> None:
    with SourceServer(generated) as server:
        env = env_for(redis, server.url, spool, db_url)
        with workers(env, tmp_path / "logs-a", 1) as first:
            code, out, err = enqueue_wait(env)
            assert code == 0, (out, err, first.log_tail())
        assert len(artifact_requests(server)) == 10 * 3 * 4  # releases x artifacts x files
        server.clear()
        with workers(env, tmp_path / "logs-b", 1) as second:  # a new process, a new node
            code, out, err = enqueue_wait(env)
            assert code == 0, (out, err, second.log_tail())
        assert artifact_requests(server) == []
        assert server.count() > 0  # it did list the source
    assert "extract: 0 spooled, 10 unchanged, 0 failed" in out
    assert_db_equals_source(generated, db_url)


def test_hostile_release_fails_alone_through_celery(
    generated: Path, tmp_path: Path, db_url: str, redis: Broker
) -> None:
    product = sorted(p.name for p in generated.iterdir() if p.is_dir())[0]
    version = sorted(p.name for p in (generated / product).iterdir() if p.is_dir())[2]
    doc = json.loads((generated / product / version / "release.json").read_text())
    graph = doc["artifacts"][1]["files"]["dependency_graph"]
    spool = tmp_path / "spool"
    with SourceServer(generated) as server:
        server.always(f"/{product}/{version}/{graph}", Fault.content(b"{not json"))
        env = env_for(redis, server.url, spool, db_url)
        with workers(env, tmp_path / "logs", 3) as pool:
            code, out, err = enqueue_wait(env)
            assert code == 1, (out, err, pool.log_tail())
    assert "extract: 9 spooled, 0 unchanged, 1 failed" in out
    assert f"failed {product}/{version}" in err and graph in err
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT product, release FROM releases").fetchall()
    assert len(rows) == 9 and (product, version) not in rows
    snap = spool_snapshot(spool)
    assert not any(version in n and product in n for n in snap.all_files)
    assert not snap.problems()
    # the failure is kept for `status`, as a `wheels-etl extract` run keeps it
    status = run_cli("status", "--json", env=env)
    doc = json.loads(status.stdout)
    [prod] = [p for p in doc["products"] if p["product"] == product]
    [failure] = prod["failures"]
    assert failure["release"] == version and graph in failure["reason"], failure


def test_an_unknown_product_exits_2_from_enqueue_as_from_extract(
    generated: Path, tmp_path: Path, db_url: str, redis: Broker
) -> None:
    env = env_for(redis, generated, tmp_path / "spool", db_url)
    extract = run_cli("extract", "--product", "nope", env=env)
    assert extract.returncode == 2 and "unknown product nope" in extract.stderr, extract
    with workers(env, tmp_path / "logs", 1) as pool:
        code, out, err = enqueue_wait(env, "--product", "nope")
        assert code == 2, (out, err, pool.log_tail())
    assert "unknown product nope" in err


def test_corrupt_spool_file_goes_to_failed_with_its_sidecar(
    generated: Path, tmp_path: Path, db_url: str, redis: Broker
) -> None:
    spool = tmp_path / "spool"
    env = env_for(redis, generated, spool, db_url)
    with workers(env, tmp_path / "logs", 3) as pool:
        code, out, err = enqueue_wait(env)
        assert code == 0, (out, err, pool.log_tail())
        # a file that is not what its name says, dropped into ready/ by hand
        loaded = sorted((spool / "loaded").glob("*.parquet"))
        bad = spool / "ready" / loaded[0].name.replace(loaded[0].name[-24:-8], "0" * 16)
        bad.write_bytes(b"PAR1 this is not a parquet file PAR1")
        result = run_cli("reconcile", env=env)
        assert result.returncode == 0, result
        assert "1 ready file(s) never loaded" in result.stdout
        deadline = time.monotonic() + 60
        while not (spool / "failed" / bad.name).exists():
            assert time.monotonic() < deadline, pool.log_tail()
            time.sleep(0.2)
    sidecar = json.loads((spool / "failed" / f"{bad.name}.error.json").read_text())
    assert sidecar["count"] == 1 and sidecar["last"]["error_class"] == "CorruptSpoolFileError"
    assert bad.name in sidecar["last"]["message"] or sidecar["last"]["release"]
    assert_db_equals_source(generated, db_url)


def test_lost_messages_after_a_broker_restart_are_recovered_by_reconcile(
    generated: Path, tmp_path: Path, db_url: str, redis: Broker, spool: SpoolView
) -> None:
    env = env_for(redis, generated, spool, db_url)
    with workers(env, tmp_path / "logs-1", 1) as pool:
        run_cli("enqueue", env=env).returncode == 0 or pytest.fail("enqueue failed")
        deadline = time.monotonic() + 60
        while redis.queued() < 4:  # listed: extract (and load) tasks wait in the queue
            assert time.monotonic() < deadline, pool.log_tail()
            time.sleep(0.01)
        pool.kill_all()
    queued_before = redis.queued()
    redis.flush()  # a Redis restarted without persistence: every message is gone
    assert redis.queued() == 0 and queued_before >= 4
    with workers(env, tmp_path / "logs-2", 3) as pool:
        result = run_cli("reconcile", "--relist", env=env)
        assert result.returncode == 0, result
        wait_loaded(generated, db_url, spool, pool)
    assert_db_equals_source(generated, db_url)
    assert len(spool.names("loaded")) == 10 and spool.busy() == []


def test_enqueue_without_a_broker_is_a_clear_error(tmp_path: Path, db_url: str) -> None:
    env = cli_env(spool=tmp_path / "spool", database_url=db_url)
    result = run_cli("enqueue", env=env)
    assert result.returncode == 2 and "ETL_BROKER_URL is not set" in result.stderr, result
    env["ETL_BROKER_URL"] = "redis://127.0.0.1:1/0"
    result = run_cli("enqueue", env=env)
    assert result.returncode == 3 and "cannot send to the broker" in result.stderr, result


@pytest.mark.parametrize("command", ["enqueue", "reconcile", "worker"])
def test_a_broker_url_of_no_known_transport_is_one_line_exit_2(
    tmp_path: Path, command: str
) -> None:
    """kombu raised a bare KeyError ('No such transport') while connecting: a traceback."""
    env = cli_env(spool=tmp_path / "spool", ETL_BROKER_URL="garbage://user:hunter2@host/0")
    result = run_cli(command, env=env, timeout=120)
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result
    assert "no broker transport for the scheme 'garbage'" in result.stderr, result
    assert "hunter2" not in result.stderr


def test_spool_busy_helper_sees_leftovers(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    (tmp_path / "tmp" / "x.part").write_bytes(b"")
    assert spool_busy(tmp_path) == ["tmp/x.part"]
    shutil.rmtree(tmp_path / "tmp")
    assert spool_busy(tmp_path) == []
