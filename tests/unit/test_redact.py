"""etl.redact: the one redactor (URLs, free text, database addresses)."""

from __future__ import annotations

import pytest

from etl.redact import redact_database_url, redact_url, scrub, strip_userinfo


def test_strip_userinfo() -> None:
    assert strip_userinfo("https://u:p@h.org:81/a?b#c") == "https://h.org:81/a?b#c"
    assert strip_userinfo("https://h.org/a@b") == "https://h.org/a@b"


def test_redact_url_drops_userinfo_and_secret_params() -> None:
    url = "https://user:pw@h.org/a/b.json?page=2&X-Amz-Signature=abc&token=t0k"
    assert (
        redact_url(url) == "https://h.org/a/b.json?page=2&X-Amz-Signature=REDACTED&token=REDACTED"
    )
    assert redact_url("https://h.org/x?page=2") == "https://h.org/x?page=2"
    assert redact_url("https://h.org/s3cr3t/x", ("s3cr3t",)) == "https://h.org/***/x"


def test_scrub_masks_known_secrets_and_authorization_credentials() -> None:
    assert scrub("a tok/en b tok%2Fen", ("tok/en",)) == "a *** b ***"
    assert scrub("nothing", ("",)) == "nothing"
    line = "send: b'GET / HTTP/1.1\\r\\nAuthorization: Bearer abc.DEF-123_xyz\\r\\n'"
    assert "abc.DEF" not in scrub(line)
    assert "Bearer ***" in scrub(line)
    assert "dXNlcjpwdw==" not in scrub("Authorization: Basic dXNlcjpwdw==")
    assert scrub("a bearer of bad news") == "a bearer of bad news"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://etl:s3cret@db:5432/wheels", "postgresql://etl@db:5432/wheels"),
        (
            "postgresql://db/x?user=etl&password=s3cret&sslmode=require",
            "postgresql://db/x?user=etl&sslmode=require",
        ),
        ("host=db user=etl password=s3cret dbname=w", "host=db user=etl dbname=w"),
        ("host=db password = 's3 cret' dbname=w", "host=db dbname=w"),
        (r"host=db password=s3\ cret dbname=w", "host=db dbname=w"),
        ("host=db dbname=w", "host=db dbname=w"),
    ],
)
def test_redact_database_url(url: str, expected: str) -> None:
    assert redact_database_url(url) == expected


@pytest.mark.parametrize(
    "url",
    ["host=db password=s3cret dbname='unterminated", "host=db password='it''s s3cret' dbname=w"],
)
def test_redact_database_url_never_shows_a_password_of_malformed_conninfo(url: str) -> None:
    assert "s3cret" not in redact_database_url(url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://[::1", "http://[::1"),
        ("http://u:pw@[::1/x", "http://[::1/x"),
        ("http://u:pw@[::1/x?token=abc", "http://[::1/x?REDACTED"),
    ],
)
def test_an_unparsable_url_is_still_redacted_never_an_error(url: str, expected: str) -> None:
    assert redact_url(url) == expected
