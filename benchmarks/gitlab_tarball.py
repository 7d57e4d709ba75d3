"""GitLab tarballs: extract's throughput against the machine's own gunzip + sha256.

``python -m benchmarks.gitlab_tarball [--mb 400] [--rounds 3]`` (also the ``gitlab``
section of ``benchmarks.run``).  One ``.tar.gz`` of fromager's documents and wheels
(incompressible bytes, as zipped wheels are, with some compressible ones) is written to
the scratch folder; then, per round, in fresh processes:

* **limit**: the same bytes read from the file (page cache) and gunzipped with
  ``zlib.decompressobj`` + ``hashlib.sha256`` over what comes out, in one process, no HTTP:
  what one core of this machine can do with these bytes at best;
* **extract**: ``etl.extract.extract`` (timed around the call, imports excluded) against
  the tests' GitLab (:mod:`tests.support.gitlabserver`), served by another process, the
  release's one tarball streamed through HTTP, gunzip, tar, sha256 per wheel and the
  spool writer;
* **extract-<codec>**: the same with another gzip decoder swapped in (``isal``,
  ``zlib_ng``), when it is installed.

The ratio is limit seconds / extract seconds (the same bytes, so throughput over
throughput), in wall seconds and in CPU seconds of the measured process (on a shared
machine, wall seconds mostly measure the neighbours); medians over rounds.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TAG = "v1.0.0+bench"
ASSET = f"wheels-{TAG[1:]}-x86_64.tar.gz"
CODECS = ("zlib", "isal", "zlib_ng")


def make_tarball(path: Path, megabytes: int, seed: int = 1) -> int:
    """A fromager-like ``.tar.gz`` of about ``megabytes`` MB of wheels; its size."""
    from tests.support.tarballs import Layout, fromager_tarball, sample

    rng = random.Random(seed)
    wheels: dict[str, bytes] = {}
    size = 0
    i = 0
    while size < megabytes * 1_000_000:
        n = rng.randrange(200_000, 8_000_000)
        body = rng.randbytes(n) if i % 5 else (b"def f(x):\n    return x\n" * (n // 24))
        wheels[f"pkg{i}-1.{i}-py3-none-any.whl"] = body
        size += n
        i += 1
    tar_bytes = io.BytesIO()
    # the documents and a good layout from the real sample, then the wheels
    docs = gzip.decompress(fromager_tarball(sample("webstack"), Layout(extra_wheels=wheels)))
    tar_bytes.write(docs)
    with gzip.open(path, "wb", compresslevel=6) as out:
        out.write(tar_bytes.getvalue())
    return path.stat().st_size


def _limit(path: str) -> dict[str, float]:
    import hashlib
    import zlib

    t0, c0 = time.perf_counter(), time.process_time()
    d = zlib.decompressobj(31)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(256 * 1024):
            h.update(d.decompress(chunk))
    h.update(d.flush())
    return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}


def _extract(url: str, token: str, spool: str, codec: str) -> dict[str, float]:
    from etl.config import Settings
    from etl.extract import extract
    from etl.source import gunzip
    from etl.spool import Spool

    gunzip.use_decoder(codec)
    settings = Settings.from_env({}, source_url=url, source_token=token, spool_dir=spool)
    t0, c0 = time.perf_counter(), time.process_time()
    report = extract(settings, Spool(spool))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert report.ok and len(report.spooled) == 1, report.failed
    return {"wall_s": wall, "cpu_s": cpu, "bytes": float(report.stats["bytes"])}


def _serve(path: str) -> None:
    """Serve the tarball from the tests' GitLab until stdin closes."""
    from tests.support.gitlabserver import FakeGitLab, Link, Release

    data = Path(path).read_bytes()
    with FakeGitLab() as gl:
        gl.api.record = gl.assets.record = False
        gl.put_file(ASSET, data)
        gl.project("bench/wheels").releases.append(
            Release(TAG, "2026-11-01T00:00:00Z", links=[Link(ASSET)])
        )
        print(json.dumps({"url": gl.source_url("bench/wheels"), "token": gl.token}), flush=True)
        sys.stdin.read()


def _child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gitlab_tarball", *args],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def available_codecs() -> list[str]:
    from etl.source import gunzip

    return [c for c in CODECS if gunzip.decoder_available(c)]


def measure(work: Path, megabytes: int, rounds: int) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    path = work / ASSET
    size = make_tarball(path, megabytes)
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.gitlab_tarball", "serve", str(path)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        where = json.loads(server.stdout.readline())
        codecs = available_codecs()
        runs: dict[str, list[dict[str, float]]] = {"limit": []}
        for r in range(rounds):
            names = ["limit", *codecs]
            names = names[r % len(names) :] + names[: r % len(names)]  # rotate the order
            for name in names:
                if name == "limit":
                    runs["limit"].append(_child("limit", str(path)))
                    continue
                spool = tempfile.mkdtemp(prefix="spool-", dir=work)
                got = _child("extract", where["url"], where["token"], spool, name)
                runs.setdefault(f"extract-{name}", []).append(got)
                shutil.rmtree(spool, ignore_errors=True)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(30)
    ratios = {
        f"{name}-{key}": statistics.median(
            lim[key] / run[key] for lim, run in zip(runs["limit"], recs, strict=False)
        )
        for name, recs in runs.items()
        if name != "limit"
        for key in ("wall_s", "cpu_s")
    }
    return {"tarball_bytes": size, "rounds": rounds, "runs": runs, "ratios": ratios}


def summary(data: dict[str, Any]) -> list[str]:
    mb = data["tarball_bytes"] / 1e6
    lines = [
        f"tarball: {mb:.0f} MB (gzip -6 of fromager documents and wheels, 4/5 incompressible)",
        "",
        "| run | median wall s | MB/s | ratio (wall) | median CPU s | MB/CPU-s | ratio (CPU) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, recs in data["runs"].items():
        wall = statistics.median(r["wall_s"] for r in recs)
        cpu = statistics.median(r["cpu_s"] for r in recs)
        rw = data["ratios"].get(f"{name}-wall_s")
        rc = data["ratios"].get(f"{name}-cpu_s")
        lines.append(
            f"| {name} | {wall:.2f} | {mb / wall:.0f} | {_r(rw)} | {cpu:.2f} | {mb / cpu:.0f} "
            f"| {_r(rc)} |"
        )
    return lines


def _r(ratio: float | None) -> str:
    return "1 (the limit)" if ratio is None else f"{ratio:.2f}"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "serve":
        _serve(args[1])
        return 0
    if args and args[0] == "limit":
        print(json.dumps(_limit(args[1])))
        return 0
    if args and args[0] == "extract":
        print(json.dumps(_extract(args[1], args[2], args[3], args[4])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=400, help="wheel bytes in the tarball (MB)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    opts = parser.parse_args(args)
    work = opts.work or Path(tempfile.mkdtemp(prefix="wetl-gitlab-bench-"))
    try:
        data = measure(work, opts.mb, opts.rounds)
    finally:
        if opts.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print("\n".join(summary(data)))
    print(json.dumps(data["ratios"]))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(REPO))
    raise SystemExit(main())
