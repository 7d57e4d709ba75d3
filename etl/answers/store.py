"""Shared read-only database access of the answers: a connection, names, PEP 440 helpers.

Every query runs on an autocommit connection with ``default_transaction_read_only`` on:
each statement is its own read-only snapshot, nothing here opens a transaction (only
``etl.load`` does) or can write.  An unknown product, release, architecture or variant is a
:class:`QueryInputError` (exit 2) whose one line names the closest existing names.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from etl.db import schema
from etl.db.connect import Conn, classify, connect
from etl.errors import ConfigError

_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)


class QueryInputError(ConfigError):
    """A bad argument of search, diff or why: a name, a specifier, an unknown release."""


@contextmanager
def reader(conninfo: str) -> Iterator[Conn]:
    """A read-only autocommit connection; psycopg errors become load errors (exit 3 when
    the database is unavailable)."""
    conn = connect(conninfo)
    try:
        try:
            conn.execute("SET default_transaction_read_only = on")
            version = schema.schema_version(conn)
            if version < schema.DOMAIN_VERSION:
                raise QueryInputError(
                    f"the database is at schema version {version}, these answers need "
                    f"{schema.DOMAIN_VERSION}: run `wheels-etl migrate` (or `load`) first"
                )
            yield conn
        except psycopg.Error as exc:
            raise classify(exc, conn, release="", path="") from exc
    finally:
        conn.close()


def package_name(name: str) -> str:
    """``name`` PEP 503 normalized; a :class:`QueryInputError` when it is no PEP 508 name."""
    if not _NAME.match(name):
        raise QueryInputError(f"not a package name: {name!r}")
    return canonicalize_name(name)


def version_filter(spec: str | None) -> SpecifierSet | None:
    """``--version``: a PEP 440 specifier (``>=2,<3``) or a bare version (``2.5.1`` means
    ``==2.5.1``)."""
    if spec is None:
        return None
    text = spec.strip()
    try:
        Version(text)
    except InvalidVersion:
        pass
    else:
        text = "==" + text
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        raise QueryInputError(f"--version: not a PEP 440 version or specifier: {spec!r}") from None


def matches(spec: SpecifierSet | None, version: str) -> bool:
    """Pre-releases count (an inventory, not an installer); a version that is not PEP 440
    matches only ``===`` specifiers."""
    if spec is None:
        return True
    try:
        return spec.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return bool(spec) and all(s.operator == "===" and s.version == version for s in spec)


def version_key(version: str) -> tuple[int, Any]:
    """PEP 440 order; versions that are not PEP 440 sort first, by their text."""
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def sort_versions(versions: Iterable[str]) -> list[str]:
    return sorted(set(versions), key=version_key)


def closest(word: str, names: Sequence[str]) -> str:
    """The closest existing names, for a one-line error."""
    near = difflib.get_close_matches(word, names, n=3, cutoff=0.5)
    if not near:
        near = sorted(names)[:3]
    return ", ".join(near) if near else "none loaded"


def check_product(conn: Conn, product: str) -> None:
    if conn.execute("SELECT 1 FROM releases WHERE product = %s LIMIT 1", [product]).fetchone():
        return
    names = [r[0] for r in conn.execute("SELECT DISTINCT product FROM releases")]
    raise QueryInputError(f"unknown product {product!r}; closest: {closest(product, names)}")


def check_release(conn: Conn, product: str, release: str) -> None:
    found = conn.execute(
        "SELECT 1 FROM releases WHERE product = %s AND release = %s", [product, release]
    ).fetchone()
    if found:
        return
    check_product(conn, product)
    names = [
        r[0] for r in conn.execute("SELECT release FROM releases WHERE product = %s", [product])
    ]
    raise QueryInputError(
        f"unknown release {product}/{release}; closest: {closest(release, names)}"
    )


def builds(conn: Conn, product: str, release: str) -> list[tuple[str, str]]:
    """``(architecture, variant)`` of a release's builds, sorted."""
    rows = conn.execute(
        "SELECT architecture, variant FROM artifacts WHERE product = %s AND release = %s"
        " ORDER BY architecture, variant",
        [product, release],
    ).fetchall()
    return [(a, v) for a, v in rows]
