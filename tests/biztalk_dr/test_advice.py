"""Every alert's "What to do" comes from one table; every DAG and task it names exists (parsed from dags/)."""

from __future__ import annotations

import re

import pytest

from biztalk_dr.domain.advice import ADVICE, advice
from biztalk_dr.domain.errors import SQL_ERROR_CLASSES, SqlServerError
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def dags():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags


def test_every_dag_and_task_an_advice_names_exists(dags):
    for key, entry in ADVICE.items():
        named = set(re.findall(r"\bdr_[a-z_]+(?:\.[a-z_]+)*", entry.action))
        assert named <= set(entry.names), f"{key}: names {named - set(entry.names)} without declaring them"
        for name in entry.names:
            dag_id, _, task_id = name.partition(".")
            assert dag_id in dags, f"{key}: no DAG {dag_id}"
            if task_id:
                assert task_id in dags[dag_id].task_ids, f"{key}: {dag_id} has no task {task_id}"
            assert name in entry.action, f"{key}: declares {name} but its action does not name it"
        assert entry.situation and entry.action


def _sql_error_classes() -> set[type[SqlServerError]]:
    return {SqlServerError, *SQL_ERROR_CLASSES.values()}


def test_the_dag_that_does_not_exist_is_named_nowhere():
    by_error = [advice(c.advice_key) for c in _sql_error_classes() if c.advice_key]
    texts = [e.action for e in ADVICE.values()] + by_error
    assert not any("dr_reseed_standby" in t for t in texts)
    for t in by_error:
        assert "has been requested" not in t  # no SQL error number proves that a step was taken


def test_placeholders_are_filled_and_errors_map_to_entries():
    assert "/x" in advice("landing_unwritable", path="/x")
    assert {c.restore_advice_key for c in _sql_error_classes()} <= set(ADVICE)
    assert {c.advice_key for c in _sql_error_classes() if c.advice_key} <= set(ADVICE)


def test_no_advice_is_written_outside_the_advice_table():
    """Every ``advice=...`` in the product (include/, dags/, plugins/) is a call into the table or passes one on,
    never a string of its own; so the DagBag test above covers every advice an alert can show."""
    import ast

    written = []
    for root in ("include/biztalk_dr", "dags", "plugins"):
        for path in (ROOT / root).rglob("*.py"):
            if path.name == "advice.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                values = [k.value for k in node.keywords if k.arg == "advice"] if isinstance(node, ast.Call) else []
                if isinstance(node, ast.Assign) and any(getattr(t, "attr", None) == "advice" for t in node.targets):
                    values.append(node.value)
                written += [f"{path.relative_to(ROOT)}:{v.lineno}" for v in values
                            if isinstance(v, ast.Constant | ast.JoinedStr | ast.BinOp)]
    assert not written, written
