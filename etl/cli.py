"""``wheels-etl`` command line: each command parses flags and calls one library function.

Exit codes: 0 all went well; 1 some releases or files failed (one line each says why);
2 bad usage or configuration; 3 source or database unavailable after retries;
4 the spool's disk is full.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence
from typing import Any

from etl.config import Settings
from etl.errors import (
    BrokerError,
    ConfigError,
    EtlError,
    SpoolFullError,
    TransientFetchError,
    TransientLoadError,
)
from etl.progress import Progress, human_bytes
from etl.spool import Spool

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_DISK_FULL = 0, 1, 2, 3, 4


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    return Settings.from_env(
        source_url=getattr(args, "source", None),
        spool_dir=getattr(args, "spool", None),
        database_url=getattr(args, "database_url", None),
        **extra,
    )


def _database(settings: Settings) -> str:
    from etl.db import resolve_database_url

    return resolve_database_url(settings.database_url)


# --- commands ------------------------------------------------------------------------


def cmd_extract(args: argparse.Namespace) -> int:
    from etl.extract import ExtractEvent, extract

    settings = _settings(
        args,
        products=tuple(args.product or ()) or None,
        workers=args.workers,
        full=args.full or None,
        max_file_bytes=args.max_file_bytes,
        max_inflight_bytes=args.max_inflight_bytes,
        retries=args.retries,
        ca_bundle=args.ca_bundle,
        verify_tls=False if args.insecure else None,
    )
    spool = Spool(settings.spool_dir)
    bar = Progress("extract")

    def on_event(ev: ExtractEvent) -> None:
        if ev.kind == "failed":
            bar.line(f"FAILED {ev.release}: {ev.detail}")
        elif ev.kind != "listed" and not bar.tty:
            bar.line(f"{ev.kind:<9} {ev.release} {ev.detail}".rstrip())
        bar.update(ev.releases_done, ev.releases_known, ev.bytes_fetched, ev.release)

    try:
        report = extract(settings, spool, progress=on_event)
    finally:
        bar.close()
    stats = report.stats
    print(
        f"extract: {len(report.spooled)} spooled, {len(report.unchanged)} unchanged, "
        f"{len(report.failed)} failed; {stats.get('requests', 0)} requests, "
        f"{human_bytes(stats.get('bytes', 0))} fetched -> {spool.root}/ready"
    )
    for release, reason in report.failed:
        print(f"  failed {release}: {reason}", file=sys.stderr)
    if report.fatal:
        print(f"extract stopped: {report.fatal}", file=sys.stderr)
        return EXIT_DISK_FULL
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_load(args: argparse.Namespace) -> int:
    settings = _settings(args, load_workers=args.workers, load_retry_seconds=args.retry_seconds)
    return _load(settings, Spool(settings.spool_dir))


def _load(settings: Settings, spool: Spool) -> int:
    from etl import load

    conninfo = _database(settings)
    bar = Progress("load")

    def on_event(ev: load.LoadEvent) -> None:
        if ev.kind in ("failed", "requeued", "retry") or (not bar.tty and ev.kind != "start"):
            bar.line(str(ev))
        bar.update(ev.files_done, ev.files_total, ev.bytes_done, ev.file)

    try:
        report = load.load_spool(
            spool,
            conninfo,
            workers=settings.load_workers,
            retry_seconds=settings.load_retry_seconds,
            progress=on_event,
        )
    finally:
        bar.close()
    print(
        f"load: {len(report.applied)} applied, {len(report.unchanged)} unchanged, "
        f"{len(report.superseded)} superseded, {len(report.failed)} failed, "
        f"{len(report.requeued)} back to ready; {report.rows} rows, "
        f"{human_bytes(report.json_bytes)} of JSON"
    )
    for name, reason in report.failed:
        print(f"  failed {name}: {reason}", file=sys.stderr)
        print(f"    replay with: wheels-etl replay {name}", file=sys.stderr)
    if report.requeued:
        print(
            f"  {len(report.requeued)} file(s) went back to ready: the database was unavailable",
            file=sys.stderr,
        )
        return EXIT_UNAVAILABLE
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_migrate(args: argparse.Namespace) -> int:
    from etl import load

    version = load.migrate_db(_database(_settings(args)))
    print(f"database schema at version {version}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from etl import status

    settings = _settings(args)
    spool = Spool(settings.spool_dir)
    conninfo: str | None
    try:
        conninfo = _database(settings)
    except EtlError as exc:
        conninfo = None
        print(f"database unavailable: {exc}", file=sys.stderr)
    info = status.collect(spool, conninfo)
    print(json.dumps(info, indent=2, default=str) if args.json else status.render(info))
    return EXIT_FAILED if info["failed"] else EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    from etl import query

    spool = Spool(_settings(args).spool_dir)
    states = tuple(args.state) if args.state else query.DEFAULT_STATES
    result = query.run_sql(spool, args.sql, states) if args.sql else query.summary(spool)
    if args.json:
        print(
            json.dumps(
                [dict(zip(result.columns, r, strict=True)) for r in result.rows],
                default=str,
                indent=2,
            )
        )
    else:
        print(query.format_table(result, max_width=args.width))
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    settings = _settings(args)
    spool = Spool(settings.spool_dir)
    if not (args.files or args.failed or args.loaded):
        raise ConfigError("replay needs FILE names, --failed or --loaded")
    moved = spool.requeue(args.files, failed=args.failed)
    if args.loaded:
        moved += spool.requeue([f.name for f in spool.files("loaded")])
    print(f"replay: {len(moved)} file(s) back in ready/")
    return _load(settings, spool)


_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> float:
    m = _AGE.match(text.strip())
    if not m:
        raise ConfigError(f"bad age {text!r}: use e.g. 30m, 12h, 7d, 2w")
    return float(m[1]) * _UNIT[m[2]]


def cmd_prune(args: argparse.Namespace) -> int:
    spool = Spool(_settings(args).spool_dir)
    count, freed = spool.prune(parse_age(args.older_than))
    print(f"prune: deleted {count} loaded file(s), freed {human_bytes(freed)}")
    return EXIT_OK


# --- workers (issue 12): Celery worker, enqueue, reconcile -------------------------------


def cmd_worker(args: argparse.Namespace) -> int:
    from etl.workers.worker import healthcheck, run_worker

    if args.healthcheck:
        return EXIT_OK if healthcheck() else EXIT_UNAVAILABLE
    return run_worker(args.celery_args)


def cmd_enqueue(args: argparse.Namespace) -> int:
    from etl.workers import runs

    settings = _settings(args, products=tuple(args.product or ()) or None, full=args.full or None)
    run_id = runs.enqueue(settings, products=settings.products, full=settings.full)
    print(f"enqueue: listing task sent (run {run_id})")
    if not args.wait:
        return EXIT_OK
    spool = Spool(settings.spool_dir)
    summary = runs.wait(
        settings,
        spool,
        _database(settings),
        run_id,
        poll_seconds=runs.poll_seconds(),
        timeout=args.timeout,
    )
    return _run_summary(summary, spool)


def _run_summary(s: Any, spool: Spool) -> int:
    print(
        f"extract: {len(s.spooled)} spooled, {len(s.unchanged)} unchanged, "
        f"{len(s.extract_failed)} failed -> {spool.root}/ready"
    )
    for release, reason in s.extract_failed:
        print(f"  failed {release}: {reason}", file=sys.stderr)
    print(
        f"load: {s.count('applied')} applied, {s.count('unchanged')} unchanged, "
        f"{s.count('superseded')} superseded, {len(s.load_failed)} failed"
    )
    for name, reason in s.load_failed:
        print(f"  failed {name}: {reason}", file=sys.stderr)
        print(f"    replay with: wheels-etl replay {name}", file=sys.stderr)
    if s.listing_error is not None:
        print(f"enqueue: listing failed: {s.listing_error}", file=sys.stderr)
    if s.spool_full is not None:
        return EXIT_DISK_FULL
    if s.listing_transient or not s.settled:
        if not s.settled:
            print(f"enqueue: still pending after the timeout: {len(s.pending)}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    return EXIT_OK if s.ok else EXIT_FAILED


def cmd_reconcile(args: argparse.Namespace) -> int:
    from etl.workers.reconcile import reconcile

    settings = _settings(args, products=tuple(args.product or ()) or None, full=args.full or None)
    report = reconcile(settings, relist=args.relist, products=settings.products, full=settings.full)
    print(f"reconcile: {report}")
    return EXIT_OK


def add_worker_commands(add: Any, sub: Any) -> None:
    w = sub.add_parser(
        "worker",
        help="Run a Celery worker (celery worker options pass through).",
        description="Run a Celery worker: same as `celery -A etl.workers.app worker ...`. "
        "Environment: ETL_BROKER_URL plus the settings of extract and load.",
    )
    w.add_argument(
        "--healthcheck",
        action="store_true",
        help="exit 0 if this host's worker answers a ping (for a liveness probe)",
    )
    w.set_defaults(func=cmd_worker, celery_args=[])

    q = add("enqueue", "Send the listing task to the workers (env ETL_BROKER_URL).")
    q.add_argument("--source", help="base URL or folder (env ETL_SOURCE_URL)")
    q.add_argument("--database-url", help="Postgres conninfo for --wait (env DATABASE_URL)")
    q.add_argument("--product", action="append", help="only this product (repeatable)")
    q.add_argument("--full", action="store_true", help="re-extract even unchanged releases")
    q.add_argument(
        "--wait",
        action="store_true",
        help="wait until every enqueued release is loaded or failed; print the summary",
    )
    q.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")
    q.set_defaults(func=cmd_enqueue)

    r = add("reconcile", "Re-send load tasks for ready files and orphaned claims.")
    r.add_argument("--database-url", help="Postgres conninfo (env DATABASE_URL)")
    r.add_argument(
        "--relist", action="store_true", help="send the listing task too (lost extract tasks)"
    )
    r.add_argument("--product", action="append", help="with --relist: only this product")
    r.add_argument("--full", action="store_true", help="with --relist: re-extract everything")
    r.set_defaults(func=cmd_reconcile)


# --- parser --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wheels-etl",
        description="Disk-spooled ETL for wheel collections: source -> Parquet spool -> Postgres.",
        epilog="Environment: ETL_SOURCE_URL, ETL_SOURCE_TOKEN, ETL_SPOOL_DIR, DATABASE_URL; "
        "workers: ETL_BROKER_URL (see docs/running-across-machines.md).",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.add_argument("--spool", help="spool folder (env ETL_SPOOL_DIR, default ./spool)")
        return sp

    def add_db(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--database-url",
            help="Postgres conninfo (env DATABASE_URL; unset: embedded server in .wheels-etl/)",
        )

    e = add("extract", "Fetch releases from the source into spool files (ready/).")
    e.add_argument("--source", help="base URL or folder (env ETL_SOURCE_URL; default: samples)")
    e.add_argument("--product", action="append", help="only this product (repeatable)")
    e.add_argument("--workers", type=int, help="parallel fetches (default: 2 x CPUs, 2..8)")
    e.add_argument("--full", action="store_true", help="re-extract even unchanged releases")
    e.add_argument("--max-file-bytes", type=int, help="per-document size limit (256 MiB)")
    e.add_argument(
        "--max-inflight-bytes",
        type=int,
        help="cap on fetched bytes held in memory by all workers (512 MiB; exceeded by at "
        "most one artifact's files)",
    )
    e.add_argument("--retries", type=int, help="attempts per document on transient errors")
    e.add_argument("--ca-bundle", help="CA bundle for TLS verification (env ETL_CA_BUNDLE)")
    e.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    e.set_defaults(func=cmd_extract)

    ld = add("load", "Load ready spool files into Postgres, one transaction per file.")
    add_db(ld)
    ld.add_argument("--workers", type=int, help="parallel connections (default 1)")
    ld.add_argument(
        "--retry-seconds", type=float, help="how long to retry an unavailable database (60)"
    )
    ld.set_defaults(func=cmd_load)

    m = add("migrate", "Create or upgrade the database tables.")
    add_db(m)
    m.set_defaults(func=cmd_migrate)

    s = add("status", "Show the spool per state, failed files, and the database ledger.")
    add_db(s)
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_status)

    i = add("inspect", "Summarise or query spool files with DuckDB.")
    i.add_argument("--sql", help="a DuckDB query over the views artifacts, drops, files")
    i.add_argument(
        "--state", action="append", help="states to include (default: ready, loading, loaded)"
    )
    i.add_argument("--json", action="store_true", help="rows as JSON")
    i.add_argument("--width", type=int, default=60, help="max column width in the table")
    i.set_defaults(func=cmd_inspect)

    r = add("replay", "Move files (or all failed ones) back to ready and load them.")
    add_db(r)
    r.add_argument("files", nargs="*", metavar="FILE", help="spool file names or paths")
    r.add_argument("--failed", action="store_true", help="every file in failed/")
    r.add_argument("--loaded", action="store_true", help="every file in loaded/ (after a restore)")
    r.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    r.set_defaults(func=cmd_replay)

    pr = add("prune", "Delete loaded spool files older than an age (never ready/loading/failed).")
    pr.add_argument("--older-than", required=True, help="age such as 12h, 7d, 2w")
    pr.set_defaults(func=cmd_prune)

    add_worker_commands(add, sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # only `worker` takes options of its own (celery's), passed through
        if args.command != "worker":
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.celery_args = extra
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"wheels-etl {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SpoolFullError as exc:
        print(f"wheels-etl {args.command}: {exc}", file=sys.stderr)
        return EXIT_DISK_FULL
    except (TransientFetchError, TransientLoadError, BrokerError) as exc:
        print(f"wheels-etl {args.command}: unavailable: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except EtlError as exc:
        print(f"wheels-etl {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"wheels-etl {args.command}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
