"""etl.source.documents: the source's documents, real fromager output and hostile input."""

from __future__ import annotations

import copy
import json
import os
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hypothesis
import hypothesis.strategies as st
import pytest

from etl.errors import FatalFetchError
from etl.protocol import ARTIFACT_FILE_KEYS, IDENT_RE
from etl.source.constraints import constraints_to_json
from etl.source.documents import (
    check_identifier,
    json_document_text,
    parse_release_doc,
    parse_timestamp,
    require,
)
from etl.source.jsontext import BigInt, parse_json
from etl.source.wheels import wheels_to_drops
from etl.spooling.format import Drop

SAMPLES = Path(
    os.environ.get(
        "WHEELS_ETL_SAMPLES",
        str(Path(__file__).resolve().parents[2] / "samples" / "fromager"),
    )
)
URL = "https://src.example/rhai/3.0.0/x86_64/cpu/doc"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
HOSTILE_IDENTIFIERS = [
    "a/b",
    "/etc",
    "..",
    "../x",
    "a\x00b",
    "x" * 500,
    "x" * 129,
    "",
    "-a",
    ".hidden",
    " a",
    "a b",
    "a\n",
    "é",
    "a;DROP",
]


def fatal(fn: Any, *args: Any, **kwargs: Any) -> FatalFetchError:
    with pytest.raises(FatalFetchError) as info:
        fn(*args, **kwargs)
    return info.value


def samples(pattern: str) -> list[Path]:
    found = sorted(SAMPLES.glob(pattern))
    assert found, f"no sample files {pattern} under {SAMPLES}"
    return found


# --- identifiers -----------------------------------------------------------------------


def reference_identifier(value: str) -> bool:
    """The identifier rule, written without a regex."""
    first = string.ascii_letters + string.digits
    rest = first + "._+-"
    return 1 <= len(value) <= 128 and value[0] in first and all(c in rest for c in value[1:])


@pytest.mark.parametrize(
    "value", ["rhai", "3.0.0", "x86_64", "cuda12.8-ubi9", "1+local", "a" * 128]
)
def test_identifier_accepts(value: str) -> None:
    assert check_identifier("variant", value) == value


@pytest.mark.parametrize("value", [*HOSTILE_IDENTIFIERS, None, 3, ["a"]])
def test_identifier_rejects_naming_field_and_value(value: object) -> None:
    err = fatal(check_identifier, "architecture", value, release="p/1", url=URL)
    assert "architecture" in str(err)
    assert repr(value)[:20] in str(err)
    assert err.url == URL and err.release == "p/1"
    assert len(str(err)) < 400  # a 500-character value is shortened


def test_identifier_matches_reference_on_boundaries() -> None:
    alphabet = string.ascii_letters + string.digits + "._+-/\\\x00 \n\t:é\u2028"
    candidates = [a + b for a in alphabet for b in ["", "a", ".", "-", "/", "\n"]]
    candidates += ["a" * n for n in (0, 1, 127, 128, 129)]
    for value in candidates:
        accepted = bool(IDENT_RE.fullmatch(value))
        assert accepted == reference_identifier(value), repr(value)


def test_identifier_property() -> None:
    import hypothesis

    st = hypothesis.strategies

    @hypothesis.settings(derandomize=True, deadline=None, max_examples=400)
    @hypothesis.given(st.text(max_size=140) | st.from_regex(IDENT_RE, fullmatch=True))
    def check(value: str) -> None:
        try:
            check_identifier("product", value)
        except FatalFetchError:
            assert not reference_identifier(value)
        else:
            assert reference_identifier(value)

    check()


# --- timestamps, parse_json, require ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-01T12:00:00Z", datetime(2026, 10, 1, 12, tzinfo=UTC)),
        ("2026-10-01t12:00:00z", datetime(2026, 10, 1, 12, tzinfo=UTC)),
        ("2026-10-01T14:00:00+02:00", datetime(2026, 10, 1, 12, tzinfo=UTC)),
        ("2026-10-01T12:00:00.5Z", datetime(2026, 10, 1, 12, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_timestamp_rfc3339(text: str, expected: datetime) -> None:
    value = parse_timestamp(text, field="updated_at")
    assert value == expected and value.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2026-10-01",
        "2026-10-01T12:00:00",
        "20261001T120000Z",
        "2026-10-01T12:00Z",
        "2026-13-01T00:00:00Z",
        "2026-10-01T24:00:00Z",
        "yesterday",
        "",
        "2026-10-01T12:00:00Z\n",
        "٢٠٢٦-10-01T12:00:00Z",
    ],
)
def test_timestamp_rejects(text: str) -> None:
    err = fatal(parse_timestamp, text, field="built_at", url=URL)
    assert "built_at" in str(err) and "RFC 3339" in str(err)


def test_timestamp_rejects_non_string() -> None:
    assert "built_at" in str(fatal(parse_timestamp, 1700000000, field="built_at"))


def test_parse_json_line_and_column() -> None:
    err = fatal(parse_json, b'{\n  "a": 1,\n  "b": \n}', url=URL, release="p/1")
    assert "line 4 column 1" in str(err)
    assert err.url == URL and URL in str(err) and "release p/1" in str(err)


def test_parse_json_invalid_utf8_byte_offset() -> None:
    err = fatal(parse_json, b'{"a": "\xc3\xa9\xff"}', url=URL)
    assert "invalid UTF-8 at byte 9" in str(err)


def test_parse_json_bom_is_dropped() -> None:
    assert parse_json(b'\xef\xbb\xbf{"a": 1}', url=URL) == {"a": 1}


@pytest.mark.parametrize("text", [b"[NaN]", b'{"a": Infinity}', b"-Infinity"])
def test_parse_json_rejects_non_standard_constants(text: bytes) -> None:
    assert "not valid JSON" in str(fatal(parse_json, text, url=URL))


def test_parse_json_hostile_nesting_is_fatal_not_a_crash() -> None:
    assert "malformed JSON" in str(fatal(parse_json, b"[" * 200_000, url=URL))


def test_parse_json_accepts_an_integer_longer_than_python_parses() -> None:
    """Issue 10 item 9: 5,000 digits is valid JSON and jsonb stores it."""
    digits = "9" * 5000
    value = parse_json(f'{{"n": -{digits}, "m": 5}}'.encode(), url=URL)
    assert isinstance(value["n"], BigInt) and value["n"].text == "-" + digits
    assert value["n"].digits == 5000 and value["m"] == 5
    text = json_document_text(f'{{"n": {digits}}}'.encode(), url=URL, expect=dict)
    assert text == f'{{"n": {digits}}}'


def test_parse_json_refuses_an_integer_over_the_jsonb_limit_naming_it() -> None:
    message = str(fatal(parse_json, b"1" * 131_073, url=URL, release="rhai/1.0"))
    assert "131073 digits" in message and "131072-digit limit of Postgres jsonb" in message
    assert URL in message and "rhai/1.0" in message
    assert parse_json(b"1" * 131_072, url=URL).digits == 131_072


def test_a_wheel_size_of_5000_digits_is_out_of_range_not_a_crash() -> None:
    entry = {"filename": "a-1-py3-none-any.whl", "hashes": {"sha256": "0" * 64}}
    body = json.dumps({"files": [{**entry, "size": 0}]}).replace(
        '"size": 0', '"size": ' + "7" * 5000
    )
    message = str(fatal(wheels_to_drops, body.encode(), url=URL))
    assert "'size'" in message and "out of range" in message and "5000 digits" in message


def test_require() -> None:
    assert require({"a": 1}, "a", int, url=URL) == 1
    assert "missing key 'b'" in str(fatal(require, {"a": 1}, "b", int, url=URL))
    assert "must be int" in str(fatal(require, {"a": True}, "a", int, url=URL))
    assert "expected a JSON object" in str(fatal(require, [], "a", int, url=URL))


# --- release.json ----------------------------------------------------------------------


def release_doc() -> dict[str, Any]:
    """The protocol's example, with a second artifact."""

    def files(arch: str, variant: str) -> dict[str, str]:
        base = f"{arch}/{variant}/"
        return {
            "dependency_graph": base + "graph.json",
            "constraints_file": base + "constraints.txt",
            "build_sequence_summary": base + "build-sequence-summary.json",
            "wheels": "https://cdn.example/" + base + "wheels.json",
        }

    return {
        "product": "rhai",
        "version": "3.0.0",
        "updated_at": "2026-10-01T12:00:00Z",
        "artifacts": [
            {
                "architecture": "x86_64",
                "variant": "cuda12.8-ubi9",
                "build_id": "pipeline-81234",
                "built_at": "2026-09-30T22:10:05Z",
                "files": files("x86_64", "cuda12.8-ubi9"),
            },
            {"architecture": "aarch64", "variant": "cpu-ubi9", "files": files("aarch64", "cpu")},
        ],
    }


def parse_release(doc: Any) -> Any:
    return parse_release_doc(doc, product="rhai", version="3.0.0", url=URL)


def test_release_doc_valid() -> None:
    rel = parse_release(release_doc())
    assert (rel.product, rel.version) == ("rhai", "3.0.0")
    assert rel.updated_at == datetime(2026, 10, 1, 12, tzinfo=UTC)
    first, second = rel.artifacts
    assert (first.architecture, first.variant) == ("x86_64", "cuda12.8-ubi9")
    assert first.build_id == "pipeline-81234"
    assert first.built_at == datetime(2026, 9, 30, 22, 10, 5, tzinfo=UTC)
    assert first.files == {
        "dependency_graph": "x86_64/cuda12.8-ubi9/graph.json",
        "constraints_file": "x86_64/cuda12.8-ubi9/constraints.txt",
        "build_sequence_summary": "x86_64/cuda12.8-ubi9/build-sequence-summary.json",
        "wheels": "https://cdn.example/x86_64/cuda12.8-ubi9/wheels.json",
    }
    assert (second.build_id, second.built_at) == (None, None)


def test_release_doc_null_optionals_empty_artifacts_extra_keys() -> None:
    doc = release_doc()
    doc["artifacts"][0].update(build_id=None, built_at=None, future_field=[1])
    doc["artifacts"][0]["files"]["sbom"] = "sbom.json"
    doc["comment"] = "extra keys are ignored"
    art = parse_release(doc).artifacts[0]
    assert (art.build_id, art.built_at) == (None, None)
    assert set(art.files) == set(ARTIFACT_FILE_KEYS)
    doc["artifacts"] = []
    assert parse_release(doc).artifacts == ()


@pytest.mark.parametrize("field", ["product", "version"])
def test_release_doc_mismatch_names_both_values(field: str) -> None:
    doc = release_doc()
    doc[field] = "other"
    err = fatal(parse_release, doc)
    expected = "rhai" if field == "product" else "3.0.0"
    assert f"{field} 'other'" in str(err) and repr(expected) in str(err)
    assert err.release == "rhai/3.0.0" and err.url == URL


@pytest.mark.parametrize("value", HOSTILE_IDENTIFIERS)
@pytest.mark.parametrize("field", ["product", "version", "architecture", "variant"])
def test_release_doc_hostile_identifiers(field: str, value: str) -> None:
    doc = release_doc()
    target = doc if field in ("product", "version") else doc["artifacts"][1]
    target[field] = value
    err = fatal(parse_release, doc)
    assert f"invalid {field}" in str(err) or f"invalid artifacts[1].{field}" in str(err)
    assert repr(value)[:20] in str(err)


def test_release_doc_hostile_expected_values_are_still_checked() -> None:
    doc = release_doc()
    doc["product"] = "../etc"
    err = fatal(parse_release_doc, doc, product="../etc", version="3.0.0", url=URL)
    assert "invalid product '../etc'" in str(err)


def test_release_doc_duplicate_artifact_names_pair() -> None:
    doc = release_doc()
    doc["artifacts"].append(copy.deepcopy(doc["artifacts"][0]))
    err = fatal(parse_release, doc)
    assert "duplicate artifact" in str(err)
    assert "'x86_64'" in str(err) and "'cuda12.8-ubi9'" in str(err)


def test_release_doc_same_architecture_other_variant_is_fine() -> None:
    doc = release_doc()
    doc["artifacts"][1]["architecture"] = "x86_64"
    assert len(parse_release(doc).artifacts) == 2


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ((), "product"),
        ((), "version"),
        ((), "updated_at"),
        ((), "artifacts"),
        (("artifacts", 0), "architecture"),
        (("artifacts", 0), "variant"),
        (("artifacts", 0), "files"),
        *[(("artifacts", 1, "files"), key) for key in ARTIFACT_FILE_KEYS],
    ],
)
def test_release_doc_missing_key(path: tuple[Any, ...], key: str) -> None:
    doc = release_doc()
    target: Any = doc
    for step in path:
        target = target[step]
    del target[key]
    assert f"missing key {key!r}" in str(fatal(parse_release, doc))


@pytest.mark.parametrize(
    ("path", "key", "value", "expect"),
    [
        ((), "updated_at", 1700000000, "must be string, got integer"),
        ((), "artifacts", {}, "must be array, got object"),
        ((), "product", None, "must be string, got null"),
        (("artifacts", 0), "architecture", 64, "must be string, got integer"),
        (("artifacts", 0), "build_id", 81234, "must be string, got integer"),
        (("artifacts", 0), "built_at", True, "must be string, got boolean"),
        (("artifacts", 0), "files", ["a"], "must be object, got array"),
        (("artifacts", 0, "files"), "wheels", None, "must be string, got null"),
        (("artifacts", 0, "files"), "dependency_graph", 1.5, "must be string, got number"),
    ],
)
def test_release_doc_wrong_type(path: tuple[Any, ...], key: str, value: Any, expect: str) -> None:
    doc = release_doc()
    target: Any = doc
    for step in path:
        target = target[step]
    target[key] = value
    err = str(fatal(parse_release, doc))
    assert repr(key) in err and expect in err


@pytest.mark.parametrize("doc", [[], "release", None, {"artifacts": []}])
def test_release_doc_not_an_object_or_empty(doc: Any) -> None:
    fatal(parse_release, doc)


def test_release_doc_artifact_not_an_object() -> None:
    doc = release_doc()
    doc["artifacts"][1] = "x86_64"
    assert "artifacts[1] must be a JSON object, got string" in str(fatal(parse_release, doc))


@pytest.mark.parametrize(
    ("key", "value", "expect"),
    [
        ("built_at", "2026-09-30", "RFC 3339"),
        ("build_id", "pipe\x00line", "U+0000"),
        ("build_id", "pipe\ud800", "U+D800"),
    ],
)
def test_release_doc_bad_artifact_values(key: str, value: str, expect: str) -> None:
    doc = release_doc()
    doc["artifacts"][0][key] = value
    err = str(fatal(parse_release, doc))
    assert f"artifacts[0].{key}" in err and expect in err


@pytest.mark.parametrize("value", ["", "graph\x00.json", "graph\n.json"])
def test_release_doc_bad_file_urls(value: str) -> None:
    doc = release_doc()
    doc["artifacts"][0]["files"]["dependency_graph"] = value
    assert "artifacts[0].files.dependency_graph" in str(fatal(parse_release, doc))


# --- constraints.txt -------------------------------------------------------------------


def requirement_lines(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_every_sample_constraints_file_parses() -> None:
    files = samples("**/*constraints*.txt") + samples("**/*requirements*.txt")
    for path in files:
        entries = json.loads(constraints_to_json(path.read_bytes(), url=str(path)))
        assert len(entries) == len(requirement_lines(path)), path
        for entry in entries:
            assert list(entry) == ["name", "specifier", "marker"]


def test_legacy_ai_stack_constraints() -> None:
    path = SAMPLES / "e2e-ai-stack-legacy" / "constraints.txt"
    data = path.read_bytes()
    assert data.count(b"\n") == 183  # 180 requirements + 3 "# NOTE" comment lines
    entries = json.loads(constraints_to_json(data, url=str(path)))
    assert len(entries) == 180
    assert entries[0] == {"name": "absl-py", "specifier": "==2.1.0", "marker": None}
    assert {"name": "python-dateutil", "specifier": "==2.9.0.post0", "marker": None} in entries
    assert {"name": "vllm-flash-attn", "specifier": "==2.5.9.post1", "marker": None} in entries
    numpy = next(e for e in entries if e["name"] == "numpy")
    assert numpy["specifier"] == "==1.26.4"
    assert [e["name"] for e in entries] == [
        line.split("==")[0].lower() for line in requirement_lines(path)
    ]
    assert all(e["marker"] is None and e["specifier"].startswith("==") for e in entries)


def test_constraints_exact_compact_output() -> None:
    data = b"# header\n\nFlask_SQLAlchemy==3.1.1  # pinned\nzope.interface == 7.0\n"
    assert constraints_to_json(data, url=URL) == (
        '[{"name":"flask-sqlalchemy","specifier":"==3.1.1","marker":null},'
        '{"name":"zope-interface","specifier":"==7.0","marker":null}]'
    )


def test_constraints_multi_clause_specifier_is_sorted_normal_form() -> None:
    path = SAMPLES / "flask-variant" / "merged-constraints.txt"
    entries = json.loads(constraints_to_json(path.read_bytes(), url=str(path)))
    assert entries == [
        {"name": "click", "specifier": "<8.3", "marker": None},
        {"name": "werkzeug", "specifier": "<3.2,>=3.1", "marker": None},
    ]


def test_constraints_markers_preserved() -> None:
    data = (
        b'numpy==1.26.4 ; python_version < "3.12"\n'
        b"numpy==2.1.0; python_version>='3.12' and sys_platform == 'linux'  # new\n"
        b'triton==3.0.0 ; platform_machine == "x86_64"\n'
    )
    entries = json.loads(constraints_to_json(data, url=URL))
    assert [e["marker"] for e in entries] == [
        'python_version < "3.12"',
        'python_version >= "3.12" and sys_platform == "linux"',
        'platform_machine == "x86_64"',
    ]
    assert [e["specifier"] for e in entries] == ["==1.26.4", "==2.1.0", "==3.0.0"]


def test_constraints_crlf_bom_extras_bare_name() -> None:
    data = b"\xef\xbb\xbfTorch[cuda]==2.4.0\r\n\r\n   \t\r\nsetuptools\r\n# end"
    assert json.loads(constraints_to_json(data, url=URL)) == [
        {"name": "torch", "specifier": "==2.4.0", "marker": None},
        {"name": "setuptools", "specifier": "", "marker": None},
    ]


def test_constraints_empty_file() -> None:
    assert constraints_to_json(b"", url=URL) == "[]"
    assert constraints_to_json(b"# nothing\n\n", url=URL) == "[]"


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("-c other.txt", "'-c other.txt'"),
        ("torch=2.4.0", "'torch=2.4.0'"),
        ("torch==2.4.0#frag", "'torch==2.4.0#frag'"),
        ("==1.0", "'==1.0'"),
        ("torch==2.4.0 \\", "'torch==2.4.0 \\\\'"),
        ("bad\x00name==1", "'bad\\x00name==1'"),
        ("a==1 ; python_version <", "'a==1 ; python_version <'"),
    ],
)
def test_constraints_bad_line_names_url_line_number_and_text(line: str, shown: str) -> None:
    data = f"ok==1.0\n# comment\n\n{line}\nother==2\n".encode()
    err = fatal(constraints_to_json, data, url=URL, release="rhai/3.0.0")
    assert "line 4:" in str(err) and shown in str(err)
    assert err.url == URL and err.release == "rhai/3.0.0"


def test_constraints_direct_url_is_fatal() -> None:
    err = fatal(constraints_to_json, b"a==1\ntorch @ https://x.example/t.whl\n", url=URL)
    assert "line 2:" in str(err) and "direct URL" in str(err)


def test_constraints_invalid_utf8_byte_offset() -> None:
    err = fatal(constraints_to_json, b"abc==1.0\nd\xe9f==2\n", url=URL)
    assert "invalid UTF-8 at byte 10" in str(err)


# --- wheels.json -----------------------------------------------------------------------


def wheel(filename: str, **over: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "filename": filename,
        "hashes": {"sha256": SHA},
        "size": 812345678,
        "upload-time": "2026-09-30T22:41:10Z",
    }
    entry.update(over)
    return entry


def wheels_json(*entries: Any) -> bytes:
    return json.dumps({"files": list(entries)}).encode()


def test_wheels_protocol_example() -> None:
    data = wheels_json(wheel("torch-2.4.0-0-cp311-cp311-linux_x86_64.whl"))
    assert wheels_to_drops(data, url=URL) == (
        Drop(
            filename="torch-2.4.0-0-cp311-cp311-linux_x86_64.whl",
            name="torch",
            version="2.4.0",
            build_tag="0",
            python_tag="cp311",
            abi_tag="cp311",
            platform_tag="linux_x86_64",
            sha256=SHA,
            size=812345678,
            uploaded_at=datetime(2026, 9, 30, 22, 41, 10, tzinfo=UTC),
        ),
    )


def test_wheels_fields_from_filename() -> None:
    data = wheels_json(
        wheel("Foo_Bar-1.0.0.post0-py2.py3-none-any.whl", hashes={"sha256": SHA.upper()}),
        wheel(
            "numpy-1.26.4-1abc-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            **{"upload-time": None},
        ),
        {"filename": "a-1-py3-none-any.whl", "hashes": {"sha256": SHA, "md5": "x"}, "size": 0},
    )
    first, second, third = wheels_to_drops(data, url=URL)
    assert (first.name, first.version, first.build_tag) == ("foo-bar", "1.0.0.post0", None)
    assert (first.python_tag, first.abi_tag, first.platform_tag) == ("py2.py3", "none", "any")
    assert first.sha256 == SHA
    assert (second.name, second.build_tag, second.uploaded_at) == ("numpy", "1abc", None)
    assert second.platform_tag == "manylinux_2_17_x86_64.manylinux2014_x86_64"
    assert (third.size, third.uploaded_at, third.version) == (0, None, "1")


def test_wheels_empty_list() -> None:
    assert wheels_to_drops(b'{"files": []}', url=URL) == ()


def test_wheels_from_real_build_sequence_summaries() -> None:
    names = set()
    for path in samples("**/build-sequence-summary.json"):
        for item in json.loads(path.read_text()):
            names.add(item["wheel_filename"].rsplit("/", 1)[-1])
    drops = wheels_to_drops(wheels_json(*(wheel(n) for n in sorted(names))), url=URL)
    assert len(drops) == len(names) > 50
    by_file = {d.filename: d for d in drops}
    # flask-variant's pre-built markupsafe came from PyPI: no build tag, compressed platforms
    prebuilt = by_file.pop(
        "markupsafe-3.0.4-cp312-cp312-manylinux2014_x86_64.manylinux_2_17_x86_64"
        ".manylinux_2_28_x86_64.whl"
    )
    assert (prebuilt.build_tag, prebuilt.abi_tag) == (None, "cp312")
    assert prebuilt.platform_tag == (
        "manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64"
    )
    assert all(d.build_tag == "0" for d in by_file.values())
    assert by_file["flit_core-3.12.0-0-py3-none-any.whl"].name == "flit-core"
    assert by_file["pbr-7.1.3-0-py2.py3-none-any.whl"].python_tag == "py2.py3"


@pytest.mark.parametrize(
    "filename",
    [
        "torch-2.4.0.tar.gz",
        "torch-2.4.0-py3-none-any.WHL",
        "torch-py3-none-any.whl",
        "torch-2.4.0-0-x-py3-none-any.whl",
        "torch-not_a.version-py3-none-any.whl",
        "torch-2.4.0-x1-py3-none-any.whl",
        "tor ch-2.4.0-py3-none-any.whl",
        "torch-2.4.0-py3--any.whl",
        "torch-2.4.0-py3-none-linux..x86.whl",
        ".whl",
    ],
)
def test_wheels_invalid_filename(filename: str) -> None:
    err = fatal(
        wheels_to_drops,
        wheels_json(wheel("ok-1-py3-none-any.whl"), wheel(filename)),
        url=URL,
        release="rhai/3.0.0",
    )
    assert "files[1]" in str(err) and repr(filename) in str(err)
    assert "invalid wheel filename" in str(err)
    assert err.url == URL and err.release == "rhai/3.0.0"


@pytest.mark.parametrize(
    "filename",
    [
        "../evil-1.0-py3-none-any.whl",
        "dir/evil-1.0-py3-none-any.whl",
        "evil-1.0-py3-none-any\\x.whl",
        "evil-1.0-py3-none-any\x00.whl",
        "evil-1.0-py3-none-an\ny.whl",
        "evil-1.0-py3-none-a\ud800.whl",
    ],
)
def test_wheels_hostile_filename(filename: str) -> None:
    err = fatal(wheels_to_drops, wheels_json(wheel(filename)), url=URL)
    assert "files[0]" in str(err)


@pytest.mark.parametrize(
    ("over", "expect"),
    [
        ({"hashes": {"sha256": SHA[:-1]}}, "sha256 must be 64 hex digits"),
        ({"hashes": {"sha256": SHA + "0"}}, "sha256 must be 64 hex digits"),
        ({"hashes": {"sha256": "g" + SHA[1:]}}, "sha256 must be 64 hex digits"),
        ({"hashes": {"sha256": " " + SHA[1:]}}, "sha256 must be 64 hex digits"),
        ({"hashes": {"sha256": 12}}, "must be string, got integer"),
        ({"hashes": {"md5": "x"}}, "missing key 'sha256'"),
        ({"hashes": [SHA]}, "must be object, got array"),
        ({"size": -1}, "size must be between 0"),
        ({"size": 2**63}, "size must be between 0"),
        ({"size": 1.5}, "must be integer, got number"),
        ({"size": True}, "must be integer, got boolean"),
        ({"size": "12"}, "must be integer, got string"),
        ({"size": None}, "must be integer, got null"),
        ({"upload-time": "2026-09-30 22:41"}, "upload-time is not an RFC 3339"),
        ({"upload-time": 1727736070}, "must be string, got integer"),
    ],
)
def test_wheels_bad_fields_name_url_filename_problem(over: dict[str, Any], expect: str) -> None:
    filename = "torch-2.4.0-0-cp311-cp311-linux_x86_64.whl"
    err = fatal(wheels_to_drops, wheels_json(wheel(filename, **over)), url=URL)
    assert expect in str(err) and filename in str(err) and URL in str(err)


@pytest.mark.parametrize("key", ["filename", "hashes", "size"])
def test_wheels_missing_key(key: str) -> None:
    entry = wheel("a-1-py3-none-any.whl")
    del entry[key]
    assert f"missing key {key!r} in files[0]" in str(
        fatal(wheels_to_drops, wheels_json(entry), url=URL)
    )


@pytest.mark.parametrize(
    ("data", "expect"),
    [
        (b"{}", "missing key 'files'"),
        (b"[]", "must be a JSON object, got array"),
        (b'{"files": {}}', "must be array, got object"),
        (b'{"files": ["a-1-py3-none-any.whl"]}', "files[0] must be a JSON object, got string"),
        (b'{"files": [\n  {"filename": "a-1-py3-none-any.whl",}\n]}', "line 2 column 39"),
        (b'{"files": [{"filename": "\xff"}]}', "invalid UTF-8 at byte 25"),
        (b'{"files": [{"size": NaN}]}', "NaN is not valid JSON"),
    ],
)
def test_wheels_bad_document(data: bytes, expect: str) -> None:
    assert expect in str(fatal(wheels_to_drops, data, url=URL))


def test_wheels_duplicate_filename() -> None:
    name = "a-1-py3-none-any.whl"
    data = wheels_json(wheel(name), wheel("b-1-py3-none-any.whl"), wheel(name, size=1))
    err = str(fatal(wheels_to_drops, data, url=URL))
    assert "files[2]" in err and "duplicate wheel filename" in err and name in err


# --- graph.json / build-sequence-summary.json ------------------------------------------


def test_every_sample_json_document_kept_as_is() -> None:
    kinds: list[tuple[str, type]] = [
        ("**/graph*.json", dict),
        ("**/old_graph.json", dict),
        ("**/build-sequence-summary.json", list),
        ("**/build-order.json", list),
    ]
    for pattern, expect in kinds:
        for path in samples(pattern):
            data = path.read_bytes()
            text = json_document_text(data, url=str(path), expect=expect)
            assert text == data.decode()
            assert isinstance(json.loads(text), expect)


@pytest.mark.parametrize(
    ("pattern", "expect", "message"),
    [
        ("flask/graph.json", list, "top-level JSON must be array, got object"),
        ("flask/build-sequence-summary.json", dict, "top-level JSON must be object, got array"),
    ],
)
def test_json_document_wrong_top_level_type(pattern: str, expect: type, message: str) -> None:
    data = (SAMPLES / pattern).read_bytes()
    err = fatal(json_document_text, data, url=URL, release="rhai/3.0.0", expect=expect)
    assert message in str(err) and err.url == URL and err.release == "rhai/3.0.0"


@pytest.mark.parametrize("data", [b'"text"', b"3", b"null"])
def test_json_document_scalar_top_level(data: bytes) -> None:
    assert "top-level JSON must be object" in str(
        fatal(json_document_text, data, url=URL, expect=dict)
    )


def test_json_document_truncated_sample_gives_line_and_column() -> None:
    data = (SAMPLES / "webstack" / "graph.json").read_bytes()
    cut = data[: len(data) // 2]
    err = str(fatal(json_document_text, cut, url=URL, expect=dict))
    lines = cut.count(b"\n") + 1
    assert f"line {lines} column" in err


def test_json_document_bom_dropped_and_nul_escape_kept() -> None:
    data = b'\xef\xbb\xbf{"a": "x\\u0000y"}\n'
    assert json_document_text(data, url=URL, expect=dict) == '{"a": "x\\u0000y"}\n'


def test_json_document_invalid_utf8_and_nan() -> None:
    assert "invalid UTF-8 at byte 3" in str(
        fatal(json_document_text, b'["a\x80"]', url=URL, expect=list)
    )
    assert "Infinity" in str(fatal(json_document_text, b"[Infinity]", url=URL, expect=list))


def test_a_wheel_size_beyond_64_bits_gets_the_reference_message() -> None:
    """A size past 64 bits is refused with the reference parser's message."""
    entry = {"filename": "a-1-py3-none-any.whl", "hashes": {"sha256": "0" * 64}, "size": 0}
    body = json.dumps({"files": [entry]}).replace('"size": 0', '"size": ' + "1" + "0" * 30)
    message = str(fatal(wheels_to_drops, body.encode(), url=URL))
    assert f"size must be between 0 and {2**63 - 1}, got 1{'0' * 30}" in message


@hypothesis.given(st.datetimes(timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0)))
@hypothesis.settings(max_examples=200, deadline=None)
def test_the_quick_upload_time_path_reads_what_parse_timestamp_reads(when: datetime) -> None:
    w = when
    text = f"{w.year:04d}-{w.month:02d}-{w.day:02d}T{w.hour:02d}:{w.minute:02d}:{w.second:02d}Z"
    entry = {"filename": "a-1-py3-none-any.whl", "hashes": {"sha256": "0" * 64}, "size": 1}
    body = json.dumps({"files": [{**entry, "upload-time": text}]}).encode()
    (drop,) = wheels_to_drops(body, url=URL)
    assert drop.uploaded_at == parse_timestamp(text, field="t") == when
    assert drop.uploaded_at is not None and drop.uploaded_at.utcoffset() == timedelta(0)


_ENTRY_VALUES = {
    "filename": st.sampled_from(
        [
            "pkg-1.0-py3-none-any.whl",
            "Pkg_Two-2.0RC1-1abc-cp311-cp311-manylinux_2_17_x86_64.whl",
            "pydantic-0.18-py36+-none-any.whl",
            "bad name-1.0-py3-none-any.whl",
            "dir/pkg-1.0-py3-none-any.whl",
            "pkg-1.0-py3-none-any.whl\x01",
            "pkg-1.0-py3-none-any.tar.gz",
        ]
    ),
    "hashes": st.one_of(
        st.just({"sha256": "AB" * 32}),
        st.just({"sha256": "ab" * 32}),
        st.just({"sha256": "ab" * 31}),
        st.just({"md5": "x"}),
        st.just({"sha256": 5}),
        st.just([]),
    ),
    "size": st.one_of(st.integers(-2, 2**63 + 1), st.just(True), st.just(1.5), st.just("1")),
    "upload-time": st.sampled_from(
        [
            None,
            "2026-01-07T17:12:30Z",
            "2026-01-07T17:12:30.250Z",
            "2026-01-07T18:12:30+01:00",
            "2026-01-07 17:12:30z",
            "2026-13-07T17:12:30Z",
            "yesterday",
            1234,
        ]
    ),
    "yanked": st.sampled_from([None, True, False, "broken", "bad\x00", 0]),
    "requires-python": st.sampled_from([None, ">=3.9", ">=3.9\x07", 3]),
    "url": st.just("https://example.org/x.whl"),
}


@hypothesis.given(
    st.lists(
        st.fixed_dictionaries(
            {"filename": _ENTRY_VALUES["filename"]},
            optional={k: v for k, v in _ENTRY_VALUES.items() if k != "filename"},
        ),
        min_size=1,
        max_size=4,
        unique_by=lambda e: e["filename"],
    )
)
@hypothesis.settings(max_examples=500, deadline=None)
def test_wheels_short_path_agrees_with_the_checked_path(entries: list[dict[str, object]]) -> None:
    """A known wheel name takes a short way through wheels.json: the same drops and the
    same errors as the first reading, which checked every field."""
    import json

    from etl.source import wheels

    data = json.dumps({"files": entries}).encode()

    def outcome() -> object:
        try:
            return wheels_to_drops(data, url=URL)
        except FatalFetchError as exc:
            return str(exc)

    wheels._GOOD_NAMES.clear()
    first = outcome()  # every name is new: checked field by field
    checked = [
        wheels._checked_drop(e, i, url=URL, release=None)
        for i, e in enumerate(entries)
        if isinstance(first, tuple)
    ]
    assert outcome() == first  # the names now known
    if isinstance(first, tuple):
        assert list(first) == checked
