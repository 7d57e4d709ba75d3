"""Every example in README.md runs (sqlite-utils' test_docs is the model).

* ```` ```sh ```` blocks: each block runs as one bash script (``set -euo pipefail``) in a
  folder holding the demo's spool, against a real database and the tests' own
  ``redis-server`` (``REDIS_URL`` points at one of its databases: the worked example
  reads it), with the venv's ``wheels-etl`` and ``duckdb`` on PATH; it must exit 0 and
  print something.
  A block of ``make`` lines is checked with ``make -n`` (each target exists and expands).
  Blocks that only show a configuration for a server we cannot have here (a bucket on
  someone's object store) are fenced ```` ```text ```` and are not run.
* ```` ```sql ```` blocks run through ``wheels-etl inspect --sql`` and must return rows.
* ```` ```postgresql ```` blocks run against the demo's database and must return rows.
* ```` ```python ```` blocks run with the venv's Python and must print something.
* The README's command and settings tables agree with ``--help`` and the option table.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from etl.cli import build_cli
from etl.config import OPTIONS, OTHER_VARIABLES
from etl.workers.settings import ENV_VARS
from tests.support.gitlabserver import FakeGitLab, example_project
from tests.support.redisserver import RedisServer
from tests.support.s3server import free_ports

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
BIN = Path(sys.executable).parent
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(kind: str) -> list[str]:
    return [body for info, body in FENCE.findall(README) if info == kind]


def sh_lines() -> list[str]:
    return [
        line.strip()
        for body in blocks("sh")
        for line in body.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


@pytest.fixture(scope="module")
def gitlab() -> Iterator[FakeGitLab]:
    """The tests' own GitLab with the project the README's GitLab example reads."""
    with FakeGitLab() as server:
        example_project(server)
        yield server
        assert server.leaks == [], "a credential reached the asset host"


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory,
    pg_server_url: str,
    redis_server: RedisServer,
    gitlab: FakeGitLab,
) -> Iterator[dict[str, str]]:
    """A folder after the demo (extract + load of the sample) and the env to run in it."""
    import uuid

    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    folder = tmp_path_factory.mktemp("readme")
    name = f"wetl_readme_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    redis_db = redis_server.take_db()
    params = conninfo_to_dict(pg_server_url)
    params["dbname"] = name
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(folder),
        "LANG": "C.UTF-8",
        "DATABASE_URL": make_conninfo("", **params),
        "CWD": str(folder),
        "REDIS_URL": redis_server.url(redis_db),  # the tests' own server, not the machine's
        "GITLAB_URL": gitlab.api.url.rstrip("/"),  # the GitLab example: the tests' own GitLab
        "GITLAB_TOKEN": gitlab.token,
    }
    # the object-storage trial's SeaweedFS on free ports (never a server of the machine)
    ports = ("MASTER_PORT", "VOLUME_PORT", "FILER_PORT", "S3_PORT")
    env.update(zip(ports, (str(p) for p in free_ports(4)), strict=True))
    for command in ("extract", "load"):
        done = subprocess.run(
            [str(BIN / "wheels-etl"), command, "-q"], cwd=folder, env=env, capture_output=True,
            text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    yield env
    redis_server.client(redis_db).flushdb()  # its own database of the tests' own server
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def test_the_readme_has_examples() -> None:
    assert len(sh_lines()) >= 6 and len(blocks("sql")) >= 3 and blocks("python")


@pytest.mark.parametrize("script", blocks("sh"))
def test_shell_example(script: str, demo: dict[str, str]) -> None:
    commands = [x.split("#")[0].strip() for x in script.splitlines()]
    if all(c.startswith("make ") for c in commands if c):
        for target in (c.split()[1] for c in commands if c):
            done = subprocess.run(
                ["make", "-n", "-C", str(REPO), target], capture_output=True, text=True
            )
            assert done.returncode == 0, f"make {target}: {done.stderr}"
        return
    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script], cwd=demo["CWD"], env=demo,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"
    assert done.stdout.strip(), f"{script} printed nothing"


@pytest.mark.parametrize("query", blocks("sql"))
def test_sql_example(query: str, demo: dict[str, str]) -> None:
    done = subprocess.run(
        [str(BIN / "wheels-etl"), "inspect", "--json", "--sql", query],
        cwd=demo["CWD"], env=demo, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() not in ("", "[]"), f"no rows from:\n{query}"


@pytest.mark.parametrize("query", blocks("postgresql"))
def test_postgresql_example(query: str, demo: dict[str, str]) -> None:
    import psycopg

    with psycopg.connect(demo["DATABASE_URL"]) as conn:
        assert conn.execute(query).fetchall(), f"no rows from:\n{query}"


@pytest.mark.parametrize("code", blocks("python"))
def test_python_example(code: str, demo: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=demo["CWD"], env=demo, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), "the example printed nothing"


def test_commands_table_matches_help() -> None:
    """Each command of the parser is in the README's command table with its flags."""
    sub = build_cli().commands
    table = README.split("## Commands", 1)[1].split("\n## ", 1)[0]
    for name, sp in sub.items():
        rows = [r for r in table.splitlines() if r.startswith(f"| `wheels-etl {name}")]
        assert rows, f"command {name} missing from the README's command table"
        flags = {
            s
            for a in sp.params
            for s in a.opts
            if s.startswith("--") and s not in ("--help", "--verbose", "--quiet", "--log-format")
        }
        documented = set(re.findall(r"--[a-z][a-z-]+", rows[0]))
        assert documented <= flags, f"{name}: README names flags --help lacks: {documented - flags}"


def test_settings_table_matches_the_option_table() -> None:
    table = README.split("## Settings", 1)[1].split("\n## ", 1)[0]
    for opt in OPTIONS:
        assert f"`{opt.env}`" in table, f"{opt.env} ({opt.flag}) missing from README settings"
    for name in [*OTHER_VARIABLES, *ENV_VARS]:
        assert f"`{name}`" in table, f"{name} missing from README settings"
    for var in set(re.findall(r"`((?:ETL|AWS)_[A-Z_]+|DATABASE_URL)`", table)):
        known = {o.env for o in OPTIONS} | set(OTHER_VARIABLES) | set(ENV_VARS)
        assert var in known or var.startswith("AWS_"), f"README documents unknown {var}"


def test_nothing_points_outside_the_repository() -> None:
    """No file refers to the machine it was written on or to folders beside the clone."""
    skip = {".venv", ".git", ".mypy_cache", ".ruff_cache", "__pycache__", "build", "dist", "spool"}
    here = Path(__file__).resolve()
    for path in REPO.rglob("*"):
        parts = path.relative_to(REPO).parts
        if skip & set(parts) or any(p.endswith(".egg-info") for p in parts):
            continue
        if path == here or not path.is_file():
            continue
        if path.suffix not in {".py", ".md", ".toml", ".yaml", ".yml", ".cfg", ".txt"}:
            continue
        text = path.read_text(errors="replace")
        for needle in ("../shared", "/work/", "shared/notes", "shared/samples"):
            assert needle not in text, f"{path.relative_to(REPO)} mentions {needle}"


def test_no_link_leaves_the_repository() -> None:
    for path in [REPO / "README.md", *REPO.glob("docs/*.md")]:
        text = path.read_text()
        assert "../shared" not in text and "/work/" not in text, path
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if re.match(r"^[a-z]+://", target):
                continue
            assert (path.parent / target).exists(), f"{path.name}: broken link {target}"
