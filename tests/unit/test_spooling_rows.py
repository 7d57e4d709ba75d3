"""etl.spooling.rows: the rows a release file holds and the content hash that names it.

Both are built from Arrow columns for speed; these tests hold them to their plain
definitions, written out here without the production code: the content hash names the
files already in users' spools, so its bytes must never change by accident.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import hypothesis
import hypothesis.strategies as st
import pyarrow as pa
import pyarrow.parquet as pq

from etl.spool import Spool
from etl.spooling.format import SCHEMA, ArtifactRow, Drop
from etl.spooling.rows import ContentHasher, artifact_table, drops_array

UPDATED = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def reference_digest(product: str, release: str, updated: datetime, rows: list[ArtifactRow]) -> str:
    """The content hash as defined: each field length-prefixed; drops as a compact JSON
    array of ``[filename, sha256, size, uploaded_at]``, plus ``[yanked, yanked_reason,
    requires_python]`` when any of them is given."""
    h = hashlib.sha256()

    def field(value: str | None) -> None:
        data = b"\xff" if value is None else value.encode()
        h.update(len(data).to_bytes(8, "big") + data)

    for text in (product, release, _iso(updated)):
        field(text)
    for r in rows:
        for value in (r.architecture, r.variant, r.build_id):
            field(value)
        field(_iso(r.built_at) if r.built_at else None)
        for value in (r.dependency_graph, r.constraints_file, r.build_sequence_summary):
            field(value)
        drops = []
        for d in r.drops:
            item: list[object] = [
                d.filename,
                d.sha256,
                d.size,
                _iso(d.uploaded_at) if d.uploaded_at else None,
            ]
            if (d.yanked, d.yanked_reason, d.requires_python) != (None, None, None):
                item += [d.yanked, d.yanked_reason, d.requires_python]
            drops.append(item)
        field(json.dumps(drops, separators=(",", ":")))
    return h.hexdigest()


_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_times = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
    ),
    # the common case: whole seconds
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda t: t.replace(microsecond=0, tzinfo=UTC)
    ),
)
_drops = st.builds(
    Drop,
    filename=_text,
    name=_text,
    version=_text,
    build_tag=st.one_of(st.none(), _text),
    python_tag=_text,
    abi_tag=_text,
    platform_tag=_text,
    sha256=_text,
    size=st.integers(0, 2**63 - 1),
    uploaded_at=_times,
    yanked=st.one_of(st.none(), st.booleans()),
    yanked_reason=st.one_of(st.none(), _text),
    requires_python=st.one_of(st.none(), _text),
)
_rows = st.builds(
    ArtifactRow,
    architecture=_text,
    variant=_text,
    build_id=st.one_of(st.none(), _text),
    built_at=_times,
    dependency_graph=st.one_of(st.none(), _text),
    constraints_file=st.one_of(st.none(), _text),
    build_sequence_summary=st.one_of(st.none(), _text),
    drops=st.lists(_drops, max_size=6).map(tuple),
)


def _documented_columns() -> dict[str, str]:
    """The spool file's columns as README's "The spool file" table gives them: name ->
    the type cell (``string``, ``large string``, ``timestamp (UTC)``, ``list<struct>``);
    the drops' fields under ``drops.``, in the documented order."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = text.split("### The spool file", 1)[1].split("Key-value metadata", 1)[0]
    out: dict[str, str] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        for name in re.findall(r"`([a-z_]+)`", cells[0]):
            out[name] = cells[1]
        if cells[0] == "`drops`":
            fields = re.match(r"`([^`]+)`", cells[2])
            assert fields, line
            out.update({f"drops.{f.strip()}": "" for f in fields.group(1).split(",")})
    return out


def test_a_written_file_has_the_documented_columns_and_drop_fields(tmp_path: Path) -> None:
    """A file written through the spool, read back by pyarrow, against README's table
    (not against the production schema: both could drift together)."""
    spool = Spool(tmp_path / "spool")
    with spool.writer("prod", "1.0", UPDATED, "http://src/") as w:
        w.add(ArtifactRow("x86_64", "cpu", "b1", UPDATED, "{}", "[]", "{}", ()))
        path = tmp_path / "spool" / "ready" / w.commit().name
    schema = pq.read_schema(path)
    documented = _documented_columns()
    drop_fields = [k.removeprefix("drops.") for k in documented if k.startswith("drops.")]
    columns = {k: v for k, v in documented.items() if not k.startswith("drops.")}
    assert sorted(schema.names) == sorted(columns)
    kinds = {"string": pa.string(), "large string": pa.large_string()}
    for name, kind in columns.items():
        typ = schema.field(name).type
        if kind.startswith("timestamp"):
            assert pa.types.is_timestamp(typ) and typ.tz == "UTC", (name, typ)
        elif kind == "list<struct>":
            assert pa.types.is_list(typ) and pa.types.is_struct(typ.value_type), (name, typ)
            assert [f.name for f in typ.value_type] == drop_fields, typ
        else:
            assert typ == kinds[kind], (name, typ, kind)
    assert list(Drop._fields) == drop_fields  # the rows the writer takes, in that order


@hypothesis.given(st.lists(_rows, min_size=1, max_size=3))
@hypothesis.settings(max_examples=300, deadline=None)
def test_content_hash_is_the_documented_definition(rows: list[ArtifactRow]) -> None:
    hasher = ContentHasher("prod", "1.0", UPDATED)
    for i, r in enumerate(rows):
        # with and without the drops' Arrow columns built by the caller
        hasher.add(r, drops_array(r.drops) if i % 2 else None)
    assert hasher.hexdigest() == reference_digest("prod", "1.0", UPDATED, rows)


def test_content_hash_of_a_known_release_is_pinned() -> None:
    """Spool files already on disk are named by this hash: it does not move."""
    drop = Drop(
        "pkg-1.0-0-py3-none-any.whl",
        "pkg",
        "1.0",
        "0",
        "py3",
        "none",
        "any",
        "ab" * 32,
        10,
        datetime(2026, 1, 7, 17, 12, 30, tzinfo=UTC),
    )
    yanked = drop._replace(filename="pkg-1.1-py3-none-any.whl", yanked=True, yanked_reason="bad")
    row = ArtifactRow("x86_64", "cpu", "b1", UPDATED, '{"a": 1}', "[]", "[]", (drop, yanked))
    hasher = ContentHasher("prod", "1.0", UPDATED)
    hasher.add(row)
    assert hasher.hexdigest() == reference_digest("prod", "1.0", UPDATED, [row])
    # computed by the hasher of the release before the hash was built from Arrow columns
    assert hasher.hexdigest() == "1c749ebe3c365aed6d19b16352743bb1729e11de3015af2d2f2d874eca2138a1"


@hypothesis.given(_rows)
@hypothesis.settings(max_examples=200, deadline=None)
def test_artifact_table_is_the_row_in_the_spool_schema(row: ArtifactRow) -> None:
    expected = pa.Table.from_pylist(
        [
            {
                "product": "prod",
                "release": "1.0",
                "release_updated_at": UPDATED,
                **{k: getattr(row, k) for k in SCHEMA.names[3:-1]},
                "drops": [d._asdict() for d in row.drops],
            }
        ],
        schema=SCHEMA,
    )
    assert artifact_table("prod", "1.0", UPDATED, row).equals(expected)
    assert artifact_table("prod", "1.0", UPDATED, row, drops_array(row.drops)).equals(expected)
