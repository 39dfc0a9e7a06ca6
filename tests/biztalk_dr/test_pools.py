"""The standby pools: one per standby instance, one slot, used by every task that RESTOREs on the standby and by
no other, in the format `airflow pools import` reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biztalk_dr.domain.pools import airflow_import_json, pools, standby_pool
from biztalk_dr.ops.config_files import load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "include" / "config" / "example_group.yaml"
RESTORES_ON_THE_STANDBY = {("dr_log_shipping", "restore_standby_set_by_set"), ("dr_standby_reseed", "reseed_standby"),
                           ("dr_failover", "recover_databases.restore_to_mark")}


def _with_standby(tmp_path, instances: dict) -> object:
    import yaml

    data = yaml.safe_load(EXAMPLE.read_text())
    data["sites"]["standby"]["instances"] = instances
    path = tmp_path / "group.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def test_one_pool_of_one_slot_per_standby_instance():
    cfg = load_config(EXAMPLE)
    name = standby_pool(cfg)
    assert name == f"biztalk_dr_standby_{next(iter(cfg.sites.standby.instances.values())).server_name}"
    assert pools(cfg)[name]["slots"] == 1
    assert json.loads(airflow_import_json(cfg)) == {name: {"slots": 1, "description": pools(cfg)[name]["description"],
                                                          "include_deferred": False}}


def test_a_named_instance_gives_a_pool_name_without_a_backslash(tmp_path):
    cfg = _with_standby(tmp_path, {"main": {"conn_id": "biztalk_standby", "server_name": "SQLDR01\\BIZTALK"}})
    assert standby_pool(cfg) == "biztalk_dr_standby_SQLDR01_BIZTALK"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_every_task_that_restores_on_the_standby_runs_in_its_pool_and_no_other_does(dagbag):
    pool = standby_pool(load_config())
    in_pool = {(dag.dag_id, task.task_id) for dag in dagbag.dags.values() for task in dag.tasks if task.pool == pool}
    assert in_pool == RESTORES_ON_THE_STANDBY
