"""The built wheel, installed into a fresh venv and run from an empty folder, as a user would.

Nothing of the checkout is on the path: the venv has only the wheel and its dependencies,
the working folder is empty, and the sample collection must come from inside the package.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A venv with the freshly built wheel installed; yields its bin/ folder."""
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("wheels_etl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "etl/sample_collection/index.json" in names, "the sample collection is not packaged"
    assert not any(n.startswith(("tests/", "benchmarks/", "samples/")) for n in names)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    yield venv / "bin"


def _run(
    bin_: Path, cwd: Path, *args: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_ / "wheels-etl"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _clean_env(bin_: Path, home: Path, **extra: str) -> dict[str, str]:
    env = {"PATH": f"{bin_}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    env.update(extra)
    return env


def test_installed_wheel_runs_the_demo_from_an_empty_folder(
    installed: Path, tmp_path: Path, db_url: str
) -> None:
    work = tmp_path / "empty"
    work.mkdir()
    env = _clean_env(installed, tmp_path / "home", DATABASE_URL=db_url)
    version = _run(installed, work, "--version", env=env)
    assert version.returncode == 0 and version.stdout.startswith("wheels-etl "), version.stderr

    extract = _run(installed, work, "extract", env=env)
    assert extract.returncode == 0, extract.stderr
    assert "7 spooled" in extract.stdout
    load = _run(installed, work, "load", env=env)
    assert load.returncode == 0, load.stderr
    assert "7 applied" in load.stdout
    status = _run(installed, work, "status", "--json", env=env)
    assert status.returncode == 0, status.stderr

    with psycopg.connect(db_url) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM releases), (SELECT count(*) FROM artifacts),"
            " (SELECT count(*) FROM drops)"
        ).fetchone()
    assert counts == (7, 28, 2932)
    # everything it wrote is in the working folder, nothing beside the installed package
    assert sorted(p.name for p in work.iterdir()) == ["spool"]
    site = next((installed.parent / "lib").glob("python3*/site-packages"))
    assert not (site / ".wheels-etl").exists()
    assert not (site / "spool").exists()
    assert os.listdir(site / "etl" / "sample_collection")  # read, not moved
