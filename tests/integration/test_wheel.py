"""The built wheel, installed into a fresh venv and run from an empty folder, as a user would.

Nothing of the checkout is on the path: the venv has only the wheel and its dependencies,
the working folder is empty, and the sample collection must come from inside the package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed() -> Iterator[Path]:
    """A venv with the freshly built wheel installed; yields its bin/ folder.  It lives in
    a folder of its own under /tmp that other users may traverse, as a user's venv would:
    as root, the embedded server runs as an unprivileged account that must reach it."""
    root = Path(tempfile.mkdtemp(prefix="wheels-etl-venv-"))
    os.chmod(root, 0o755)
    try:
        yield _install(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def second_installed(installed: Path) -> Path:
    """A second venv beside the first, with the same wheel: another installation."""
    return _install(installed.parents[1], "venv2")


def _install(root: Path, name: str = "venv") -> Path:
    dist = root / "dist"
    if not dist.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)],
            check=True,
            capture_output=True,
        )
    (wheel,) = dist.glob("wheels_etl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "etl/sample_collection/index.json" in names, "the sample collection is not packaged"
    assert not any(n.startswith(("tests/", "benchmarks/", "samples/")) for n in names)
    venv = root / name
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    return venv / "bin"


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


@pytest.fixture
def embedded_dir() -> Iterator[Path]:
    """A data folder for the embedded server the installed wheel starts by itself (under
    /tmp, which the unprivileged server account can traverse); stopped and removed after."""
    folder = Path(tempfile.mkdtemp(prefix="wheels-etl-wheel-"))
    os.chmod(folder, 0o755)
    yield folder / "pg"
    shutil.rmtree(folder, ignore_errors=True)


def test_installed_wheel_runs_the_demo_on_its_embedded_database(
    installed: Path, tmp_path: Path, embedded_dir: Path
) -> None:
    """The README's `make demo`, as an installed tool: no DATABASE_URL, no source, an empty
    folder; the embedded server's data goes where ETL_EMBEDDED_PG_DIR says, and `db stop`
    stops it."""
    work = tmp_path / "empty"
    work.mkdir()
    env = _clean_env(installed, tmp_path / "home", ETL_EMBEDDED_PG_DIR=str(embedded_dir))
    try:
        for command in ("extract", "load"):
            done = _run(installed, work, command, "--json", env=env)
            assert done.returncode == 0, done.stderr
        status = _run(installed, work, "status", "--json", env=env)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["database"]["drops"] == 2932
        assert _run(installed, work, "db", "status", env=env).returncode == 0
    finally:
        stop = _run(installed, work, "db", "stop", env=env)
    assert stop.returncode == 0, stop.stderr
    assert "stopped" in _run(installed, work, "db", "status", env=env).stdout
    assert (embedded_dir / "PG_VERSION").exists() or any(embedded_dir.rglob("PG_VERSION"))
    assert sorted(p.name for p in work.iterdir()) == ["spool"]


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


def test_two_installations_run_their_own_embedded_servers_at_once(
    installed: Path, second_installed: Path, tmp_path: Path
) -> None:
    """Two venvs, no ETL_EMBEDDED_PG_DIR: each finds the server of its own installation in
    the data folder (here redirected by XDG_* into the test's folder), both run at the same
    time, each loads the sample itself (7 applied, not 7 unchanged), and stopping one
    leaves the other running."""
    shared = Path(tempfile.mkdtemp(prefix="wheels-etl-2venv-"))
    os.chmod(shared, 0o755)  # as root the server's account must reach its data folder
    data = {"XDG_DATA_HOME": str(shared / "home-data"), "XDG_DATA_DIRS": str(shared / "site")}
    runs = {}
    try:
        for name, bin_ in (("a", installed), ("b", second_installed)):
            work = tmp_path / name
            work.mkdir()
            env = _clean_env(bin_, tmp_path / "home", **data)
            chain = "wheels-etl extract && wheels-etl load && wheels-etl status --json"
            runs[name] = (bin_, work, env, subprocess.Popen(
                ["sh", "-c", chain], cwd=work, env=env, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            ))  # fmt: skip
        urls = {}
        for name, (bin_, work, env, proc) in runs.items():
            out, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err
            assert "7 applied" in out, out  # its own database: nothing loaded by the other
            status = json.loads(out[out.index("{") :])
            assert status["database"]["drops"] == 2932
            urls[name] = _run(bin_, work, "db", "url", env=env).stdout.strip()
        assert urls["a"] != urls["b"] and all(u.startswith("postgresql://") for u in urls.values())
        bin_a, work_a, env_a, _ = runs["a"]
        assert _run(bin_a, work_a, "db", "stop", env=env_a).stdout.strip() == "stopped"
        bin_b, work_b, env_b, _ = runs["b"]
        again = _run(bin_b, work_b, "status", "--json", env=env_b)
        assert again.returncode == 0, again.stderr  # b's server still runs
        assert json.loads(again.stdout)["database"]["drops"] == 2932
        gone = _run(bin_a, work_a, "status", env=env_a)
        assert gone.returncode == 3 and "embedded database not running" in gone.stdout
    finally:
        for bin_, work, env, _ in runs.values():
            _run(bin_, work, "db", "stop", env=env)
        shutil.rmtree(shared, ignore_errors=True)
