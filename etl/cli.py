"""``wheels-etl`` command line: each command parses flags and calls one library function.

Exit codes: 0 all went well; 1 some releases or files failed (one line each says why);
2 bad usage or configuration; 3 source or database unavailable after retries;
4 the spool's disk is full; 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from etl import __version__, logs, summary
from etl.config import OPTIONS, OTHER_VARIABLES, Command, Settings, options_for
from etl.errors import (
    BrokerError,
    ConfigError,
    EtlError,
    SpoolFullError,
    TransientFetchError,
    TransientLoadError,
)
from etl.progress import Progress
from etl.spool import STATES, Spool
from etl.units import parse_choice, parse_duration

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_DISK_FULL = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130


def _settings(args: argparse.Namespace, command: Command) -> Settings:
    """Flags given on the line, parsed by the option table (errors are ConfigError)."""
    given: dict[str, Any] = {}
    for opt in options_for(command):
        value = getattr(args, opt.field, None)
        if value is None or value is False:
            continue
        try:
            if opt.switch:
                given[opt.field] = opt.convert("1")
            elif opt.repeat:
                given[opt.field] = tuple(x for v in value for x in opt.convert(v))
            else:
                given[opt.field] = opt.convert(value)
        except ConfigError as exc:
            raise ConfigError(f"{opt.flag}: {exc}") from None
    return Settings.from_env(**given)


def _database(settings: Settings) -> str:
    from etl.db.url import resolve_database_url

    return resolve_database_url(settings.database_url)


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
    return _load(settings, Spool(settings.spool_dir), args)


def _load(settings: Settings, spool: Spool, args: argparse.Namespace) -> int:
    from etl import load

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
        conninfo = _database(settings)
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
    spool = Spool(settings.spool_dir)
    if not (args.files or args.failed or args.loaded):
        raise ConfigError("replay needs FILE names, --failed or --loaded")
    moved = spool.requeue(args.files, failed=args.failed)
    if args.loaded:
        moved += spool.requeue([f.name for f in spool.files("loaded")])
    if not args.json:
        print(f"replay: {len(moved)} file(s) back in ready/")
    return _load(settings, spool, args)


def cmd_db(args: argparse.Namespace) -> int:
    from etl.db import embedded, url

    if args.action == "start":
        print(embedded.db_start())
    elif args.action == "stop":
        print("stopped" if embedded.db_stop() else "not running")
    elif args.action == "status":
        st = embedded.db_status()
        state = f"running (pid {st.pid}) {st.url}" if st.running else "stopped"
        print(f"{st.data_dir}: {state}" if st.initialised else f"{st.data_dir}: not created")
    else:
        print(url.db_url(_settings(args, "db").database_url))
    return EXIT_OK


def cmd_prune(args: argparse.Namespace) -> int:
    from etl.progress import human_bytes

    spool = Spool(_settings(args, "prune").spool_dir)
    count, freed = spool.prune(parse_duration(args.older_than))
    print(f"prune: deleted {count} loaded file(s), freed {human_bytes(freed)}")
    return EXIT_OK


# --- workers (issue 12): Celery worker, enqueue, reconcile -------------------------------


def cmd_worker(args: argparse.Namespace) -> int:
    from etl.workers.worker import flags_as_env, healthcheck, run_worker

    if args.healthcheck:
        return EXIT_OK if healthcheck() else EXIT_UNAVAILABLE
    _settings(args, "worker")  # flags are checked here and reach the tasks as variables
    return run_worker(args.celery_args, flags_as_env(vars(args)))


def cmd_enqueue(args: argparse.Namespace) -> int:
    from etl.workers import runs

    settings = _settings(args, "enqueue")
    run_id = runs.enqueue(settings, products=settings.products, full=settings.full)
    print(f"enqueue: listing task sent (run {run_id})")
    if not args.wait:
        return EXIT_OK
    timeout = parse_duration(args.timeout) if args.timeout else None
    s = runs.wait(settings, Spool(settings.spool_dir), _database(settings), run_id, timeout=timeout)
    out, problems = runs.render(s, str(settings.spool_dir))
    print(out)
    for line in problems:
        print(line, file=sys.stderr)
    if s.spool_full is not None:
        return EXIT_DISK_FULL
    if s.listing_transient or not s.settled:
        return EXIT_UNAVAILABLE
    return EXIT_OK if s.ok else EXIT_FAILED


def cmd_reconcile(args: argparse.Namespace) -> int:
    from etl.workers.reconcile import reconcile

    settings = _settings(args, "reconcile")
    report = reconcile(settings, relist=args.relist, products=settings.products, full=settings.full)
    print(f"reconcile: {report}")
    return EXIT_OK


def _add_worker_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    w = add("worker", "Run a Celery worker: `celery -A etl.workers.app worker` + options.",
            cmd_worker)  # fmt: skip
    w.add_argument("--healthcheck", action="store_true",
                   help="exit 0 if this host's worker answers a ping (liveness probe)")  # fmt: skip
    w.set_defaults(celery_args=[])
    q = add("enqueue", "Send the listing task to the workers (env ETL_BROKER_URL).", cmd_enqueue)
    q.add_argument("--wait", action="store_true",
                   help="wait until every enqueued release is loaded or failed")  # fmt: skip
    q.add_argument("--timeout", metavar="DURATION", help="with --wait: give up after this long")
    r = add("reconcile", "Send load tasks again for ready files and orphaned claims.",
            cmd_reconcile)  # fmt: skip
    r.add_argument("--relist", action="store_true",
                   help="send the listing task too (recovers lost extract tasks)")  # fmt: skip


# --- parser --------------------------------------------------------------------------

EXAMPLES: dict[str, str] = {
    "extract": """examples:
  wheels-etl extract                                 # the shipped sample collection
  wheels-etl extract --source https://builds.example/wheels --product rhai
  ETL_WORKERS=4 ETL_MAX_FILE_BYTES=64MiB wheels-etl extract --json""",
    "load": """examples:
  wheels-etl load                                    # embedded Postgres when DATABASE_URL is unset
  DATABASE_URL=postgresql://etl@db/wheels wheels-etl load --workers 2 --retry-seconds 5m""",
    "migrate": "examples:\n  wheels-etl migrate --database-url postgresql://etl@db/wheels",
    "status": "examples:\n  wheels-etl status\n  wheels-etl status --json | jq .failed",
    "inspect": """examples:
  wheels-etl inspect
  wheels-etl inspect --sql "select product, count(*) from artifacts group by 1"
  wheels-etl inspect --state failed --json --sql "select * from files\"""",
    "replay": """examples:
  wheels-etl replay --failed                         # after fixing the cause
  wheels-etl replay 'rhai~3.0.0~20261001T120000Z~9f86d081.parquet'
  wheels-etl replay --loaded                         # after restoring the database""",
    "db": """examples:
  wheels-etl db status                               # where the embedded server lives
  psql "$(wheels-etl db url)"
  wheels-etl db stop""",
    "prune": "examples:\n  wheels-etl prune --older-than 7d\n  wheels-etl prune --older-than 12h",
    "worker": "examples:\n  ETL_BROKER_URL=redis://127.0.0.1:6379/0 wheels-etl worker -c 1 -l info",
    "enqueue": "examples:\n  wheels-etl enqueue\n  wheels-etl enqueue --product rhai --wait",
    "reconcile": "examples:\n  wheels-etl reconcile\n  wheels-etl reconcile --relist",
}

EXIT_CODES = """exit codes:
  0 all went well           1 some releases or files failed
  2 bad usage or settings   3 source or database unavailable
  4 spool disk full         130 interrupted"""


def _common() -> argparse.ArgumentParser:
    """-q/-v/--log-format, accepted before and after the command."""
    c = argparse.ArgumentParser(add_help=False)
    g = c.add_argument_group("output")
    g.add_argument(
        "-v", "--verbose", dest="verbosity", action="count", default=argparse.SUPPRESS,
        help="more log output: -v our progress, -vv debug incl. libraries (env ETL_LOG_LEVEL)",
    )  # fmt: skip
    g.add_argument(
        "-q", "--quiet", dest="verbosity", action="store_const", const=-1,
        default=argparse.SUPPRESS, help="errors and the final summary only",
    )  # fmt: skip
    g.add_argument(
        "--log-format", choices=("text", "json"), default=argparse.SUPPRESS,
        help="log line format (default: text; env ETL_LOG_FORMAT)",
    )  # fmt: skip
    return c


def _add_options(sp: argparse.ArgumentParser, command: Command) -> None:
    g = sp.add_argument_group("settings (flag > environment variable > default)")
    for opt in options_for(command):
        text = f"{opt.help} (default: {opt.default}; env {opt.env})"
        if opt.switch:
            g.add_argument(opt.flag, dest=opt.field, action="store_true", default=None, help=text)
        elif opt.repeat:
            g.add_argument(opt.flag, dest=opt.field, action="append", metavar=opt.metavar,
                           help=text)  # fmt: skip
        else:
            g.add_argument(opt.flag, dest=opt.field, metavar=opt.metavar, help=text)


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    variables = "\n".join(f"  {o.env:<24} {o.flag}" for o in OPTIONS if o.env)
    others = "\n".join(f"  {k:<24} {v}" for k, v in OTHER_VARIABLES.items())
    p = argparse.ArgumentParser(
        prog="wheels-etl",
        description="Disk-spooled ETL for wheel collections: source -> Parquet spool -> Postgres.",
        epilog=f"environment:\n{variables}\n{others}\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    p.add_argument("--version", action="version", version=f"wheels-etl {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: Command, help_: str, func: Callable[[argparse.Namespace], int],
            json_flag: bool = False) -> argparse.ArgumentParser:  # fmt: skip
        sp = sub.add_parser(
            name, help=help_, description=help_, parents=[common],
            epilog=f"{EXAMPLES.get(name, '')}\n\n{EXIT_CODES}".strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        _add_options(sp, name)
        if json_flag:
            sp.add_argument("--json", action="store_true", help="print one JSON document")
        sp.set_defaults(func=func)
        return sp

    add("extract", "Fetch releases from the source into spool files (ready/).", cmd_extract,
        json_flag=True)  # fmt: skip
    add("load", "Load ready spool files into Postgres, one transaction per file.", cmd_load,
        json_flag=True)  # fmt: skip
    add("migrate", "Create or upgrade the database tables.", cmd_migrate)
    add("status", "Show the spool per state, failed files, and the database ledger.",
        cmd_status, json_flag=True)  # fmt: skip
    i = add("inspect", "Summarise or query spool files with DuckDB (read-only).", cmd_inspect,
            json_flag=True)  # fmt: skip
    i.add_argument("--sql", help="a DuckDB query over the views artifacts, drops, files")
    i.add_argument(
        "--state", action="append", choices=STATES,
        help="states to include (repeatable; default: ready, loading, loaded)",
    )  # fmt: skip
    i.add_argument("--width", type=int, default=60, help="max column width (default: 60)")
    r = add("replay", "Move files (or all failed ones) back to ready and load them.",
            cmd_replay, json_flag=True)  # fmt: skip
    r.add_argument("files", nargs="*", metavar="FILE", help="spool file names or paths")
    r.add_argument("--failed", action="store_true", help="every file in failed/")
    r.add_argument("--loaded", action="store_true", help="every file in loaded/ (after a restore)")
    d = add("db", "Manage the embedded PostgreSQL used when DATABASE_URL is unset: start, stop, "
            "status, or print the URL every command uses (data: ETL_EMBEDDED_PG_DIR, else "
            "the per-user data folder).", cmd_db)  # fmt: skip
    d.add_argument("action", choices=("start", "stop", "status", "url"))
    pr = add("prune", "Delete loaded spool files older than an age (never ready/loading/failed).",
             cmd_prune)  # fmt: skip
    pr.add_argument("--older-than", required=True, metavar="DURATION",
                    help="age such as 90m, 12h, 7d, 2w")  # fmt: skip
    _add_worker_commands(add)
    return p


def _configure_logging(args: argparse.Namespace) -> None:
    import os

    level = {"quiet": -1, "normal": 0, "verbose": 1, "debug": 2}
    env_level = os.environ.get("ETL_LOG_LEVEL", "normal") or "normal"
    verbosity = getattr(args, "verbosity", None)
    if verbosity is None:
        verbosity = level[parse_choice(*level)(env_level)]
    args.verbosity = verbosity
    fmt = getattr(args, "log_format", None) or os.environ.get("ETL_LOG_FORMAT") or "text"
    logs.setup(verbosity, "json" if parse_choice("text", "json")(fmt) == "json" else "text")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # only `worker` takes options of its own (celery's), passed through
        if args.command != "worker":
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.celery_args = extra
    command = args.command
    try:
        _configure_logging(args)
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"wheels-etl {command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SpoolFullError as exc:
        print(f"wheels-etl {command}: {exc}", file=sys.stderr)
        return EXIT_DISK_FULL
    except (TransientFetchError, TransientLoadError, BrokerError) as exc:
        print(f"wheels-etl {command}: unavailable: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except EtlError as exc:
        print(f"wheels-etl {command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"wheels-etl {command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
