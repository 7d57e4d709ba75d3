"""The container image's install steps (deploy/container/install.sh, which the Containerfile
runs) give a working installation: run here into a fresh virtual environment, from the
files the Containerfile copies, then the installed command is used as the image uses it.
No container engine runs here, so this is the part of the image that can be tested."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.env import child_env

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "container" / "install.sh"


def containerfile_copies() -> list[str]:
    """The repository paths the Containerfile's build stage copies."""
    text = (REPO / "Containerfile").read_text()
    sources: list[str] = []
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            args = [a for a in line.split()[1:] if not a.startswith("--")]
            sources += args[:-1]
    return sources


def installed_env(**settings: str) -> dict[str, str]:
    """The basics without PYTHONPATH: the installed package, not this checkout, runs."""
    return child_env(PYTHONPATH=None, **settings)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv made by install.sh from a copy of what the Containerfile copies."""
    work = tmp_path_factory.mktemp("image")
    src = work / "src"
    src.mkdir()
    for rel in containerfile_copies():
        if rel == "deploy/container/install.sh":
            continue
        source = REPO / rel
        if source.is_dir():
            shutil.copytree(source, src / rel, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, src / rel)
    env = {**installed_env(), "PYTHON": sys.executable, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for key in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONFIG_FILE"):
        if key in os.environ:
            env[key] = os.environ[key]
    done = subprocess.run(
        ["sh", str(SCRIPT), str(src), str(work / "venv")], env=env, capture_output=True,
        text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.fullmatch(r"wheels-etl \d+\.\d+\.\d+\S*\n", done.stdout), done.stdout
    yield work / "venv"


def test_the_containerfile_runs_the_install_script() -> None:
    text = (REPO / "Containerfile").read_text()
    assert "deploy/container/install.sh" in containerfile_copies()
    assert re.search(r"^RUN .*sh /tmp/install.sh /tmp/src /opt/wheels-etl$", text, re.M)
    final = text.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER 1001$", final, re.M), "the final stage runs as uid 1001"
    assert "COPY --from=build /opt/wheels-etl /opt/wheels-etl" in final


def test_the_installed_command_runs(venv: Path) -> None:
    env = installed_env()
    done = subprocess.run([str(venv / "bin" / "wheels-etl"), "--version"], env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("wheels-etl "), done


@pytest.mark.parametrize("probe", ["--healthcheck", "--readiness"])
def test_the_probes_fail_cleanly_with_no_worker_and_no_broker(
    venv: Path, tmp_path: Path, probe: str
) -> None:
    env = installed_env(ETL_BROKER_URL="redis://127.0.0.1:1/0", TMPDIR=str(tmp_path))
    done = subprocess.run([str(venv / "bin" / "wheels-etl"), "worker", probe], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 3, done
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1, done
    assert done.stderr.startswith("wheels-etl worker: not alive: no worker registered"), done


def test_with_database_url_the_embedded_server_is_never_started(
    venv: Path, tmp_path: Path, db_url: str
) -> None:
    data = tmp_path / "embedded"
    env = installed_env(DATABASE_URL=db_url, ETL_EMBEDDED_PG_DIR=str(data), HOME=str(tmp_path))
    env["ETL_SPOOL_DIR"] = str(tmp_path / "spool")  # the shipped sample collection
    for args in (["migrate"], ["extract", "-q"], ["load", "-q"], ["status"]):
        done = subprocess.run([str(venv / "bin" / "wheels-etl"), *args], env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done
    assert not data.exists(), "the embedded server's folder was made with DATABASE_URL set"
