"""The tasks' arguments, checked before anything is done with them.

A task's arguments come from the broker: anyone who can write to the queue can send any
JSON.  They are checked with the rules the rest of wheels-etl uses for the same values
(the protocol's identifier rule for products and versions, the spool's file-name scheme
for file names), so a name from the broker never becomes a path outside the spool.  A
task with a bad argument is refused (:class:`TaskArgumentError`: one log line, the message
acknowledged, no retry: sending it again would not make it valid).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from etl.errors import ConfigError, SpoolFileError
from etl.protocol import IDENT_RE
from etl.spool import SpoolName

__all__ = ["TaskArgumentError", "check_file", "check_ident", "check_run_id", "listing_args"]
__all__ += ["release_args"]

#: Run ids: ``enqueue`` makes ``20261207T211013-1a2b3c4d``; ``reconcile`` sends its own.
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Longest file name a spool writes is about 150 bytes (see etl.spoolformat); file systems
#: take 255.
_NAME_MAX = 255


class TaskArgumentError(ConfigError):
    """A task argument breaks the rules its value has everywhere else: never retried."""


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def check_run_id(value: object) -> str:
    if not isinstance(value, str) or not _RUN_ID_RE.fullmatch(value):
        raise TaskArgumentError(f"invalid run id {_shown(value)}: must match {_RUN_ID_RE.pattern}")
    return value


def check_ident(field: str, value: object) -> str:
    """A product or version: the protocol's identifier rule (:data:`etl.protocol.IDENT_RE`)."""
    if not isinstance(value, str) or not IDENT_RE.fullmatch(value):
        raise TaskArgumentError(f"invalid {field} {_shown(value)}: must match {IDENT_RE.pattern}")
    return value


def check_file(value: object) -> str:
    """A spool file name: a bare name (no folder, not ``.`` or ``..``) that the spool's
    name scheme parses (:meth:`etl.spoolformat.SpoolName.parse`)."""
    if not isinstance(value, str) or not 0 < len(value.encode()) <= _NAME_MAX:
        raise TaskArgumentError(f"invalid spool file name {_shown(value)}")
    if "/" in value or "\\" in value or "\x00" in value:
        raise TaskArgumentError(f"invalid spool file name {_shown(value)}: a bare name only")
    try:
        SpoolName.parse(value)
    except (ValueError, SpoolFileError) as exc:  # not a spool name, or a bad date in it
        message = exc.message if isinstance(exc, SpoolFileError) else str(exc)
        raise TaskArgumentError(f"invalid spool file name {_shown(value)}: {message}") from None
    return value


def listing_args(run_id: object, products: object, full: object) -> None:
    """The arguments of a ``list_releases`` task."""
    check_run_id(run_id)
    if not isinstance(products, list):
        raise TaskArgumentError(f"invalid products {_shown(products)}: not a list")
    for product in products:
        check_ident("product", product)
    if not isinstance(full, bool):
        raise TaskArgumentError(f"invalid full {_shown(full)}: not a boolean")


def release_args(data: object) -> dict[str, Any]:
    """The release of an ``extract_release`` task: product, version, ``updated_at``
    (RFC 3339 or null) checked; other keys are passed on untouched."""
    if not isinstance(data, dict):
        raise TaskArgumentError(f"invalid release {_shown(data)}: not an object")
    check_ident("product", data.get("product"))
    check_ident("version", data.get("version"))
    updated = data.get("updated_at")
    if updated is not None:
        try:
            if not isinstance(updated, str):
                raise ValueError("not a string")
            parsed = datetime.fromisoformat(updated)
            if parsed.tzinfo is None:
                raise ValueError("no time zone")
        except ValueError as exc:
            raise TaskArgumentError(f"invalid updated_at {_shown(updated)}: {exc}") from None
    return data
