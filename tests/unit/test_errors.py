"""Which errors are retryable is a property of the class tree (``EtlError.retryable``)."""

from __future__ import annotations

import inspect

import pytest

from etl import cli, errors
from etl.errors import EtlError

RETRYABLE = {
    "TransientFetchError",
    "SpoolUnavailableError",
    "TransientLoadError",
    "BrokerError",
}


def _tree() -> list[type[EtlError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, EtlError) and cls.__module__ == errors.__name__
    ]


@pytest.mark.parametrize("cls", _tree(), ids=lambda c: c.__name__)
def test_retryable_is_decided_by_the_class(cls: type[EtlError]) -> None:
    expected = any(base.__name__ in RETRYABLE for base in cls.__mro__)
    assert cls.retryable is expected
    assert cls("x").retryable is expected  # the same for every instance


def test_the_tree_is_what_the_docs_say() -> None:
    names = {cls.__name__ for cls in _tree()}
    assert names >= RETRYABLE
    assert not errors.ConfigError.retryable and not errors.SpoolFullError.retryable
    assert not errors.FatalLoadError.retryable and not errors.SpoolFileError.retryable


#: The documented exit codes (README, ``wheels-etl --help``), by class name: the oracle.
EXIT_BY_NAME = {"ConfigError": 2, "SpoolFullError": 4}


def _documented_exit(cls: type[EtlError]) -> int:
    for base in cls.__mro__:
        if base.__name__ in EXIT_BY_NAME:
            return EXIT_BY_NAME[base.__name__]
    return 3 if any(base.__name__ in RETRYABLE for base in cls.__mro__) else 1


@pytest.mark.parametrize("cls", _tree(), ids=lambda c: c.__name__)
def test_the_exit_code_is_decided_by_the_class(
    cls: type[EtlError], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One map from error to exit code (``EtlError.exit_code``): the command line exits
    with it, and a worker task's error event carries it (``enqueue --wait`` exits with
    the event's code), so the two cannot disagree as ``cli._run`` and
    ``reports.code_of`` could."""
    expected = _documented_exit(cls)
    assert cls("x").exit_code == expected

    def ends_on_it(args: object) -> int:
        raise cls("the error", release="p/1")

    monkeypatch.setattr(cli, "cmd_migrate", ends_on_it)
    assert cli.main(["migrate"]) == expected
    err = capsys.readouterr().err
    assert "release p/1: the error" in err
    assert ("unavailable: " in err) is (expected == 3)
