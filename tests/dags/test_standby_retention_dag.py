"""dr_standby_retention as Airflow runs it (``dag.test()``), on a landing folder as log shipping leaves it: a dry
run by default that deletes nothing, then with ``retention.standby.delete: true`` the files nothing needs go."""

from __future__ import annotations

import pytest

from tests.biztalk_dr.test_standby_retention import SETS, _sets_left, _ship
from tests.conftest import EXAMPLE_CONFIG, ROOT

pytestmark = pytest.mark.airflow


def _group_file(tmp_path, *, delete: bool):
    landing = tmp_path / "landing"
    landing.mkdir(exist_ok=True)
    text = EXAMPLE_CONFIG.read_text().replace("/mnt/dr-landing", str(landing))
    if delete:
        text = text.replace("    delete: false ", "    delete: true  ")
    path = tmp_path / "group.yaml"
    path.write_text(text)
    return path


def _run(monkeypatch, path):
    from airflow.dag_processing.dagbag import DagBag

    from biztalk_dr.ops.config_files import load_config

    monkeypatch.setenv("BIZTALK_DR_CONFIG", str(path))
    bag = DagBag(dag_folder=str(ROOT / "dags" / "dr_standby_retention.py"))
    assert bag.import_errors == {}
    run = bag.dags["dr_standby_retention"].test()
    [ti] = run.get_task_instances()
    return run.state, ti.xcom_pull(task_ids="apply_standby_retention"), load_config()


def test_a_dry_run_by_default_then_the_files_nothing_needs_are_deleted(tmp_path, monkeypatch, probe_dags):
    state, result, cfg = _run(monkeypatch, _group_file(tmp_path, delete=False))
    assert state == "success" and result["would_delete"] == [] and result["kept"] == 0  # an empty landing folder

    _ship(cfg)
    state, result, cfg = _run(monkeypatch, _group_file(tmp_path, delete=False))
    assert state == "success" and result["dry_run"] is True and len(result["would_delete"]) == 3 * 7
    assert _sets_left(cfg) == list(SETS)  # nothing deleted on upgrade

    state, result, cfg = _run(monkeypatch, _group_file(tmp_path, delete=True))
    assert state == "success" and result["dry_run"] is False and len(result["deleted"]) == 3 * 7
    assert _sets_left(cfg) == [4, 5, 6, 7, 8, 9, 10]
