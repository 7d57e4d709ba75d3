"""Settings: flags override environment variables, which override defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from etl.errors import ConfigError

DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024
#: Shipped sample collection, used when ``ETL_SOURCE_URL`` is not set.
SAMPLE_SOURCE = Path(__file__).resolve().parent.parent / "samples" / "collection"
#: Project-local state (embedded Postgres data), git-ignored.
LOCAL_STATE_DIR = Path(__file__).resolve().parent.parent / ".wheels-etl"


def _default_workers() -> int:
    return max(2, min(8, (os.cpu_count() or 2) * 2))


def _spool(text: str) -> str | Path:
    """A spool location: ``s3://bucket/prefix`` as given, anything else a folder."""
    return text if "://" in text else Path(text)


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know; built once by ``cli.py``."""

    source_url: str = ""
    source_token: str | None = field(default=None, repr=False)
    spool_dir: str | Path = Path("spool")  # a folder, or s3://bucket/prefix
    database_url: str | None = field(default=None, repr=False)
    products: tuple[str, ...] = ()
    workers: int = field(default_factory=_default_workers)
    #: Cap on response bytes held in memory across all fetch workers.
    max_inflight_bytes: int = 512 * 1024 * 1024
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    retries: int = 5
    retry_max_seconds: float = 120.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    ca_bundle: str | None = None
    verify_tls: bool = True
    full: bool = False
    load_workers: int = 1
    load_retry_seconds: float = 60.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = dict(os.environ) if env is None else env
        base = cls(
            source_url=env.get("ETL_SOURCE_URL") or str(SAMPLE_SOURCE),
            source_token=env.get("ETL_SOURCE_TOKEN") or None,
            spool_dir=_spool(env.get("ETL_SPOOL_DIR") or "spool"),
            database_url=env.get("DATABASE_URL") or None,
            ca_bundle=env.get("ETL_CA_BUNDLE") or None,
        )
        clean = {k: v for k, v in overrides.items() if v is not None}
        settings = replace(base, **clean)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        if self.load_workers < 1:
            raise ConfigError(f"load --workers must be at least 1, got {self.load_workers}")
        if self.max_file_bytes < 1:
            raise ConfigError(f"max file size must be positive, got {self.max_file_bytes}")
        if self.retries < 1:
            raise ConfigError(f"retries must be at least 1, got {self.retries}")
