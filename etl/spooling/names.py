"""The spool's names: file names (built and parsed only here), the states a file can be
in, and a file in a state as a listing gives it.

A file's name is ``<product>~<release>~<updated_at>~<content-hash>.parquet``; the full
identity is in its Parquet metadata (:mod:`etl.spooling.format`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from etl.errors import CorruptSpoolFileError
from etl.protocol import IDENT_PATTERN

SpoolState = Literal["ready", "loading", "loaded", "failed"]
STATES: tuple[SpoolState, ...] = get_args(SpoolState)


@dataclass(frozen=True)
class SpoolFile:
    """A file in one state, as listed (size in bytes, mtime in seconds since the epoch)."""

    state: SpoolState
    name: str
    size: int
    mtime: float

    @property
    def parsed(self) -> SpoolName:
        return SpoolName.parse(self.name)


# --- file names -------------------------------------------------------------------

SUFFIX = ".parquet"
_SEP = "~"  # not in the identifier alphabet [A-Za-z0-9._+-], so names parse unambiguously
#: A product or release longer than this appears in file and record names shortened to its
#: first :data:`_KEEP` characters, ``=`` (outside the identifier alphabet, so a shortened
#: part never equals a real identifier) and 16 hex digits of its sha256: every name stays
#: far below the 255-byte limit of file systems (at most ~150 bytes for a spool file, with
#: room for temp and sidecar suffixes) while 128-character identifiers (the protocol's
#: maximum) still work.  The full identity is always in the Parquet metadata and records.
NAME_PART_MAX = 48
_KEEP = NAME_PART_MAX - 17
_PART = rf"(?:[A-Za-z0-9][A-Za-z0-9._+-]{{{_KEEP - 1}}}=[0-9a-f]{{16}}|{IDENT_PATTERN})"
_NAME_RE = re.compile(
    rf"^(?P<product>{_PART})~(?P<release>{_PART})"
    r"~(?P<ts>\d{8}T\d{6}(?:\.\d{6})?Z)~(?P<hash>[0-9a-f]{16})\.parquet$"
)
_TS_NAME = "%Y%m%dT%H%M%S"


def name_part(ident: str) -> str:
    """``ident`` as it appears in file and record names (shortened when long, see above)."""
    if len(ident) <= NAME_PART_MAX:
        return ident
    return f"{ident[:_KEEP]}={hashlib.sha256(ident.encode()).hexdigest()[:16]}"


def release_stem(product: str, release: str) -> str:
    """``product~release`` in names (temp uploads, records): bounded length, unambiguous."""
    return _SEP.join([name_part(product), name_part(release)])


@dataclass(frozen=True, order=True)
class SpoolName:
    """The parts encoded in a spool file name (built and parsed only here).

    Built from the full product and release; parsed back, a long one comes back in its
    shortened name form (:attr:`shortened`): the full identity is then in the file's
    metadata (:func:`read_meta`), and :meth:`matches` compares the two.
    """

    product: str
    release: str
    updated_at: datetime
    short_hash: str

    def __str__(self) -> str:
        ts = self.updated_at.astimezone(UTC)
        text = f"{ts.year:04d}" + ts.strftime(_TS_NAME[2:])  # glibc %Y does not pad year 1
        if ts.microsecond:
            text += f".{ts.microsecond:06d}"
        stem = release_stem(self.product, self.release)
        return _SEP.join([stem, text + "Z", self.short_hash]) + SUFFIX

    @classmethod
    def parse(cls, name: str) -> SpoolName:
        m = _NAME_RE.match(name)
        if not m:
            raise CorruptSpoolFileError("file name is not a wheels-etl spool name", path=name)
        ts_text = m["ts"][:-1]
        layout = _TS_NAME + (".%f" if "." in ts_text else "")
        ts = datetime.strptime(ts_text, layout).replace(tzinfo=UTC)
        return cls(m["product"], m["release"], ts, m["hash"])

    @property
    def shortened(self) -> bool:
        """The product or release is in its shortened form (read the metadata for it)."""
        return "=" in self.product or "=" in self.release

    def matches(self, product: str, release: str) -> bool:
        """Whether this name belongs to the full ``product``/``release``."""
        return (name_part(product), name_part(release)) == (
            name_part(self.product),
            name_part(self.release),
        )

    @property
    def release_key(self) -> str:
        return self.key(self.product, self.release)

    @staticmethod
    def key(product: str, release: str) -> str:
        """``product/release``: how a release is named in messages, locks and reports."""
        return f"{product}/{release}"


def spool_name(product: str, release: str, updated_at: datetime, content_sha256: str) -> str:
    return str(SpoolName(product, release, updated_at, content_sha256[:16]))
