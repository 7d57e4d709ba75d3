"""``wheels-etl`` command line: each command parses flags and calls one library function.

Exit codes: 0 all went well; 1 some releases or files failed (one line each says why);
2 bad usage or configuration; 3 source, database, object store or broker unavailable;
4 the spool's disk is full; 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import io
import os
import sys
import time
import typing
from collections.abc import Sequence
from typing import Any

import click

from etl import cliparser, summary
from etl.config import Command, Settings, options_for
from etl.errors import (
    EXIT_DISK_FULL,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    ConfigError,
    EtlError,
)
from etl.progress import Progress
from etl.spool import Spool


def _settings(args: argparse.Namespace, command: Command) -> Settings:
    """The command's settings: flags given on the line, then (as for a worker's task)
    each variable, then the defaults -- all three as :data:`etl.config.OPTIONS` declares."""
    given = {s.field: s.to_field(args.given[s.option.name]) for s in options_for(command)
             if s.option.name in args.given}  # fmt: skip
    return Settings.from_env(**given)


def _database(settings: Settings, *, start: bool = True) -> str:
    from etl.db.url import resolve_database_url

    return resolve_database_url(settings.database_url, start=start)


def _settle_start_up() -> None:
    """Once the command's imports are done: what they made lives until exit, so it is
    hidden from the cyclic collector, whose full collections at exit walked all of it
    (~40 ms of every ``wheels-etl load``); the run's own garbage is collected as before."""
    gc.freeze()


def _quiet(args: argparse.Namespace) -> bool:
    return int(getattr(args, "verbosity", 0)) < 0


# --- commands ------------------------------------------------------------------------


def cmd_extract(args: argparse.Namespace) -> int:
    from etl.extract import ExtractEvent, extract

    settings = _settings(args, "extract")
    spool = Spool(settings.spool_dir)
    bar = Progress("extract", unit="releases", quiet=_quiet(args) or args.json)
    started = time.monotonic()

    def on_event(ev: ExtractEvent) -> None:
        if ev.kind == "listing-done":
            bar.total_known()
        elif ev.kind == "failed":
            bar.line(f"FAILED {ev.release}: {ev.detail}")
        elif ev.kind != "listed" and not bar.tty:
            bar.line(f"{ev.kind:<9} {ev.release} {ev.detail}".rstrip())
        bar.update(ev.releases_done, ev.releases_known, ev.bytes_fetched, ev.release)

    try:
        report = extract(settings, spool, progress=on_event)
    finally:
        bar.close()
    seconds = time.monotonic() - started
    where = str(spool.location)
    if args.json:
        print(summary.dumps(summary.extract_doc(report, seconds, where)))
    else:
        print(summary.extract_text(report, seconds, where))
        if bar.quiet:  # otherwise each failure was already said as it happened
            for release, reason in report.failed:
                print(f"  failed {release}: {reason}", file=sys.stderr)
    if report.interrupted:
        print("wheels-etl extract: interrupted (complete files kept)", file=sys.stderr)
        return EXIT_INTERRUPTED
    if report.fatal:
        print(f"extract stopped: {report.fatal}", file=sys.stderr)
        return EXIT_DISK_FULL
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_load(args: argparse.Namespace) -> int:
    settings = _settings(args, "load")
    return _load(settings, Spool(settings.spool_dir, lease_seconds=settings.lease_seconds), args)


def _load(settings: Settings, spool: Spool, args: argparse.Namespace) -> int:
    from etl import load

    _settle_start_up()
    conninfo = _database(settings)
    bar = Progress("load", unit="files", quiet=_quiet(args) or args.json)
    bar.total_known()  # load lists ready/ before it starts
    started = time.monotonic()

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
    seconds = time.monotonic() - started
    if args.json:
        print(summary.dumps(summary.load_doc(report, seconds, str(settings.spool_dir))))
    else:
        print(summary.load_text(report, seconds))
        for name, reason in report.failed:
            line = f"  failed {name}: {reason}"
            print(summary.shown(line), file=sys.stderr)
            print(f"    replay with: {summary.replay_command(name)}", file=sys.stderr)
    if report.spool_full is not None:
        print(f"wheels-etl load: {report.spool_full}", file=sys.stderr)
        return EXIT_DISK_FULL
    if report.requeued:
        print(
            f"  {len(report.requeued)} file(s) went back to ready: the database was unavailable",
            file=sys.stderr,
        )
        return EXIT_UNAVAILABLE
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_migrate(args: argparse.Namespace) -> int:
    from etl import load

    version = load.migrate_db(_database(_settings(args, "migrate")))
    print(f"database schema at version {version}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from etl import status

    settings = _settings(args, "status")
    spool = Spool(settings.spool_dir, create=False)
    conninfo: str | None = None
    db_error: str | None = None
    try:
        conninfo = _database(settings, start=False)  # status never starts a server
    except ConfigError:  # a bad setting: exit 2, as from every command
        raise
    except EtlError as exc:
        db_error = str(exc)
    info = status.collect(spool, conninfo)
    if db_error is not None:
        info.database = {"error": db_error}
    print(summary.dumps(info.to_json()) if args.json else status.render(info))
    if isinstance(info.database, dict) and "error" in info.database:
        return EXIT_UNAVAILABLE
    return EXIT_FAILED if info.failed else EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    from etl import inspect as query

    spool = Spool(_settings(args, "inspect").spool_dir, create=False)
    states = tuple(args.state) if args.state else None
    query.run(spool, args.sql, states, as_json=args.json, width=args.width, out=sys.stdout)
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    settings = _settings(args, "replay")
    spool = Spool(settings.spool_dir, lease_seconds=settings.lease_seconds)
    if not (args.files or args.failed or args.loaded):
        raise ConfigError("replay needs FILE names, --failed or --loaded")
    moved = spool.requeue(args.files, failed=args.failed)
    if args.loaded:
        moved += spool.requeue([f.name for f in spool.files("loaded")])
    if not args.json:
        print(f"replay: {len(moved)} file(s) back in ready/")
    return _load(settings, spool, args)


def cmd_db(args: argparse.Namespace) -> int:
    from etl.db import embedded

    if args.action == "start":
        print(embedded.db_start())
    elif args.action == "stop":
        print("stopped" if embedded.db_stop() else "not running")
    elif args.action == "status":
        st = embedded.db_status()
        state = f"running (pid {st.pid}) {st.url}" if st.running else "stopped"
        print(f"{st.data_dir}: {state}" if st.initialised else f"{st.data_dir}: not created")
    else:
        print(_database(_settings(args, "db"), start=False))
    return EXIT_OK


def cmd_prune(args: argparse.Namespace) -> int:
    from etl.progress import human_bytes
    from etl.workers import notes

    settings = _settings(args, "prune")
    spool = Spool(settings.spool_dir)
    count, freed = spool.prune(args.older_than)
    old_notes = notes.prune(spool, settings.notes_max_age)
    print(
        f"prune: deleted {count} loaded file(s), freed {human_bytes(freed)}; "
        f"{old_notes} run note(s) older than {settings.notes_max_age / 86400:g} day(s) deleted"
    )
    return EXIT_OK


def cmd_spool(args: argparse.Namespace) -> int:
    from etl.spooling.store import init_store

    print(f"spool init: {init_store(_settings(args, 'spool').spool_dir)}")
    return EXIT_OK


# --- workers (issue 12): Celery worker, enqueue, reconcile -------------------------------


def cmd_worker(args: argparse.Namespace) -> int:
    if args.healthcheck or args.readiness:  # no Celery import: a short start-up
        from etl.workers import health

        node = health.node_from_args(getattr(args, "celery_args", []))
        verdict = health.readiness(node) if args.readiness else health.liveness(node)
        print(f"wheels-etl worker: {verdict.line}", file=sys.stdout if verdict.ok else sys.stderr)
        return EXIT_OK if verdict.ok else EXIT_UNAVAILABLE

    from etl.workers.worker import flags_as_env, run_worker

    _settings(args, "worker")  # flags are checked here and reach the tasks as variables
    json_lines = (getattr(args, "log_format", None) or os.environ.get("ETL_LOG_FORMAT")) == "json"
    return run_worker(args.celery_args, flags_as_env(args.given), json_lines=json_lines)


def cmd_enqueue(args: argparse.Namespace) -> int:
    from etl.workers import runs

    settings = _settings(args, "enqueue")
    follow = bool(args.wait)  # --wait: the spool checked first, the workers' errors heard
    run_id = runs.enqueue(settings, products=settings.products, full=settings.full, follow=follow)
    print(f"enqueue: listing task sent (run {run_id})")
    if not args.wait:
        return EXIT_OK
    s = runs.wait(settings, Spool(settings.spool_dir), _database(settings), run_id,
                  timeout=args.timeout)  # fmt: skip
    out, problems = runs.render(s, str(settings.spool_dir))
    print(out)
    for line in problems:
        print(line, file=sys.stderr)
    if s.spool_full is not None:
        return EXIT_DISK_FULL
    if s.listing_config:  # an unknown product: exit 2, as from `extract`
        return EXIT_USAGE
    if s.error_code is not None:  # a task gave up on bad settings (2) or unavailable (3)
        return s.error_code
    if s.listing_transient or not s.settled:
        return EXIT_UNAVAILABLE
    return EXIT_OK if s.ok else EXIT_FAILED


def cmd_reconcile(args: argparse.Namespace) -> int:
    from etl.workers.reconcile import reconcile

    settings = _settings(args, "reconcile")
    report = reconcile(settings, relist=args.relist, products=settings.products, full=settings.full)
    print(f"reconcile: {report}")
    return EXIT_OK


# --- answers (issue 22): search, diff, why; read-only ------------------------------------


def cmd_search(args: argparse.Namespace) -> int:
    from etl.answers import search

    conninfo = _database(_settings(args, "search"))
    doc = search.search(conninfo, args.name, version=args.version, product=args.product)
    print(summary.dumps(doc) if args.json else search.text(doc))
    return EXIT_OK if doc["matches"] else EXIT_FAILED


def cmd_diff(args: argparse.Namespace) -> int:
    from etl.answers import diff, difftext

    if args.json and args.markdown:
        raise ConfigError("--json and --markdown exclude each other")
    doc = diff.diff(_database(_settings(args, "diff")), args.product, args.old, args.new)
    render = summary.dumps if args.json else difftext.markdown if args.markdown else difftext.text
    print(render(doc))
    return EXIT_OK


def cmd_why(args: argparse.Namespace) -> int:
    from etl.answers import why

    doc = why.why(_database(_settings(args, "why")), args.name, product=args.product,
                  release=args.release, architecture=args.architecture, variant=args.variant,
                  paths=args.paths)  # fmt: skip
    print(summary.dumps(doc) if args.json else why.text(doc))
    return EXIT_OK if any(b["versions"] for b in doc["builds"]) else EXIT_FAILED


def build_cli() -> click.Group:
    """The whole command line (:func:`etl.cliparser.build`) running the commands above."""
    commands = {name: functools.partial(_run, name, globals()[f"cmd_{name}"])
                for name in typing.get_args(Command)}  # fmt: skip
    return cliparser.build(commands)


def _run(name: Command, handler: Any, args: argparse.Namespace) -> int:
    """Run one command; every :class:`EtlError` becomes one line and its exit code."""
    try:
        code: int = handler(args)
    except BrokenPipeError:  # the reader (`| head`) left: it has what it wanted
        sys.stdout = _Gone(sys.stdout)  # no second error when Python flushes it at exit
        return EXIT_OK
    except EtlError as exc:  # its class decides the exit code (EtlError.exit_code)
        kind = "unavailable: " if exc.exit_code == EXIT_UNAVAILABLE else ""
        print(f"wheels-etl {name}: {kind}{exc}", file=sys.stderr)
        return exc.exit_code
    return code


class _Gone(io.TextIOBase):
    """Standard output after its reader left: writes and flushes are dropped."""

    def __init__(self, stream: typing.TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError):
            self._stream.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """``wheels-etl``: the exit code (only this module exits)."""
    try:
        code = _main(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()
    except BrokenPipeError:  # the reader (`| head`) left: it has what it wanted
        sys.stdout = _Gone(sys.stdout)  # no second error when Python flushes it at exit
        return EXIT_OK
    return code


def _main(args: list[str]) -> int:
    try:
        code = build_cli().main(args, prog_name="wheels-etl", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # `wheels-etl` alone: the help
        print(exc.format_message(), file=sys.stderr)
        return EXIT_USAGE
    except click.UsageError as exc:  # bad flags or values: one line, exit 2
        where = exc.ctx.command_path if exc.ctx is not None else "wheels-etl"
        print(f"{where}: {exc.format_message()} (see {where} --help)", file=sys.stderr)
        return EXIT_USAGE
    except click.ClickException as exc:
        print(f"wheels-etl: {exc.format_message()}", file=sys.stderr)
        return EXIT_USAGE
    except (click.Abort, KeyboardInterrupt):
        print("wheels-etl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
