"""The import graph keeps the layers' promises (issue 18), read from the source (every import, also those inside
functions; ``if TYPE_CHECKING:`` blocks left out, they never run). The library's folders are its layers:

- ``biztalk_dr/domain``: plans, checks, naming, T-SQL text, advice, errors, the group file's schema. It imports
  neither Airflow nor an I/O module, nor a module that does, and reads or writes no file;
- ``biztalk_dr/ops``: SQL Server and file effects. No Airflow; it reaches the edge in two named places only, lazily:
  the Airflow connection behind ``SqlServer`` and the group whose DAG runs now behind the group's file;
- ``biztalk_dr/edge``: notifiers, Assets, schedules, task groups, operators, connections: with ``cli``, ``dags/``
  and ``plugins/`` the only code that imports Airflow;
- ``backup_files`` (the backup-file reader, a format library: its parsing is pure) and ``cli`` (the command line).

The layers import downwards only (edge -> ops -> domain). The product (include/biztalk_dr, dags, plugins) never
imports the SQL Server stand-in (standin/sqlserver_standin, a distribution of its own): the drill and its operator
desk live beside the stand-in, and ``biztalk-dr drill`` finds them through the ``biztalk_dr.drill`` entry point. The
product never writes Airflow's internals (``airflow.models``, sessions, the DagBag).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import PRODUCT_ROOTS, ROOT

STANDIN = "sqlserver_standin"
LIBRARY = ROOT / "include" / "biztalk_dr"
LAYERS = ("domain", "ops", "edge")
PACKAGES = ("backup_files", "cli")  # the backup-file format library; the command line
# pure parts outside domain/: the backup-file format's parsing
PURE = sorted({f"domain.{p.stem}" for p in (LIBRARY / "domain").glob("*.py") if p.stem != "__init__"}
              | {"backup_files.headers", "backup_files.xpress_huffman"})
# the two places an operation reaches the edge, lazily and by name
OPS_TO_EDGE = {("biztalk_dr.ops.sqlserver", "biztalk_dr.edge.connections"),
               ("biztalk_dr.ops.config_files", "biztalk_dr.edge.groups")}
# what a layer may import from the library, besides itself
BELOW = {"domain": {"backup_files"}, "backup_files": {"domain"}, "ops": {"domain", "backup_files"},
         "edge": {"domain", "ops", "backup_files"}, "cli": {"domain", "ops", "edge", "backup_files"}}
IO_MODULES = {"os", "io", "subprocess", "socket", "shutil", "tempfile", "fcntl", "mmap", "threading", "pyodbc",
              "requests", "httpx", "smtplib", "sqlite3", "biztalk_dr.ops.sqlserver"}
FILE_CALLS = {"open", "read_text", "write_text", "read_bytes", "write_bytes", "iterdir", "glob", "rglob", "unlink",
              "mkdir", "stat", "exists", "is_file", "is_dir"}
AIRFLOW_INTERNALS = ("airflow.models", "airflow.utils.session", "airflow.settings", "airflow.dag_processing",
                     "airflow.jobs", "sqlalchemy")


@dataclass
class Module:
    name: str  # dotted: biztalk_dr.domain.tsql, dags.dr_failover
    path: Path
    imports: set[str] = field(default_factory=set)
    file_calls: list[str] = field(default_factory=list)


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name | ast.Attribute) and "TYPE_CHECKING" in ast.unparse(node.test)


def _module(name: str, path: Path) -> Module:
    module = Module(name, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            module.imports |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            module.imports.add(base)
            module.imports |= {f"{base}.{a.name}" for a in node.names}  # `from biztalk_dr import tsql`
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if called in FILE_CALLS:
                module.file_calls.append(f"{_shown(path)}:{node.lineno} {called}()")
            if called in ("import_module", "__import__") and STANDIN in ast.unparse(node):
                module.imports.add(STANDIN)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return module


def _modules() -> dict[str, Module]:
    found = {}
    for root in PRODUCT_ROOTS:
        base = ROOT / root
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(ROOT / "include" if root.startswith("include/") else ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            found[".".join(parts)] = _module(".".join(parts), path)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, Module]:
    return _modules()


def _closure(graph: dict[str, Module], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through the product's modules."""
    seen, todo = set(), [start]
    while todo:
        for name in graph[todo.pop()].imports:
            if name not in seen:
                seen.add(name)
                if name in graph:
                    todo.append(name)
    return seen


def _top(name: str) -> str:
    return name.split(".")[0]


def _layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if parts[0] == "biztalk_dr" and len(parts) > 1 else None


def upward_imports(graph: dict[str, Module]) -> list[str]:
    """Imports from a layer to one above it (or beside it: ops and edge each stand alone), but OPS_TO_EDGE."""
    found = []
    for module in graph.values():
        layer = _layer(module.name)
        for name in module.imports:
            target = _layer(name)
            if layer is None or target is None or target == layer or target in BELOW.get(layer, set()):
                continue
            if any(module.name == a and (name == b or name.startswith(f"{b}.")) for a, b in OPS_TO_EDGE):
                continue
            found.append(f"{_shown(module.path)} ({layer}) imports {name} ({target})")
    return sorted(found)


def test_the_graph_is_read(graph):
    assert {"biztalk_dr.domain.tsql", "biztalk_dr.cli", "dags.dr_failover", "plugins.biztalk_dr_config_watch"} <= set(graph)
    assert "biztalk_dr.domain.tsql" in graph["biztalk_dr.ops.shipped_files"].imports  # `from biztalk_dr.domain import tsql`
    assert len(PURE) > 10


def test_every_module_of_the_library_lives_in_a_layer_folder():
    loose = sorted(p.name for p in LIBRARY.iterdir() if p.suffix == ".py" and p.name != "__init__.py")
    assert not loose, f"modules outside the layer folders ({', '.join(LAYERS)}): {loose}"
    folders = {p.name for p in LIBRARY.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == {*LAYERS, *PACKAGES}, folders
    for layer in LAYERS:
        assert ast.get_docstring(ast.parse((LIBRARY / layer / "__init__.py").read_text(encoding="utf-8"))), layer


def test_the_layers_import_downwards_only(graph):
    assert not upward_imports(graph)


def test_the_product_never_imports_the_standin(graph):
    offenders = sorted(f"{m.path.relative_to(ROOT)} imports {i}" for m in graph.values() for i in m.imports
                       if _top(i) == STANDIN)
    assert not offenders, offenders


def test_the_product_never_writes_airflow_internals(graph):
    offenders = sorted(f"{m.path.relative_to(ROOT)} imports {i}" for m in graph.values() for i in m.imports
                       if i.startswith(AIRFLOW_INTERNALS))
    assert not offenders, offenders


@pytest.mark.parametrize("name", PURE)
def test_the_pure_layer_imports_no_airflow_and_no_io(graph, name):
    module = f"biztalk_dr.{name}"
    reached = _closure(graph, module)
    assert not {i for i in reached if _top(i) == "airflow"}, f"{module} reaches Airflow"
    assert not {i for i in reached if i in IO_MODULES or _top(i) in IO_MODULES}, (
        f"{module} reaches I/O: {sorted(i for i in reached if i in IO_MODULES or _top(i) in IO_MODULES)}")
    assert not {i for i in reached if _top(i) == STANDIN}
    touching = [c for r in {module, *reached} if r in graph for c in graph[r].file_calls]
    assert not touching, touching


def test_airflow_appears_only_in_the_airflow_edge_the_cli_dags_and_plugins(graph):
    importing = {m.name for m in graph.values() if any(_top(i) == "airflow" for i in m.imports)}
    outside = sorted(n for n in importing if _top(n) == "biztalk_dr" and _layer(n) not in ("edge", "cli"))
    assert not outside, f"Airflow outside the edge: {outside}"


def test_a_contract_fails_on_an_offender(tmp_path):
    """The checks can fail: a stand-in import inside a function, an I/O import and a file read are all seen, and
    so is an import against the layers' direction."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f(p):\n    from sqlserver_standin.launcher import start_standin\n    import os\n"
                   "    from biztalk_dr.edge import alerts\n    return p.read_text()\n")
    module = _module("biztalk_dr.domain.bad", bad)
    assert {"sqlserver_standin.launcher", "os"} <= module.imports
    assert module.file_calls == ["bad.py:5 read_text()"]
    assert upward_imports({module.name: module}) == [
        "bad.py (domain) imports biztalk_dr.edge (edge)", "bad.py (domain) imports biztalk_dr.edge.alerts (edge)"]
    assert upward_imports({"m": _module("biztalk_dr.ops.sqlserver", _write(tmp_path / "s.py",
                           "from biztalk_dr.edge.connections import airflow_connector\n"))}) == []
    assert upward_imports({"m": _module("biztalk_dr.ops.other", _write(tmp_path / "o.py",
                           "from biztalk_dr.edge.connections import airflow_connector\n"))})


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
