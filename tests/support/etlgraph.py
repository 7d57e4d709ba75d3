"""A static picture of the ``etl`` package for the architecture test: modules, imports,
calls, raises and classes, read with ``ast`` (nothing in ``etl`` is imported).

Modules are found on disk (``etl/**/*.py``), so the picture follows the code wherever it
moves.  Imports are resolved generically: absolute and relative, ``from pkg import sub``
naming a submodule, a submodule import also running its parent packages' ``__init__``,
and imports inside functions (lazy imports run too).  Imports under ``if TYPE_CHECKING:``
are left out: they never run.
"""

from __future__ import annotations

import ast
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "etl"


@dataclass
class Module:
    name: str  # dotted: etl.source.client
    path: Path
    tree: ast.Module
    lines: int
    is_package: bool
    imports: set[str] = field(default_factory=set)  # dotted names as written/resolved
    rel: str = ""  # path relative to the repository

    def __post_init__(self) -> None:
        if not self.rel:
            self.rel = f"{self.name.replace('.', '/')}{'/__init__' if self.is_package else ''}.py"


def _module_name(path: Path, root: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except the bodies of ``if TYPE_CHECKING:`` blocks."""
    todo: deque[ast.AST] = deque([tree])
    while todo:
        node = todo.popleft()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


class EtlGraph:
    def __init__(self, root: Path = ROOT) -> None:
        self.modules: dict[str, Module] = {}
        for path in sorted((root / PACKAGE).rglob("*.py")):
            if "sample_collection" in path.parts:
                continue
            text = path.read_text()
            name, is_package = _module_name(path, root)
            tree = ast.parse(text, filename=str(path))
            rel = path.relative_to(root).as_posix()
            lines = len(text.splitlines())
            self.modules[name] = Module(name, path, tree, lines, is_package, rel=rel)
        for module in self.modules.values():
            module.imports = self._imports_of(module)

    # --- imports -----------------------------------------------------------------------

    def _imports_of(self, module: Module) -> set[str]:
        out: set[str] = set()
        package = module.name if module.is_package else module.name.rpartition(".")[0]
        for node in runtime_nodes(module.tree):
            if isinstance(node, ast.Import):
                out.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = package.split(".")
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                out.add(base)
                for alias in node.names:
                    if f"{base}.{alias.name}" in self.modules:  # a submodule
                        out.add(f"{base}.{alias.name}")
        return out

    def etl_imports(self, module: Module) -> set[str]:
        """The etl modules ``module`` imports at run time by name (lazy imports too, not
        type-only ones): ``from etl.db import ledger`` is ``etl.db.ledger``, not ``etl.db``;
        parent packages that Python runs first are left out (importing a package's child
        is no dependency of the child on its package)."""
        out: set[str] = set()
        for imported in module.imports:
            if imported in self.modules and not any(
                other.startswith(imported + ".") for other in module.imports
            ):
                out.add(imported)
        out.discard(module.name)
        return out

    def private_imports(self, module: Module) -> list[tuple[int, str]]:
        """``(line, "etl.x._name")`` for every private name (``_x``, not ``__x__``) of
        another etl module that ``module`` imports (``from etl.x import _name``) or reaches
        through a module it imported (``x._name`` after ``from etl import x``)."""
        out: list[tuple[int, str]] = []
        package = module.name if module.is_package else module.name.rpartition(".")[0]
        modules_as: dict[str, str] = {}  # local name -> etl module
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in self.modules and alias.asname:
                        modules_as[alias.asname] = alias.name
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - (node.level - 1)] + [base] * bool(base))
                if base != PACKAGE and not base.startswith(PACKAGE + "."):
                    continue
                for alias in node.names:
                    if f"{base}.{alias.name}" in self.modules:
                        modules_as[alias.asname or alias.name] = f"{base}.{alias.name}"
                    elif _private(alias.name) and base != module.name:
                        out.append((node.lineno, f"{base}.{alias.name}"))
        for node in ast.walk(module.tree):
            if (
                isinstance(node, ast.Attribute)
                and _private(node.attr)
                and isinstance(node.value, ast.Name)
                and modules_as.get(node.value.id, module.name) != module.name
            ):
                out.append((node.lineno, f"{modules_as[node.value.id]}.{node.attr}"))
        return sorted(out)

    def cycles(self) -> list[list[str]]:
        """Import cycles among etl modules (:meth:`etl_imports`), each as the modules of one
        strongly connected component, sorted."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        found: list[list[str]] = []

        def visit(name: str) -> None:  # Tarjan's algorithm
            index[name] = low[name] = len(index)
            stack.append(name)
            on_stack.add(name)
            for dep in sorted(self.etl_imports(self.modules[name])):
                if dep not in index:
                    visit(dep)
                    low[name] = min(low[name], low[dep])
                elif dep in on_stack:
                    low[name] = min(low[name], index[dep])
            if low[name] == index[name]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == name:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

        for name in sorted(self.modules):
            if name not in index:
                visit(name)
        return sorted(found)

    def _with_parents(self, name: str) -> Iterator[str]:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            yield ".".join(parts[:i])

    def import_chains(self, start: str) -> dict[str, list[str]]:
        """Every name ``start`` imports at run time, directly or through other etl modules,
        with the chain of etl modules that leads to it (breadth first: a shortest chain)."""
        chains: dict[str, list[str]] = {start: [start]}
        todo = deque([start])
        while todo:
            current = todo.popleft()
            for imported in sorted(self.modules[current].imports):
                for name in self._with_parents(imported):
                    if name in chains:
                        continue
                    chains[name] = [*chains[current], name]
                    if name in self.modules:
                        todo.append(name)
        return chains

    # --- definitions -------------------------------------------------------------------

    @cached_property
    def classes(self) -> dict[str, tuple[Module, ast.ClassDef]]:
        """Every class defined in etl by bare name (names are unique enough in etl)."""
        out: dict[str, tuple[Module, ast.ClassDef]] = {}
        for module in self.modules.values():
            for node in ast.walk(module.tree):
                if isinstance(node, ast.ClassDef):
                    out.setdefault(node.name, (module, node))
        return out


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def dotted(node: ast.expr) -> str:
    """``a.b.c`` for a Name/Attribute chain ("" for anything else)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted(node.value)
        return f"{inner}.{node.attr}" if inner else f"?.{node.attr}"
    if isinstance(node, ast.Call):
        return dotted(node.func) + "()"
    return "?"


def calls(tree: ast.AST) -> Iterator[tuple[ast.Call, str]]:
    """Every call at run time with the dotted name of what is called."""
    for node in runtime_nodes(tree):
        if isinstance(node, ast.Call):
            yield node, dotted(node.func)


#: Functions of these modules touch the file system (``os``: only the ones listed).
_FS_MODULE_CALLS = {
    "os": {
        "open",
        "rename",
        "replace",
        "remove",
        "unlink",
        "rmdir",
        "removedirs",
        "mkdir",
        "makedirs",
        "stat",
        "lstat",
        "listdir",
        "scandir",
        "walk",
        "fsync",
        "link",
        "symlink",
        "chmod",
        "chown",
        "utime",
        "truncate",
        "ftruncate",
        "statvfs",
        "access",
    },
    "os.path": {"exists", "isfile", "isdir", "getsize", "getmtime", "lexists"},
    "shutil": None,  # None: every function
    "fcntl": None,
    "tempfile": None,
    "glob": None,
    "pyarrow.fs": None,
    "sqlite3": {"connect"},
    # a path (not a stream) handed to Parquet reading or writing
    "pyarrow.parquet": {
        "read_metadata",
        "read_schema",
        "ParquetFile",
        "read_table",
        "write_table",
        "ParquetWriter",
        "ParquetDataset",
    },
}
#: Methods of ``pathlib.Path`` that touch the file system (by method name).
_PATH_METHODS = {
    "open", "read_bytes", "read_text", "write_bytes", "write_text", "unlink", "rename",
    "mkdir", "rmdir", "touch", "stat", "lstat", "iterdir", "glob", "rglob", "exists",
    "is_file", "is_dir", "chmod", "symlink_to", "hardlink_to", "samefile",
}  # fmt: skip
#: SQL that makes DuckDB read files itself.
_DUCKDB_FILE_FUNCTIONS = ("read_parquet(", "parquet_scan(", "read_csv(", "read_json(")


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> module it stands for (``import pyarrow.fs as pafs`` -> pafs: pyarrow.fs)."""
    out: dict[str, str] = {}
    for node in runtime_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                out[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return out


#: Attributes that name a path by convention (``claim.path``, ``self.root``, ``spool_dir``).
_PATHY = re.compile(r"(^|_)(path|dir|root|folder)s?$")
_PATH_BUILDERS = {"Path", "pathlib.Path", "PurePath", "PosixPath"}
_PATH_DERIVED = {"with_name", "with_suffix", "with_stem", "joinpath", "resolve", "absolute"}


def _annotated_path(annotation: ast.expr | None) -> bool:
    """``Path`` or ``Path | None`` (not ``Path | IO[bytes]``: that may be a stream)."""
    if annotation is None:
        return False
    kinds = {part.strip() for part in ast.unparse(annotation).split("|")} - {"None"}
    return bool(kinds) and kinds <= {"Path", "pathlib.Path"}


def _path_names(tree: ast.AST) -> set[str]:
    """Names this module annotates as ``Path`` (parameters, annotated assignments) or
    assigns from an evident path expression."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and _annotated_path(node.annotation):
            names.add(node.arg)
        elif (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and _annotated_path(node.annotation)
        ):
            names.add(node.target.id)
    for node in ast.walk(tree):  # one pass of propagation: p = root / "x"
        if isinstance(node, ast.Assign) and _is_path(node.value, names):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _is_path(node: ast.expr, names: set[str]) -> bool:
    """Whether ``node`` evidently evaluates to a ``pathlib`` path (no type inference: the
    forms a reader recognises at a glance)."""
    if isinstance(node, ast.Call):
        func = node.func
        if dotted(func) in _PATH_BUILDERS:
            return True
        return (
            isinstance(func, ast.Attribute)
            and func.attr in _PATH_DERIVED
            and _is_path(func.value, names)
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return _is_path(node.left, names)
    if isinstance(node, ast.Name):
        return node.id in names or bool(_PATHY.search(node.id))
    if isinstance(node, ast.Attribute):
        if node.attr == "parent":
            return _is_path(node.value, names)
        return bool(_PATHY.search(node.attr))
    return False


def _is_path_argument(node: ast.expr, names: set[str]) -> bool:
    """A file name handed to a library: a string literal or f-string, ``str(path)``, a
    path expression."""
    if isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    ):
        return True
    if isinstance(node, ast.Call) and dotted(node.func) in ("str", "os.fspath") and node.args:
        return _is_path(node.args[0], names)
    return _is_path(node, names)


def fs_operations(module: Module) -> list[tuple[int, str]]:
    """``(line, what)`` for every call in ``module`` that touches the file system.

    Module functions (``os.replace``, ``shutil.*``, ``fcntl.*`` ...) always count; methods
    of ``pathlib.Path`` and Parquet readers/writers count when what they act on is evidently
    a path (:func:`_is_path`), so a stream a spool opened, or ``claim.open()``, does not.
    """
    aliases = _aliases(module.tree)
    paths = _path_names(module.tree)
    found: list[tuple[int, str]] = []
    for call, name in calls(module.tree):
        head, _, rest = name.partition(".")
        full = f"{aliases.get(head, head)}.{rest}" if rest else aliases.get(head, head)
        owner, _, func = full.rpartition(".")
        if name == "open" or full in ("io.open", "builtins.open"):
            found.append((call.lineno, "open()"))
        elif owner == "pyarrow.parquet":
            if func in _FS_MODULE_CALLS[owner] and (  # type: ignore[operator]
                call.args and _is_path_argument(call.args[0], paths)
            ):
                found.append((call.lineno, full))
        elif owner in _FS_MODULE_CALLS:
            allowed = _FS_MODULE_CALLS[owner]
            if allowed is None or func in allowed:
                found.append((call.lineno, full))
        elif any(full.startswith(f"{m}.") for m in ("shutil", "fcntl", "tempfile", "pyarrow.fs")):
            found.append((call.lineno, full))
        elif isinstance(call.func, ast.Attribute) and _is_path(call.func.value, paths):
            method = call.func.attr
            if method in _PATH_METHODS or (method == "replace" and len(call.args) == 1):
                found.append((call.lineno, f"Path.{method}"))
    for node in runtime_nodes(module.tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and any(f in node.value for f in _DUCKDB_FILE_FUNCTIONS)
        ):
            found.append((node.lineno, "duckdb read_parquet()"))
    return found
