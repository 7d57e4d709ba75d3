"""The ``wheels-etl`` argument parser: every command, its flags (from the option table),
its examples and the exit codes, as ``--help`` shows them.  ``etl/cli.py`` gives it the
function that runs each command."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable, Mapping

from etl import __version__
from etl.config import OPTIONS, OTHER_VARIABLES, Command, options_for, worker_variables
from etl.spool import STATES

Handler = Callable[[argparse.Namespace], int]

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
    "enqueue": "examples:\n  wheels-etl enqueue\n  wheels-etl enqueue --product rhai --wait",
    "reconcile": "examples:\n  wheels-etl reconcile\n  wheels-etl reconcile --relist",
    "search": """examples:
  wheels-etl search torch
  wheels-etl search MarkupSafe --version '>=3' --product webstack --json""",
    "diff": """examples:
  wheels-etl diff rhai 2.18.0 3.0.0
  wheels-etl diff rhai 2.18.0 3.0.0 --markdown > release-notes.md""",
    "why": """examples:
  wheels-etl why markupsafe --product webstack --release 2026.11.3
  wheels-etl why torch --product rhai --release 3.0.0 --architecture x86_64 --paths 1 --json""",
}

_WORKER_ENV = ("ETL_BROKER_URL", "ETL_QUEUE", "ETL_BROKER_VISIBILITY_TIMEOUT",
               "ETL_TASK_MAX_RETRIES", "ETL_SPOOL_LEASE_SECONDS", "ETL_SOURCE_TOKEN",
               "ETL_LOG_FORMAT")  # fmt: skip
_WORKER_VARS = textwrap.fill(
    ", ".join([*_WORKER_ENV, *worker_variables()]) + "; for an s3:// spool AWS_ENDPOINT_URL, "
    "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION",
    width=86, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False,
)  # fmt: skip
EXAMPLES["worker"] = f"""environment read by the worker (besides the settings above):
{_WORKER_VARS}

every other option is passed to `celery worker` (see `celery worker --help`), e.g.
  -c/--concurrency N, -l/--loglevel LEVEL, -n/--hostname NAME, -P/--pool POOL

examples:
  ETL_BROKER_URL=redis://127.0.0.1:6379/0 wheels-etl worker -c 1 -l info -n w1@%h
  wheels-etl worker --healthcheck -n w1@%h           # the same -n as the worker"""

HELP_EXIT_CODES = """exit codes:
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


def build(commands: Mapping[Command, Handler]) -> argparse.ArgumentParser:
    """The whole parser; ``commands`` maps each command to the function that runs it."""
    common = _common()
    variables = "\n".join(f"  {o.env:<24} {o.flag}" for o in OPTIONS if o.env)
    others = "\n".join(f"  {k:<24} {v}" for k, v in OTHER_VARIABLES.items())
    p = argparse.ArgumentParser(
        prog="wheels-etl",
        description="Disk-spooled ETL for wheel collections: source -> Parquet spool -> Postgres.",
        epilog=f"environment:\n{variables}\n{others}\n\n{HELP_EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    p.add_argument("--version", action="version", version=f"wheels-etl {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: Command, help_: str, json_flag: bool = False) -> argparse.ArgumentParser:
        sp = sub.add_parser(
            name, help=help_, description=help_, parents=[common],
            epilog=f"{EXAMPLES.get(name, '')}\n\n{HELP_EXIT_CODES}".strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        _add_options(sp, name)
        if json_flag:
            sp.add_argument("--json", action="store_true", help="print one JSON document")
        sp.set_defaults(func=commands[name])
        return sp

    add("extract", "Fetch releases from the source into spool files (ready/).",
        json_flag=True)  # fmt: skip
    add("load", "Load ready spool files into Postgres, one transaction per file.",
        json_flag=True)  # fmt: skip
    add("migrate", "Create or upgrade the database tables.")
    add("status", "Show the spool per state, failed files, and the database ledger.",
        json_flag=True)  # fmt: skip
    i = add("inspect", "Summarise or query spool files with DuckDB (read-only).",
            json_flag=True)  # fmt: skip
    i.add_argument("--sql", help="a DuckDB query over the views artifacts, drops, files")
    i.add_argument(
        "--state", action="append", choices=STATES,
        help="states to include (repeatable; default: ready, loading, loaded)",
    )  # fmt: skip
    i.add_argument("--width", type=int, default=60, help="max column width (default: 60)")
    r = add("replay", "Move files (or all failed ones) back to ready and load them.",
            json_flag=True)  # fmt: skip
    r.add_argument("files", nargs="*", metavar="FILE", help="spool file names or paths")
    r.add_argument("--failed", action="store_true", help="every file in failed/")
    r.add_argument("--loaded", action="store_true", help="every file in loaded/ (after a restore)")
    d = add("db", "Manage the embedded PostgreSQL used when DATABASE_URL is unset: start, stop, "
            "status, or print the URL every command uses (data: ETL_EMBEDDED_PG_DIR, else "
            "the per-user data folder).")  # fmt: skip
    d.add_argument("action", choices=("start", "stop", "status", "url"))
    pr = add("prune", "Delete loaded spool files older than an age (never ready/loading/failed).")
    pr.add_argument("--older-than", required=True, metavar="DURATION",
                    help="age such as 90m, 12h, 7d, 2w")  # fmt: skip
    sp = add("spool", "Prepare a spool: `init` creates its folders, or the bucket of an "
             "s3:// spool (no other command ever creates a bucket).")  # fmt: skip
    sp.add_argument("action", choices=("init",))
    _add_worker_commands(add)
    _add_answer_commands(add)
    return p


def _add_answer_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """search, diff, why (issue 22): read-only answers over the loaded releases."""
    s = add("search", "Every build holding a wheel of a package (PEP 503 name match), newest "
            "release first; exit 1 when nothing matched.", json_flag=True)  # fmt: skip
    s.add_argument("name", metavar="NAME", help="package name")
    s.add_argument("--version", metavar="SPEC", help="PEP 440 specifier or version")
    s.add_argument("--product", metavar="P", help="only this product")
    d = add("diff", "What changed between two releases of a product, build by build.",
            json_flag=True)  # fmt: skip
    d.add_argument("product", metavar="PRODUCT")
    d.add_argument("old", metavar="FROM", help="the older release")
    d.add_argument("new", metavar="TO", help="the newer release")
    d.add_argument("--markdown", action="store_true", help="release-notes tables (Markdown)")
    w = add("why", "Why a package is in a release: shortest paths from a top-level "
            "requirement, and its direct dependents; exit 1 when in no build.",
            json_flag=True)  # fmt: skip
    w.add_argument("name", metavar="NAME", help="package name")
    w.add_argument("--product", metavar="P", required=True)
    w.add_argument("--release", metavar="R", required=True)
    w.add_argument("--architecture", metavar="A", help="only this architecture")
    w.add_argument("--variant", metavar="V", help="only this variant")
    w.add_argument("--paths", metavar="N", type=int, default=3,
                   help="at most N paths per version (default: 3)")  # fmt: skip


def _add_worker_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """worker, enqueue, reconcile (issue 12)."""
    w = add("worker", "Run a Celery worker: `celery -A etl.workers.app worker` + options.")
    w.add_argument("--healthcheck", action="store_true",
                   help="liveness probe: exit 0 if the worker named by -n (the worker's own "
                        "-n value; without -n every worker of this host) runs; never asks "
                        "the broker")  # fmt: skip
    w.add_argument("--readiness", action="store_true",
                   help="readiness probe: --healthcheck, then the broker accepts a "
                        "connection (each answers within 2 s, printing why it failed)")  # fmt: skip
    w.set_defaults(celery_args=[])
    q = add("enqueue", "Send the listing task to the workers (env ETL_BROKER_URL).")
    q.add_argument("--wait", action="store_true",
                   help="wait until every enqueued release is loaded or failed")  # fmt: skip
    q.add_argument("--timeout", metavar="DURATION", help="with --wait: give up after this long")
    r = add("reconcile", "Send load tasks again for ready files and orphaned claims.")  # fmt: skip
    r.add_argument("--relist", action="store_true",
                   help="send the listing task too (recovers lost extract tasks)")  # fmt: skip
