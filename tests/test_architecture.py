"""The import graph keeps the layers' promises (issue 18), read from the source (every import, also those inside
functions; ``if TYPE_CHECKING:`` blocks left out, they never run):

- the product (include/biztalk_dr, dags, plugins) never imports the SQL Server stand-in (standin/sqlserver_standin):
  the drill and its operator desk live beside the stand-in, and ``biztalk-dr drill`` finds them through the
  ``biztalk_dr.drill`` entry point;
- the product never writes Airflow's internals (``airflow.models``, sessions, the DagBag): operator_desk did, and it
  moved with the drill;
- the pure layer (plans, checks, naming, T-SQL text, advice, errors) imports neither Airflow nor an I/O module, nor
  a module that does, and reads or writes no file;
- Airflow appears only in the Airflow edge of the library (named below and in biztalk_dr/__init__.py) and in
  dags/ and plugins/.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import PRODUCT_ROOTS, ROOT

STANDIN = "sqlserver_standin"

# Plans, checks, naming, T-SQL text: no Airflow, no I/O (biztalk_dr.<name>). A module joins when it holds to that.
PURE = {"advice", "errors", "paths", "tsql", "backup_sets", "retention", "restore_planner", "backup_files.headers",
        "backup_files.xpress_huffman", "log_shipping", "restore_validation"}
# The library's Airflow edge: notifiers, Assets, schedules, task groups, operators, the connection lookup, the CLI's
# logging set-up. (Stage 2 of issue 18 gives them a folder of their own.)
AIRFLOW_EDGE = {"alerts", "assets", "cli", "config_alerts", "failover_approval", "failover_phases", "groups",
                "prerequisites", "schedules", "connections", "task_groups", "task_skips", "windows_step_operator"}
IO_MODULES = {"os", "io", "subprocess", "socket", "shutil", "tempfile", "fcntl", "mmap", "threading", "pyodbc",
              "requests", "httpx", "smtplib", "sqlite3", "biztalk_dr.sqlserver"}
FILE_CALLS = {"open", "read_text", "write_text", "read_bytes", "write_bytes", "iterdir", "glob", "rglob", "unlink",
              "mkdir", "stat", "exists", "is_file", "is_dir"}
AIRFLOW_INTERNALS = ("airflow.models", "airflow.utils.session", "airflow.settings", "airflow.dag_processing",
                     "airflow.jobs", "sqlalchemy")


@dataclass
class Module:
    name: str  # dotted: biztalk_dr.tsql, dags.dr_failover
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


def test_the_graph_is_read(graph):
    assert {"biztalk_dr.tsql", "biztalk_dr.cli", "dags.dr_failover", "plugins.biztalk_dr_config_watch"} <= set(graph)
    assert "biztalk_dr.tsql" in graph["biztalk_dr.shipped_files"].imports  # `from biztalk_dr import tsql`


def test_the_product_never_imports_the_standin(graph):
    offenders = sorted(f"{m.path.relative_to(ROOT)} imports {i}" for m in graph.values() for i in m.imports
                       if _top(i) == STANDIN)
    assert not offenders, offenders


def test_the_product_never_writes_airflow_internals(graph):
    offenders = sorted(f"{m.path.relative_to(ROOT)} imports {i}" for m in graph.values() for i in m.imports
                       if i.startswith(AIRFLOW_INTERNALS))
    assert not offenders, offenders


@pytest.mark.parametrize("name", sorted(PURE))
def test_the_pure_layer_imports_no_airflow_and_no_io(graph, name):
    module = f"biztalk_dr.{name}"
    reached = _closure(graph, module)
    assert not {i for i in reached if _top(i) == "airflow"}, f"{module} reaches Airflow"
    assert not {i for i in reached if i in IO_MODULES or _top(i) in IO_MODULES}, (
        f"{module} reaches I/O: {sorted(i for i in reached if i in IO_MODULES or _top(i) in IO_MODULES)}")
    assert not {i for i in reached if _top(i) == STANDIN}
    touching = [c for r in {module, *reached} if r in graph for c in graph[r].file_calls]
    assert not touching, touching


def test_airflow_appears_only_in_the_airflow_edge_dags_and_plugins(graph):
    importing = {m.name for m in graph.values() if any(_top(i) == "airflow" for i in m.imports)}
    library = {n.removeprefix("biztalk_dr.") for n in importing if n.startswith("biztalk_dr.")}
    library = {n.split(".")[0] if n.startswith("cli") else n for n in library}
    assert library <= AIRFLOW_EDGE, f"Airflow outside the edge: {sorted(library - AIRFLOW_EDGE)}"
    init = (ROOT / "include" / "biztalk_dr" / "__init__.py").read_text(encoding="utf-8")
    assert all(f"``{n}``" in init for n in AIRFLOW_EDGE), "biztalk_dr/__init__.py names the Airflow edge"


def test_a_contract_fails_on_an_offender(tmp_path):
    """The checks can fail: a stand-in import inside a function, an I/O import and a file read are all seen."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f(p):\n    from sqlserver_standin.launcher import start_standin\n    import os\n"
                   "    return p.read_text()\n")
    module = _module("biztalk_dr.bad", bad)
    assert {"sqlserver_standin.launcher", "os"} <= module.imports
    assert module.file_calls == ["bad.py:4 read_text()"]
