"""One confirmation rule for every DAG that replaces the standby's databases."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from biztalk_dr.domain.confirmation import confirmation_problem, real_run
from biztalk_dr.ops.config_files import load_config
from tests.conftest import product_files

CFG = load_config(Path(__file__).resolve().parents[2] / "include" / "config" / "example_group.yaml")


@pytest.mark.parametrize("params", [{}, {"dry_run": True}, {"dry_run": True, "confirm_group": "wrong"},
                                    {"dry_run": None}, {"dry_run": 0}, {"dry_run": "no"}])
def test_a_dry_run_needs_no_name_and_only_false_is_real(params):
    assert confirmation_problem(params, CFG, "re-seed") is None and real_run(params) is False


@pytest.mark.parametrize("typed", ["CONTOSO-BTS", " CONTOSO-BTS ", "CONTOSO-BTS\n"])
def test_a_real_run_with_the_name_typed_is_confirmed(typed):
    params = {"dry_run": False, "confirm_group": typed}
    assert confirmation_problem(params, CFG, "re-seed") is None and real_run(params) is True


@pytest.mark.parametrize("typed", ["", None, "contoso-bts", "CONTOSO", "CONTOSO-BTS2"])
def test_a_real_run_without_the_exact_name_is_refused_naming_the_field(typed):
    problem = confirmation_problem({"dry_run": False, "confirm_group": typed}, CFG, "re-seed")
    assert problem == (f"confirm_group: a real re-seed needs the group's name typed exactly ('CONTOSO-BTS'); "
                       f"got {typed or ''!r}. Or run with dry_run first")


def test_no_product_module_but_the_rule_reads_confirm_group():
    """A DAG declares the field (a params key); only biztalk_dr.domain.confirmation compares it."""
    readers = []
    for path in product_files(but=("confirmation.py",)):
        tree = ast.parse(path.read_text())
        keys = {id(k) for node in ast.walk(tree) if isinstance(node, ast.Dict) for k in node.keys}
        readers += [f"{path.name}:{n.lineno}" for n in ast.walk(tree)
                    if isinstance(n, ast.Constant) and n.value == "confirm_group" and id(n) not in keys]
    assert readers == []
