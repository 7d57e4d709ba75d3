"""Public data types (GenSpec, Summary, Expected*) and small deterministic helpers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from tests.support.gen.constants import (
    _PREFERRED_PAIRS,
    ARCHITECTURES,
    BASE_TIME,
    PRODUCT_NAMES,
    VARIANTS,
)


# --------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenSpec:
    products: int = 2
    releases: int = 6  # per product
    artifacts: int = 4  # per release: unique (architecture, variant) pairs
    packages: int = 300  # nodes per dependency graph (root "" not counted)
    drops: int = 300  # wheel files per artifact
    seed: int = 0
    page_size: int = 50  # releases per releases.json page

    def __post_init__(self) -> None:
        if self.products < 1 or self.releases < 0 or self.artifacts < 1:
            raise ValueError("products and artifacts must be >= 1, releases >= 0")
        if self.packages < 1 or self.drops < 0 or self.page_size < 1:
            raise ValueError("packages and page_size must be >= 1, drops >= 0")
        if self.artifacts > len(ARCHITECTURES) * len(VARIANTS):
            raise ValueError(f"at most {len(ARCHITECTURES) * len(VARIANTS)} artifacts")


@dataclass
class Summary:
    root: Path
    products: list[str] = field(default_factory=list)
    releases: int = 0
    artifacts: int = 0
    drops: int = 0
    files: int = 0
    bytes: int = 0
    graph_bytes: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "products": self.products,
            "releases": self.releases,
            "artifacts": self.artifacts,
            "drops": self.drops,
            "files": self.files,
            "bytes": self.bytes,
            "graph_bytes": self.graph_bytes,
            "seconds": round(self.seconds, 2),
        }


# --------------------------------------------------------------------------------------
# Small deterministic helpers
# --------------------------------------------------------------------------------------
def _h(*parts: object) -> int:
    data = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def _sha(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def fmt_ts(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"timestamp without zone: {text!r}")
    return value.astimezone(UTC)


def wheel_name_part(name: str) -> str:
    """PEP 427 escaping of a project name for a wheel filename."""
    return canonicalize_name(name).replace("-", "_")


def bump_version(version: str, steps: int = 1) -> str:
    """``1.2.3`` -> ``1.2.4`` (last release component + steps; pre/post/dev dropped)."""
    if steps <= 0:
        return version
    try:
        rel = list(Version(version).release)
    except InvalidVersion:
        return f"{version}.{steps}"
    rel[-1] += steps
    return ".".join(str(p) for p in rel)


def older_version(version: str) -> tuple[str, str] | None:
    """An older line of a package and the requirement that selects it, or None."""
    rel = Version(version).release
    if rel[0] >= 1 and rel[0] < 1000:
        return f"{rel[0] - 1}.{(rel[1] if len(rel) > 1 else 0) + 3}.{_h(version) % 5}", f"<{rel[0]}"
    if rel[0] >= 1000 and len(rel) > 1:  # calendar versions
        return f"{rel[0] - 1}.{rel[1]}.{(_h(version) % 27) + 1}", f"<{rel[0]}"
    if len(rel) > 1 and rel[1] >= 1:
        return f"0.{rel[1] - 1}.{_h(version) % 7}", f"<0.{rel[1]}"
    return None


def release_version(index: int, product_index: int) -> str:
    """Release versions of a product: 1.0.0, 1.0.1, ... with an occasional rc / post."""
    major = 1 + product_index % 3 + index // 100
    minor = (index // 10) % 10
    patch = index % 10
    base = f"{major}.{minor}.{patch}"
    if index % 23 == 22:
        return base + "rc1"
    if index % 31 == 30:
        return base + ".post1"
    return base


def release_updated_at(index: int, product_index: int, seed: int) -> datetime:
    return BASE_TIME + timedelta(hours=6 * index, minutes=7 * product_index + seed % 5)


def artifact_pairs(count: int) -> list[tuple[str, str]]:
    pairs = list(_PREFERRED_PAIRS)
    for variant in VARIANTS:
        for arch in ARCHITECTURES:
            if (arch, variant) not in pairs:
                pairs.append((arch, variant))
    return pairs[:count]


def variant_class(variant: str) -> str:
    for cls in ("cuda", "rocm", "gaudi", "tpu", "cpu"):
        if variant.startswith(cls):
            return cls
    return "cpu"


def product_name(index: int) -> str:
    return PRODUCT_NAMES[index] if index < len(PRODUCT_NAMES) else f"product-{index}"
