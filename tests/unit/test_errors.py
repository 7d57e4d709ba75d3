"""Which errors are retryable is a property of the class tree (``EtlError.retryable``)."""

from __future__ import annotations

import inspect

import pytest

from etl import errors
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
