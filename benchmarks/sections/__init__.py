"""The report's sections: one module each, found by name, run and rendered in ``ORDER``.

A section module defines ``SECTION = Section(...)``:

* ``name``     what ``--only`` selects and the key of its results in ``results.json``;
* ``order``    its place in the run and in the report;
* ``measure``  ``(bench) -> dict`` runs the measurements (JSON-serialisable result);
* ``render``   ``(data, out_dir) -> Rendered``: targets, markdown body, headline numbers
  (``metrics``, shown in the report's before/after table).

Adding a section (say, Celery workers over an S3 spool) is one new module in this package:
nothing else to register.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.mdtable import Target

if TYPE_CHECKING:
    from benchmarks.harness import Bench


@dataclass(frozen=True)
class Metric:
    """A headline number for the before/after table (``better``: which direction wins)."""

    what: str
    value: float
    unit: str
    better: str  # "higher" or "lower"


@dataclass
class Rendered:
    targets: list[Target] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    metrics: dict[str, Metric] = field(default_factory=dict)


@dataclass(frozen=True)
class Section:
    name: str
    order: int
    measure: Callable[[Bench], dict[str, Any]]
    render: Callable[[dict[str, Any], Path], Rendered]


def target_metrics(targets: list[Target]) -> dict[str, Metric]:
    """Every target is a headline number too."""
    return {
        t.key: Metric(t.what, t.measured, t.unit, "higher" if t.op == ">=" else "lower")
        for t in targets
    }


def all_sections() -> list[Section]:
    """Every ``SECTION`` defined by a module of this package, in ``order``."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        section = getattr(module, "SECTION", None)
        if isinstance(section, Section):
            found.append(section)
    return sorted(found, key=lambda s: s.order)
