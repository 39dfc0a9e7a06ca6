"""Two distributions (issue 18): the product (biztalk-dr, include/) and the SQL Server stand-in with the drill
(biztalk-dr-standin, standin/). The product's wheel and image never hold the stand-in, and the stand-in's own
dependencies (sqlglot) are not the product's."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from setuptools import find_namespace_packages

from tests.conftest import PRODUCT_ROOTS, ROOT

PRODUCT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
STANDIN = tomllib.loads((ROOT / "standin" / "pyproject.toml").read_text(encoding="utf-8"))


def _packages(project: dict, root: Path) -> set[str]:
    find = project["tool"]["setuptools"]["packages"]["find"]
    found: set[str] = set()
    for where in find["where"]:
        found |= set(find_namespace_packages(where=str(root / where), include=find["include"]))
    return {name for name in found if "egg-info" not in name and "__pycache__" not in name}


def _requires(project: dict) -> set[str]:
    return {re.split(r"[<>=!~ ;\[]", spec, maxsplit=1)[0].lower() for spec in project["project"]["dependencies"]}


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_products_distribution_holds_the_library_and_never_the_standin():
    product = _packages(PRODUCT, ROOT)
    on_disk = {".".join(p.relative_to(ROOT / "include").parent.parts)
               for p in (ROOT / "include" / "biztalk_dr").rglob("__init__.py")}
    assert on_disk <= product, f"library packages the product's wheel would leave out: {sorted(on_disk - product)}"
    assert not {name for name in product if name.startswith("sqlserver_standin")}


def test_the_standins_distribution_holds_the_standin_and_the_drill():
    assert _packages(STANDIN, ROOT / "standin") >= {"sqlserver_standin", "sqlserver_standin.tds"}
    assert STANDIN["project"]["entry-points"]["biztalk_dr.drill"] == {"standin": "sqlserver_standin.drill"}
    assert "biztalk_dr.drill" not in PRODUCT["project"].get("entry-points", {})
    assert "biztalk-dr-standin" in STANDIN["project"]["scripts"]
    assert "biztalk-dr-standin" not in PRODUCT["project"]["scripts"]


def test_sqlglot_is_the_standins_dependency_not_the_products():
    assert "sqlglot" in _requires(STANDIN)
    assert "sqlglot" not in _requires(PRODUCT)
    pinned_for_production = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert not re.search(r"^sqlglot\b", pinned_for_production, re.M), "requirements.txt pins the product's image"
    product_files = [p for root in PRODUCT_ROOTS for p in (ROOT / root).rglob("*.py")]
    assert not [str(p.relative_to(ROOT)) for p in product_files if "sqlglot" in _imported_roots(p)]


def test_the_product_image_copies_the_library_not_the_standin():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    copied = [line for line in dockerfile.splitlines() if line.startswith("COPY")]
    assert any(" include " in f"{line} " for line in copied)
    assert not [line for line in copied if "standin" in line]
