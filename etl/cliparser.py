"""The ``wheels-etl`` command line as click declares it: every command, its arguments, its
settings (from :data:`etl.config.OPTIONS`: flag, variable and default in one declaration),
the global options (before or after the command), examples and exit codes, as ``--help``
shows them.  ``etl/cli.py`` gives the function that runs each command; nothing here
imports a command's library code."""

from __future__ import annotations

import argparse
import functools
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

import click
from click.core import ParameterSource

from etl import __version__, logs
from etl.config import DURATION, OPTIONS, OTHER_VARIABLES, Command, options_for
from etl.errors import ConfigError
from etl.units import parse_choice

Handler = Callable[[argparse.Namespace], int]

#: The spool's states (etl.spool.STATES; not imported: it loads pyarrow, 0.25 s).
STATES = ("ready", "loading", "loaded", "failed")

EXAMPLES: dict[str, str] = {
    "extract": """wheels-etl extract                                 # the shipped sample collection
wheels-etl extract --source https://builds.example/wheels --product rhai
ETL_WORKERS=4 ETL_MAX_FILE_BYTES=64MiB wheels-etl extract --json""",
    "load": """wheels-etl load                        # embedded Postgres when DATABASE_URL is unset
DATABASE_URL=postgresql://etl@db/wheels wheels-etl load --workers 2 --retry-seconds 5m""",
    "migrate": "wheels-etl migrate --database-url postgresql://etl@db/wheels",
    "status": "wheels-etl status\nwheels-etl status --json | jq .failed",
    "inspect": """wheels-etl inspect
wheels-etl inspect --sql "select product, count(*) from artifacts group by 1"
wheels-etl inspect --state failed --json --sql "select * from files\"""",
    "replay": """wheels-etl replay --failed                         # after fixing the cause
wheels-etl replay 'rhai~3.0.0~20261001T120000Z~9f86d081.parquet'
wheels-etl replay --loaded                         # after restoring the database""",
    "db": """wheels-etl db status                               # where the embedded server lives
psql "$(wheels-etl db url)"
wheels-etl db stop""",
    "prune": "wheels-etl prune --older-than 7d\nwheels-etl prune --older-than 12h",
    "spool": "wheels-etl spool init\nwheels-etl spool init --spool s3://bucket/prefix",
    "worker": """ETL_BROKER_URL=redis://127.0.0.1:6379/0 wheels-etl worker -c 1 -l info -n w1@%h
wheels-etl worker --healthcheck -n w1@%h           # the same -n as the worker""",
    "enqueue": "wheels-etl enqueue\nwheels-etl enqueue --product rhai --wait",
    "reconcile": "wheels-etl reconcile\nwheels-etl reconcile --relist",
    "search": """wheels-etl search torch
wheels-etl search MarkupSafe --version '>=3' --product webstack --json""",
    "diff": """wheels-etl diff rhai 2.18.0 3.0.0
wheels-etl diff rhai 2.18.0 3.0.0 --markdown > release-notes.md""",
    "why": """wheels-etl why markupsafe --product webstack --release 2026.11.3
wheels-etl why torch --product rhai --release 3.0.0 --architecture x86_64 --paths 1 --json""",
}

HELP_EXIT_CODES = """exit codes:
  0 all went well           1 some releases or files failed
  2 bad usage or settings   3 source, database, object store or broker unavailable
  4 spool disk full         130 interrupted"""


def _verbatim(text: str) -> str:
    """Epilog paragraphs click prints as written (``\b`` stops its rewrapping)."""
    return "\n\n".join(f"\b\n{para}" for para in text.strip().split("\n\n"))


def _worker_epilog() -> str:
    from etl.config import worker_variables
    from etl.workers.settings import ENV_VARS

    names = [*ENV_VARS, "ETL_SPOOL_LEASE_SECONDS", "ETL_SOURCE_TOKEN", "ETL_LOG_FORMAT",
             *worker_variables()]  # fmt: skip
    names += ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"]
    listed = textwrap.fill(", ".join(names), width=86, initial_indent="  ",
                           subsequent_indent="  ", break_on_hyphens=False)  # fmt: skip
    return (f"environment read by the worker (besides the settings above; AWS_* for an "
            f"s3:// spool):\n{listed}\n\nevery other option is passed to `celery worker` "
            "(see `celery worker --help`), e.g.\n  -c/--concurrency N, -l/--loglevel LEVEL, "
            "-n/--hostname NAME, -P/--pool POOL")  # fmt: skip


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """-q/-v/--log-format, given before or after the command: the last one given wins."""
    if ctx.get_parameter_source(str(param.name)) is ParameterSource.COMMANDLINE:
        ctx.find_root().meta[f"etl.{param.name}"] = value
    return value


def _global_options(version: bool = True) -> list[click.Parameter]:
    params: list[click.Parameter] = [
        click.Option(["-v", "--verbose", "verbose"], count=True, expose_value=False,
                     callback=_remember, help="more log output: -v our progress, -vv debug "
                     "incl. libraries (env ETL_LOG_LEVEL)"),
        click.Option(["-q", "--quiet", "quiet"], is_flag=True, expose_value=False,
                     callback=_remember, help="errors and the final summary only"),
        click.Option(["--log-format", "log_format"], type=click.Choice(["text", "json"]),
                     expose_value=False, callback=_remember,
                     help="log line format (default: text; env ETL_LOG_FORMAT)"),
    ]  # fmt: skip
    if version:
        params.append(_version_option())
    return params


def _version_option() -> click.Option:
    def show(ctx: click.Context, _: click.Parameter, value: bool) -> None:
        if value and not ctx.resilient_parsing:
            click.echo(f"wheels-etl {__version__}")
            ctx.exit(0)

    return click.Option(["--version"], is_flag=True, expose_value=False, is_eager=True,
                        callback=show, help="print the version and exit")  # fmt: skip


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order they were added


def _command(group: click.Group, commands: Mapping[Command, Handler], name: Command,
             help_: str, *params: click.Parameter, json_flag: bool = False, epilog: str = "",
             version: bool = True, passthrough: bool = False) -> None:  # fmt: skip
    """Add a command: its own ``params``, its settings from :data:`OPTIONS`, ``--json``,
    the global options; the callback runs ``cmd_<name>`` with a namespace of the values."""
    handler, settings = commands[name], {s.option.name for s in options_for(name)}

    def callback(**values: Any) -> int:
        ctx = click.get_current_context()
        given = {
            k: v
            for k, v in values.items()
            if k in settings and ctx.get_parameter_source(k) is ParameterSource.COMMANDLINE
        }
        meta = ctx.find_root().meta
        try:
            verbosity = _configure_logging(meta)
        except ConfigError as exc:  # ETL_LOG_LEVEL / ETL_LOG_FORMAT
            raise click.UsageError(str(exc), ctx) from None
        args = argparse.Namespace(**values, given=given, celery_args=list(ctx.args),
                                  verbosity=verbosity,
                                  log_format=meta.get("etl.log_format"))  # fmt: skip
        return handler(args)

    extra = [click.Option(["--json"], is_flag=True, help="print one JSON document")]
    examples = EXAMPLES.get(name, "")
    shown = "examples:\n" + textwrap.indent(examples, "  ") if examples else ""
    text = "\n\n".join(p for p in (epilog, shown, HELP_EXIT_CODES) if p)
    group.add_command(click.Command(
        name, callback=callback, help=help_, short_help=help_.split(": ")[0].split(". ")[0],
        params=[*params, *(s.option for s in options_for(name)), *(extra if json_flag else []),
                *_global_options(version)],
        epilog=_verbatim(text), no_args_is_help=False,
        context_settings={"ignore_unknown_options": passthrough,
                          "allow_extra_args": passthrough},
    ))  # fmt: skip


def _environment_epilog() -> str:
    from etl.workers.settings import VARIABLES

    rows = [f"  {s.env:<30} {s.flag}" for s in OPTIONS]
    rows += [f"  {k:<30} {v}" for k, v in OTHER_VARIABLES.items()]
    rows += [f"  {v.env:<30} {v.help}" for v in VARIABLES]
    return "environment (flag > variable > default):\n" + "\n".join(rows)


def build(commands: Mapping[Command, Handler]) -> click.Group:
    """The whole command line: every command, its flags, its examples and the exit codes."""
    group = _Group(
        "wheels-etl", help="Disk-spooled ETL for wheel collections: source -> Parquet spool "
        "-> Postgres.", params=_global_options(),
        epilog=_verbatim(f"{_environment_epilog()}\n\n{HELP_EXIT_CODES}"),
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    )  # fmt: skip
    arg, opt, flag = click.Argument, click.Option, _flag
    add = functools.partial(_command, group, commands)
    # fmt: off
    add("extract", "Fetch releases from the source into spool files (ready/).", json_flag=True)
    add("load", "Load ready spool files into Postgres, one transaction per file.",
        json_flag=True)
    add("migrate", "Create or upgrade the database tables.")
    add("status", "Show the spool per state, failed files, and the database ledger.",
        json_flag=True)
    add("inspect", "Summarise or query spool files with DuckDB (read-only).",
        opt(["--sql"], help="a DuckDB query over the views artifacts, drops, files"),
        opt(["--state"], multiple=True, type=click.Choice(STATES),
            help="states to include (repeatable; default: ready, loading, loaded)"),
        opt(["--width"], type=click.IntRange(min=1), default=60, show_default=True,
            help="max column width"), json_flag=True)
    add("replay", "Move files (or all failed ones) back to ready and load them.",
        arg(["files"], nargs=-1, metavar="FILE..."), flag("--failed", "every file in failed/"),
        flag("--loaded", "every file in loaded/ (after a restore)"), json_flag=True)
    add("db", "Manage the embedded PostgreSQL used when DATABASE_URL is unset: start, stop, "
        "status, or print the URL every command uses (data: ETL_EMBEDDED_PG_DIR, else the "
        "per-user data folder).", arg(["action"], type=click.Choice(["start", "stop", "status",
                                                                      "url"])))
    add("prune", "Delete loaded spool files older than an age (never ready/loading/failed).",
        opt(["--older-than"], required=True, type=DURATION, metavar="DURATION",
            help="age such as 90m, 12h, 7d, 2w"))
    add("spool", "Prepare a spool: `init` creates its folders, or the bucket of an s3:// spool "
        "(no other command ever creates a bucket).", arg(["action"], type=click.Choice(["init"])))
    add("worker", "Run a Celery worker: `celery -A etl.workers.app worker` + options.",
        flag("--healthcheck", "liveness probe: exit 0 if the worker named by -n (the worker's "
             "own -n value; without -n every worker of this host) runs; never asks the broker"),
        flag("--readiness", "readiness probe: --healthcheck, then the broker accepts a "
             "connection (each answers within 2 s, printing why it failed)"),
        epilog=_worker_epilog(), passthrough=True)
    add("enqueue", "Send the listing task to the workers (env ETL_BROKER_URL).",
        flag("--wait", "wait until every enqueued release is loaded or failed"),
        opt(["--timeout"], type=DURATION, metavar="DURATION",
            help="with --wait: give up after this long"))
    add("reconcile", "Send load tasks again for ready files and orphaned claims.",
        flag("--relist", "send the listing task too (recovers lost extract tasks)"))
    add("search", "Every build holding a wheel of a package (PEP 503 name match), newest "
        "release first; exit 1 when nothing matched.", arg(["name"], metavar="NAME"),
        opt(["--version"], metavar="SPEC", help="PEP 440 specifier or version"),
        opt(["--product"], metavar="P", help="only this product"), json_flag=True,
        version=False)
    add("diff", "What changed between two releases of a product, build by build.",
        arg(["product"], metavar="PRODUCT"), arg(["old"], metavar="FROM"),
        arg(["new"], metavar="TO"), flag("--markdown", "release-notes tables (Markdown)"),
        json_flag=True)
    add("why", "Why a package is in a release: shortest paths from a top-level requirement, "
        "and its direct dependents; exit 1 when in no build.", arg(["name"], metavar="NAME"),
        opt(["--product"], metavar="P", required=True),
        opt(["--release"], metavar="R", required=True),
        opt(["--architecture"], metavar="A", help="only this architecture"),
        opt(["--variant"], metavar="V", help="only this variant"),
        opt(["--paths"], metavar="N", type=click.IntRange(min=1), default=3, show_default=True,
            help="at most N paths per version"), json_flag=True)
    # fmt: on
    return group


def _flag(name: str, help_: str) -> click.Option:
    return click.Option([name], is_flag=True, help=help_)


def _configure_logging(meta: dict[str, Any]) -> int:
    import os

    level = {"quiet": -1, "normal": 0, "verbose": 1, "debug": 2}
    if meta.get("etl.quiet"):
        verbosity = -1
    elif meta.get("etl.verbose"):
        verbosity = min(2, int(meta["etl.verbose"]))
    else:
        env_level = os.environ.get("ETL_LOG_LEVEL", "normal") or "normal"
        verbosity = level[parse_choice(*level)(env_level)]
    fmt = meta.get("etl.log_format") or os.environ.get("ETL_LOG_FORMAT") or "text"
    logs.setup(verbosity, "json" if parse_choice("text", "json")(fmt) == "json" else "text")
    return verbosity
