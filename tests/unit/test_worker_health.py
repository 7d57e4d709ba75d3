"""The probes find the node name the worker was given (``-n`` in any of Celery's spellings,
``%h``/``%n``/``%d`` expanded as Celery does)."""

from __future__ import annotations

import socket

import pytest

from etl.workers.health import node_from_args


@pytest.mark.parametrize(
    ("args", "want"),
    [
        ([], None),
        (["-n", "w1@%h"], f"w1@{socket.gethostname()}"),
        (["--hostname", "w1@%h"], f"w1@{socket.gethostname()}"),
        (["--hostname=w2@%n"], f"w2@{socket.gethostname().split('.')[0]}"),
        (["-nw3@box"], "w3@box"),
        (["-c", "1", "-n", "plain"], "celery@plain"),
    ],
)
def test_node_name_from_the_worker_options(args: list[str], want: str | None) -> None:
    assert node_from_args(args) == want
