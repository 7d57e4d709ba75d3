"""Text values of settings, from flags and environment variables: sizes, durations,
numbers, switches and lists.  Every parser raises :class:`ConfigError` naming the value."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from etl.errors import ConfigError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "ki": 1024, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mi": 1024**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gi": 1024**3, "gib": 1024**3,
    "t": 1000**4, "tb": 1000**4, "ti": 1024**4, "tib": 1024**4,
}  # fmt: skip
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_size(text: str) -> int:
    """``1048576``, ``512KiB``, ``10MB``, ``1.5GiB`` -> bytes (decimal and binary units)."""
    m = _SIZE.match(text)
    if not m or (m[2] or "").lower() not in _SIZE_UNITS:
        raise ConfigError(f"bad size {text!r}: use e.g. 1048576, 512KiB, 10MB, 1GiB")
    return int(float(m[1]) * _SIZE_UNITS[(m[2] or "").lower()])


def parse_duration(text: str) -> float:
    """``30`` (seconds), ``500ms``, ``90s``, ``15m``, ``12h``, ``7d``, ``2w`` -> seconds."""
    m = _DURATION.match(text)
    if not m:
        raise ConfigError(f"bad duration {text!r}: use e.g. 30, 90s, 15m, 12h, 7d, 2w")
    value = float(m[1]) * _DURATION_UNITS[(m[2] or "s").lower()]
    if not math.isfinite(value):
        raise ConfigError(f"bad duration {text!r}: not a finite number")
    return value


def parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ConfigError(f"bad whole number {text!r}") from None


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"bad yes/no value {text!r}: use 1/0, true/false, yes/no")


def parse_list(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def parse_str(text: str) -> str:
    return text


def parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ConfigError(f"bad value {text!r}: choose one of {', '.join(choices)}")
        return text

    return parse
