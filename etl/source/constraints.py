"""fromager's ``constraints.txt`` → the stored JSON array (one object per requirement).

``packaging`` parses PEP 508 requirement lines; the overwhelmingly common pinned line
``name==version`` (a PEP 508 name, a plain PEP 440 version) takes a fast path that gives
exactly packaging's answer (``tests/unit/test_constraints.py`` checks it against
packaging) at a fraction of the cost.
"""

from __future__ import annotations

import functools
import re

import msgspec
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from etl.source.documents import fail, shown
from etl.source.jsontext import decode

_ENCODE = msgspec.json.Encoder().encode

# pip's rule for comments in requirement files: ``#`` at the start or after whitespace.
_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
#: ``name==version`` with a PEP 508 name and a PEP 440 version in (lower-case) normal
#: form, as fromager writes them; anything else goes through packaging.
_PIN_RE = re.compile(
    r"([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)[ \t]*==[ \t]*"
    r"((?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*(?:(?:a|b|rc)[0-9]+)?(?:\.post[0-9]+)?(?:\.dev[0-9]+)?"
    r"(?:\+[a-z0-9]+(?:\.[a-z0-9]+)*)?)"
)


@functools.lru_cache(maxsize=512)  # a release's artifacts pin mostly the same; small: RSS
def _pin(line: str) -> dict[str, str | None] | None:
    """The entry of a ``name==version`` line (shared, never changed), or ``None``."""
    pin = _PIN_RE.fullmatch(line)
    if pin is None:
        return None
    return {"name": canonicalize_name(pin[1]), "specifier": "==" + pin[2], "marker": None}


def constraints_to_json(data: bytes, *, url: str, release: str | None = None) -> str:
    """fromager's ``constraints.txt`` → the stored JSON array text (compact).

    One ``{"name", "specifier", "marker"}`` object per requirement line, in file order;
    ``#`` comments (pip's rule: at line start or after whitespace) and blank lines dropped.

    * ``name``: PEP 503 normalized (``Flask_SQLAlchemy`` → ``flask-sqlalchemy``).
    * ``specifier``: ``str(SpecifierSet)``, i.e. packaging's normal form: clauses without
      spaces, **sorted** and comma-joined (``werkzeug>=3.1,<3.2`` → ``"<3.2,>=3.1"``);
      ``name==1.0`` → ``"==1.0"``; no specifier → ``""``.
    * ``marker``: packaging's normal form (``python_version<'3.12'`` →
      ``python_version < "3.12"``) or ``null``.
    * Extras are dropped (they do not change what a constraint pins; pip refuses them).
    * A direct-URL line (``name @ url``) is fatal: the three keys cannot hold the URL, and
      losing it silently would store a constraint that pins nothing.
    """
    text = decode(data, url=url, release=release)
    entries: list[dict[str, str | None]] = []
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if "#" in line:
            line = _COMMENT_RE.sub("", line, count=1)
        line = line.strip(" \t")
        if not line:
            continue
        entry = _pin(line)
        if entry is not None:  # the common "name==version": packaging's answer, without it
            entries.append(entry)
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            reason = str(exc).splitlines()[0] if str(exc) else "invalid"
            fail(
                f"line {lineno}: not a valid requirement: {shown(line, 200)} ({reason})",
                url=url,
                release=release,
            )
        if req.url is not None:
            fail(
                f"line {lineno}: direct URL requirements are not supported in constraints: "
                f"{shown(line, 200)}",
                url=url,
                release=release,
            )
        entries.append(
            {
                "name": canonicalize_name(req.name),
                "specifier": str(req.specifier),
                "marker": None if req.marker is None else str(req.marker),
            }
        )
    # the text json.dumps(entries, separators=(",", ":"), ensure_ascii=False) gives
    # (the same escapes; the text came from strict UTF-8, so no lone surrogates), faster
    return _ENCODE(entries).decode()
