"""CLI: ``python -m tests.support.gen OUT --products 2 --releases 100 ...``."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from tests.support.gen.model import GenSpec
from tests.support.gen.writer import generate


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.support.gen",
        description="Generate a realistic wheel-collections source tree (protocol v1).",
    )
    ap.add_argument("out", type=Path, help="output directory (created)")
    defaults = GenSpec()
    for name in ("products", "releases", "artifacts", "packages", "drops", "seed", "page_size"):
        ap.add_argument(
            f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name), dest=name
        )
    ap.add_argument("--force", action="store_true", help="delete OUT first if it exists")
    args = ap.parse_args(argv)
    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        if not args.force:
            ap.error(f"{out} is not empty (use --force to replace it)")
        shutil.rmtree(out)
    spec = GenSpec(
        products=args.products,
        releases=args.releases,
        artifacts=args.artifacts,
        packages=args.packages,
        drops=args.drops,
        seed=args.seed,
        page_size=args.page_size,
    )
    summary = generate(out, spec)
    json.dump(summary.as_dict(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
