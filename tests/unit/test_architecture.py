"""The project's import and layering rules, checked on the source with ``ast``.

(a) ``etl.extract`` and everything it imports (transitively, within etl) never import
psycopg; (b) ``etl.load`` and its imports never import requests (both also checked at run
time, in a fresh interpreter); (c) only the spool
(``etl/spool.py``, ``etl/spooling/store/``) touches storage: other modules make no file-system
calls, except the allowlisted ones, each with its reason; (d) only ``etl/load.py`` opens
database transactions; (e) every exception class in etl derives from ``EtlError`` and
library code raises no builtin exception except the programming errors listed; (f) only
``etl/cli.py`` exits or defines exit codes; (g) no module is over 400 lines; (h) no module
imports another module's private (``_x``) names; (i) no import cycle among etl modules
(lazy imports count: they run too).

The package is read from disk (``tests.support.etlgraph``), so the rules follow modules
wherever they move; only the stage entry points and the allowlists (each with its
reason) are named here.
"""

from __future__ import annotations

import ast
import builtins
import re
import subprocess
import sys
from collections.abc import Iterable
from fnmatch import fnmatch
from pathlib import Path

import pytest

from tests.support.etlgraph import (
    ROOT,
    EtlGraph,
    Module,
    calls,
    dotted,
    fs_operations,
    runtime_nodes,
)

EXTRACT, LOAD, CLI = "etl.extract", "etl.load", "etl.cli"
MAX_LINES = 400

#: The spool: the only modules that may touch spool storage.
SPOOL = ("etl.spool", "etl.spooling.store", "etl.spooling.store.*")

#: Modules that may touch the file system although they are not the spool, and why.
FS_ALLOWED = {
    "etl.db.embedded*": "the embedded Postgres server's own data folder and lock (etl/db/)",
    "etl.source.*": "the source side reads its input: file:// trees and the CA bundle",
    "etl.db.dropshold": "load's scratch space: one file's drops in an unnamed $TMPDIR file",
    "etl.cpus": "the cgroup's CPU quota, read from /sys/fs/cgroup",
    "etl.workers.health": "a worker's registration for its probes, in $TMPDIR, not the spool",
}

#: Builtin exceptions a module may raise as part of a documented internal protocol, and why.
PROTOCOL_RAISES = {
    "etl.spooling.store.*": (
        {"FileNotFoundError"},
        "the store interface reports a missing object as os does; the spool catches it",
    ),
}

#: Builtin exceptions library code may raise: misuse by the caller (programming errors).
PROGRAMMING_ERRORS = {
    "ValueError",
    "TypeError",
    "AssertionError",
    "NotImplementedError",
    "KeyError",  # the mapping protocol (__getitem__)
    "StopIteration",  # the iterator protocol
}
#: Modules allowed to exit the process, and why.
EXIT_ALLOWED = {
    "etl.cli": "the command line: maps errors to exit codes",
    "etl.__main__": "``python -m etl`` shim: exits with cli.main()'s code",
}

#: Modules that may name exit codes without exiting, and why.
EXIT_CODES_ALLOWED = {
    "etl.errors": "the error tree: each class's exit code (EtlError.exit_code), one map",
}

_TX_SQL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|START\s+TRANSACTION|SAVEPOINT)\b", re.I)
_BUILTIN_EXCEPTIONS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}


@pytest.fixture(scope="module")
def graph() -> EtlGraph:
    return EtlGraph()


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch(name, p) for p in patterns)


# --- (a), (b): the two stages' imports ---------------------------------------------------


def _imported(graph: EtlGraph, start: str, package: str) -> list[list[str]]:
    chains = graph.import_chains(start)
    return [c for name, c in chains.items() if name == package or name.startswith(package + ".")]


def test_the_import_walk_sees_through_etl_modules(graph: EtlGraph) -> None:
    """Not vacuous: the walk finds requests behind extract, psycopg behind load, each
    through at least one other etl module."""
    via_source = _imported(graph, EXTRACT, "requests")
    assert via_source and min(len(c) for c in via_source) >= 3, via_source
    assert _imported(graph, LOAD, "psycopg")


def test_extract_never_imports_psycopg(graph: EtlGraph) -> None:
    chains = _imported(graph, EXTRACT, "psycopg")
    assert not chains, "extract imports psycopg: " + " | ".join(" -> ".join(c) for c in chains)


def test_load_never_imports_requests(graph: EtlGraph) -> None:
    chains = _imported(graph, LOAD, "requests")
    assert not chains, "load imports requests: " + " | ".join(" -> ".join(c) for c in chains)


def _loaded_after_import(module: str, packages: tuple[str, ...]) -> list[str]:
    """The ``packages`` in ``sys.modules`` after ``import module`` in a fresh interpreter."""
    code = f"import sys, {module}\nprint(' '.join(p for p in {packages!r} if p in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_at_run_time_the_stages_load_what_they_need() -> None:
    """Not vacuous: each stage's own driver is there."""
    assert _loaded_after_import(LOAD, ("psycopg",)) == ["psycopg"]
    assert _loaded_after_import(EXTRACT, ("requests",)) == ["requests"]


def test_at_run_time_load_does_not_load_requests() -> None:
    assert _loaded_after_import(LOAD, ("requests",)) == []


def test_at_run_time_extract_does_not_load_psycopg() -> None:
    assert _loaded_after_import(EXTRACT, ("psycopg",)) == []


# --- (c): only the spool touches storage --------------------------------------------------


def _fs_offenders(graph: EtlGraph, *, skip: set[str]) -> dict[str, list[str]]:
    out = {}
    for name, module in graph.modules.items():
        if name in skip or _matches(name, SPOOL) or _matches(name, FS_ALLOWED):
            continue
        ops = fs_operations(module)
        if ops:
            out[module.rel] = [f"line {line}: {what}" for line, what in ops]
    return out


def test_the_file_system_scan_finds_the_spools_own_calls(graph: EtlGraph) -> None:
    spool_ops = [
        what
        for name, m in graph.modules.items()
        if _matches(name, SPOOL)
        for _, what in fs_operations(m)
    ]
    assert len(spool_ops) >= 3, spool_ops


def test_only_the_spool_touches_storage(graph: EtlGraph) -> None:
    offenders = _fs_offenders(graph, skip=set())
    assert not offenders, f"file-system calls outside the spool: {offenders}"


# --- (d): only load opens transactions -----------------------------------------------------


def _transactions(module: Module) -> list[str]:
    out = []
    for call, name in calls(module.tree):
        receiver = name.rpartition(".")[0].lower()
        if name.endswith(".transaction") or (
            name.endswith((".commit", ".rollback")) and "conn" in receiver
        ):
            out.append(f"line {call.lineno}: {name}()")
    for node in runtime_nodes(module.tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _TX_SQL.match(node.value)
            and len(node.value) < 80
        ):
            out.append(f"line {node.lineno}: SQL {node.value.strip()[:30]!r}")
    return out


def test_the_transaction_scan_finds_loads_own(graph: EtlGraph) -> None:
    assert _transactions(graph.modules[LOAD])


def test_only_load_opens_transactions(graph: EtlGraph) -> None:
    offenders = {
        m.rel: tx for name, m in graph.modules.items() if name != LOAD and (tx := _transactions(m))
    }
    assert not offenders, f"transactions outside etl/load.py: {offenders}"


# --- (e): one error tree ------------------------------------------------------------------


def _base_names(node: ast.ClassDef) -> list[str]:
    return [dotted(b).rpartition(".")[2] for b in node.bases]


def _derives(graph: EtlGraph, name: str, seen: frozenset[str] = frozenset()) -> str | None:
    """ "EtlError" if class ``name`` derives from it, the builtin exception it derives from
    otherwise, None when it is no exception at all."""
    if name == "EtlError":
        return "EtlError"
    if name in seen:
        return None
    entry = graph.classes.get(name)
    if entry is None:
        return name if name in _BUILTIN_EXCEPTIONS else None
    verdicts = [_derives(graph, b, seen | {name}) for b in _base_names(entry[1])]
    if "EtlError" in verdicts:
        return "EtlError"
    return next((v for v in verdicts if v), None)


def _exception_offenders(graph: EtlGraph) -> dict[str, str]:
    out = {}
    for name, (module, node) in graph.classes.items():
        root = _derives(graph, name)
        if root is not None and root != "EtlError":
            out[name] = f"{module.rel}:{node.lineno} derives from {root}, not EtlError"
    return out


def test_the_error_tree_is_seen(graph: EtlGraph) -> None:
    roots = {n: _derives(graph, n) for n in graph.classes}
    assert sum(1 for r in roots.values() if r == "EtlError") >= 5, roots


def test_every_exception_derives_from_etlerror(graph: EtlGraph) -> None:
    offenders = _exception_offenders(graph)
    assert not offenders, offenders


def _builtin_raises(module: Module) -> list[str]:
    out = []
    for node in runtime_nodes(module.tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = dotted(target)
            if name in _BUILTIN_EXCEPTIONS and name not in PROGRAMMING_ERRORS:
                out.append(f"line {node.lineno}: raise {name}")
    return out


def _raise_offenders(graph: EtlGraph, *, skip: set[str]) -> dict[str, list[str]]:
    out = {}
    for name, module in graph.modules.items():
        if name in EXIT_ALLOWED:
            continue
        allowed = set(skip)
        for pattern, (names, _why) in PROTOCOL_RAISES.items():
            if _matches(name, [pattern]):
                allowed |= names
        found = [r for r in _builtin_raises(module) if r.rpartition(" ")[2] not in allowed]
        if found:
            out[module.rel] = found
    return out


def test_the_raise_scan_sees_builtins() -> None:
    tree = ast.parse("def f():\n    raise OSError('x')\n")
    module = Module("etl.fake", ROOT / "etl" / "fake.py", tree, 2, False)
    assert _builtin_raises(module) == ["line 2: raise OSError"]


def test_library_code_raises_no_builtin_exception(graph: EtlGraph) -> None:
    offenders = _raise_offenders(graph, skip=set())
    assert not offenders, f"builtin exceptions raised outside the error tree: {offenders}"


# --- (f): only the CLI exits -------------------------------------------------------------


def _exits(module: Module, *, codes: bool = True) -> list[str]:
    out = []
    for call, name in calls(module.tree):
        if name in ("sys.exit", "os._exit", "exit", "quit"):
            out.append(f"line {call.lineno}: {name}()")
    for node in runtime_nodes(module.tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if dotted(target) == "SystemExit":
                out.append(f"line {node.lineno}: raise SystemExit")
        if codes and isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = (n for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
            for n in names:  # ``EXIT_A = 1`` and ``EXIT_A, EXIT_B = 1, 2`` alike
                if n.id.startswith("EXIT_"):
                    out.append(f"line {node.lineno}: exit code {n.id}")
    return out


def test_the_exit_scan_finds_the_clis_own(graph: EtlGraph) -> None:
    assert _exits(graph.modules[CLI])


def test_the_exit_scan_finds_codes_named_in_a_tuple(graph: EtlGraph) -> None:
    """etl.errors names its codes in one tuple assignment: the scan sees each name."""
    found = " ".join(_exits(graph.modules["etl.errors"]))
    assert "EXIT_OK" in found and "EXIT_DISK_FULL" in found, found


def test_only_the_cli_exits(graph: EtlGraph) -> None:
    offenders = {
        m.rel: e
        for name, m in graph.modules.items()
        if name not in EXIT_ALLOWED and (e := _exits(m, codes=name not in EXIT_CODES_ALLOWED))
    }
    assert not offenders, f"exits or exit codes outside etl/cli.py: {offenders}"


# --- (g): module size ---------------------------------------------------------------------


def test_no_module_over_the_limit(graph: EtlGraph) -> None:
    long = {m.rel: m.lines for name, m in graph.modules.items() if m.lines > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


# --- (h), (i): private names stay private, no cycles --------------------------------------


def test_no_module_imports_another_modules_private_names(graph: EtlGraph) -> None:
    offenders = {
        m.rel: [f"line {line}: {what}" for line, what in found]
        for m in graph.modules.values()
        if (found := graph.private_imports(m))
    }
    assert not offenders, f"private names imported across modules: {offenders}"


def test_the_import_graph_is_seen(graph: EtlGraph) -> None:
    assert "etl.spool" in graph.etl_imports(graph.modules[LOAD])


def test_no_import_cycle(graph: EtlGraph) -> None:
    cycles = graph.cycles()
    assert not cycles, f"import cycles among etl modules: {cycles}"


# --- the checker itself, on a made-up package ----------------------------------------------


def test_the_private_and_cycle_scans_find_them(tmp_path: Path) -> None:
    graph = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": (
                "from etl.b import _hidden, Public\n"
                "from etl import c\n"
                "def f() -> None:\n"
                "    import etl.b as bee\n"
                "    c._x(); bee._y; c.__name__\n"
            ),
            "b.py": "from etl.c import thing\n_hidden = Public = 1\n",
            "c.py": (
                "def thing() -> None:\n"
                "    from .a import f\n"  # lazy: a cycle all the same
                "def _x() -> None: ...\n"
            ),
            "d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from etl import e\n",
            "e.py": "from etl import d\n",  # d's import is type-only: no cycle
        },
    )
    assert graph.private_imports(graph.modules["etl.a"]) == [
        (1, "etl.b._hidden"),
        (5, "etl.b._y"),
        (5, "etl.c._x"),
    ]
    assert graph.private_imports(graph.modules["etl.b"]) == []
    assert graph.cycles() == [["etl.a", "etl.b", "etl.c"]]


def _write_package(root: Path, files: dict[str, str]) -> EtlGraph:
    for rel, text in files.items():
        path = root / "etl" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return EtlGraph(root)


def test_the_walk_resolves_relative_lazy_parent_and_type_only_imports(tmp_path: Path) -> None:
    graph = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "extract.py": (
                "from typing import TYPE_CHECKING\n"
                "from .sub import helper\n"
                "if TYPE_CHECKING:\n"
                "    import psycopg\n"
            ),
            "sub/__init__.py": "import json\n",
            "sub/helper.py": "def f() -> None:\n    import requests\n",
        },
    )
    chains = graph.import_chains("etl.extract")
    assert chains["requests"] == ["etl.extract", "etl.sub.helper", "requests"]
    assert chains["json"] == ["etl.extract", "etl.sub", "json"]  # the package's __init__ runs
    assert "psycopg" not in chains  # type-only


def test_the_file_system_scan_ignores_look_alikes(tmp_path: Path) -> None:
    graph = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "mod.py": (
                "import os\n"
                "from pathlib import Path\n"
                "import pyarrow.parquet as pq\n"
                "class C:\n"
                "    def open(self) -> None: ...\n"
                "    def go(self, a: str, b: str, claim: C, stream: IO[bytes]) -> None:\n"
                "        os.replace(a, b)\n"
                "        Path(a).unlink()\n"
                "        a.replace('x', 'y')\n"
                "        self.open()\n"
                "        claim.open()\n"
                "        claim.path.stat()\n"
                "        pq.ParquetFile(stream)\n"
                "        pq.ParquetFile(f'{a}.parquet')\n"
                "        os.getpid()\n"
            ),
        },
    )
    assert [what for _, what in fs_operations(graph.modules["etl.mod"])] == [
        "os.replace",
        "Path.unlink",
        "Path.stat",
        "pyarrow.parquet.ParquetFile",
    ]
