"""Several BizTalk groups in one deployment: which files are groups, the keys their DAG ids and Assets carry, the
group of a DAG, the pools of the deployment. One file stays the simple case (no key anywhere)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from biztalk_dr.domain.errors import ConfigError
from biztalk_dr.domain.pools import deployment_pools, standby_pool
from biztalk_dr.edge.assets import BACKUP_SETS, STANDBY_RESTORED, backup_sets, standby_restored
from biztalk_dr.edge.groups import GroupFile, current_group, dag_groups, group_files, group_of_dag_id
from biztalk_dr.ops.config_files import DEFAULT_CONFIG_PATH, load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "include" / "config" / "example_group.yaml"


def _group(folder: Path, key: str, *, standby: str = "SQLDR01", text: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = EXAMPLE.read_text(encoding="utf-8").replace("CONTOSO-BTS", f"GROUP-{key.upper()}")
    body = body.replace("server_name: SQLDR01", f"server_name: {standby}")
    path = folder / f"{key}.yaml"
    path.write_text(text if text is not None else body, encoding="utf-8")
    return path


def test_one_file_is_the_simple_case_without_a_key(tmp_path):
    path = _group(tmp_path, "prod")
    [only] = group_files(str(path))
    assert only == GroupFile(None, path)
    assert only.dag_id("dr_log_backup") == "dr_log_backup"
    assert backup_sets(only.key) == BACKUP_SETS and standby_restored(only.key) == STANDBY_RESTORED


def test_unset_means_the_default_file():
    assert group_files("") == [GroupFile(None, DEFAULT_CONFIG_PATH)]


def test_a_folder_gives_one_group_per_yaml_file_named_by_the_file(tmp_path):
    b, a = _group(tmp_path, "b_group"), _group(tmp_path, "a-group")
    (tmp_path / "notes.txt").write_text("not a group")
    files = group_files(str(tmp_path))
    assert files == [GroupFile("a-group", a), GroupFile("b_group", b)]
    assert [f.dag_id("dr_log_backup") for f in files] == ["dr_log_backup__a-group", "dr_log_backup__b_group"]


def test_a_folder_of_one_file_still_carries_the_key(tmp_path):
    """Adding a second group later must not rename the first group's DAGs (a renamed DAG loses its history)."""
    _group(tmp_path, "prod")
    assert [f.dag_id("dr_failover") for f in group_files(str(tmp_path))] == ["dr_failover__prod"]


def test_a_list_of_files_and_folders(tmp_path):
    one = _group(tmp_path / "x", "one")
    two = _group(tmp_path / "y", "two")
    three = _group(tmp_path / "y", "three")
    files = group_files(os.pathsep.join([str(one), str(tmp_path / "y")]))
    assert [(f.key, f.path) for f in files] == [("one", one), ("three", three), ("two", two)]


def test_two_files_with_one_key_are_refused_naming_both(tmp_path):
    first, second = _group(tmp_path / "x", "prod"), _group(tmp_path / "y", "prod")
    with pytest.raises(ConfigError) as err:
        group_files(os.pathsep.join([str(first), str(second)]))
    assert str(second) in str(err.value) and str(first) in str(err.value) and "rename" in str(err.value)


@pytest.mark.parametrize("name", ["a__b.yaml", "with space.yaml", "_hidden.yaml"])
def test_a_file_name_that_cannot_be_in_a_dag_id_is_refused(tmp_path, name):
    (tmp_path / name).write_text(EXAMPLE.read_text(encoding="utf-8"))
    with pytest.raises(ConfigError) as err:
        group_files(str(tmp_path))
    assert name in str(err.value) and "rename" in str(err.value)


def test_an_empty_folder_and_a_missing_entry_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"holds no \*\.yaml group file"):
        group_files(str(tmp_path))
    with pytest.raises(ConfigError, match="no such file or folder"):
        group_files(os.pathsep.join([str(_group(tmp_path / "x", "a")), str(tmp_path / "gone")]))


def test_the_group_of_a_dag_id(tmp_path):
    _group(tmp_path, "east")
    _group(tmp_path, "west")
    files = group_files(str(tmp_path))
    assert group_of_dag_id("dr_log_shipping__west", files).key == "west"
    with pytest.raises(ConfigError, match="no group for DAG 'dr_log_shipping__north'"):
        group_of_dag_id("dr_log_shipping__north", files)
    with pytest.raises(ConfigError, match="no group for DAG 'dr_log_shipping'"):
        group_of_dag_id("dr_log_shipping", files)


def test_outside_a_dag_several_groups_have_no_current_one(tmp_path, monkeypatch):
    _group(tmp_path, "east")
    _group(tmp_path, "west")
    monkeypatch.setenv("BIZTALK_DR_CONFIG", str(tmp_path))
    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID", raising=False)
    with pytest.raises(ConfigError, match=r"names 2 groups \(east, west\): outside a DAG, say which one"):
        load_config()
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "dr_log_backup__west")  # what the task runner exports
    assert current_group().key == "west"
    assert load_config().group.name == "GROUP-WEST"


def test_a_dag_being_built_reads_its_own_group(tmp_path, monkeypatch):
    from airflow.sdk import DAG

    _group(tmp_path, "east")
    _group(tmp_path, "west")
    monkeypatch.setenv("BIZTALK_DR_CONFIG", str(tmp_path))
    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID", raising=False)
    with DAG(dag_id="dr_health_check__east", schedule=None, auto_register=False):
        assert load_config().group.name == "GROUP-EAST"


def test_each_group_has_its_own_assets(tmp_path):
    east, west = backup_sets("east"), backup_sets("west")
    assert east.uri == "biztalk-dr://east/primary/backup-sets" and west.uri == "biztalk-dr://west/primary/backup-sets"
    assert east.name != west.name != BACKUP_SETS.name
    assert standby_restored("east").uri == "biztalk-dr://east/standby/restored-sets"


def test_a_broken_group_is_set_apart_and_the_others_load(tmp_path, monkeypatch):
    _group(tmp_path, "good")
    broken = _group(tmp_path, "typo", text=EXAMPLE.read_text(encoding="utf-8").replace(
        "mark_prefix: ", "mark_prefixx: "))
    monkeypatch.setenv("BIZTALK_DR_CONFIG", str(tmp_path))
    good, errors = dag_groups()
    assert [(gf.key, cfg.group.name) for gf, cfg in good] == [("good", "GROUP-GOOD")]
    [(gf, error)] = errors.items()
    assert gf.path == broken
    [line] = {p.line for p in error.problems if "mark_prefixx" in str(p)}
    assert broken.read_text(encoding="utf-8").splitlines()[line - 1].lstrip().startswith("mark_prefixx")


def test_one_group_named_by_a_broken_file_raises_as_before(tmp_path, monkeypatch):
    path = _group(tmp_path, "only", text="group: [\n")
    monkeypatch.setenv("BIZTALK_DR_CONFIG", str(path))
    with pytest.raises(ConfigError, match=str(path)):
        dag_groups()


def test_groups_on_two_standby_instances_restore_in_two_pools(tmp_path):
    """One group's long restore holds only its own standby instance's pool: another group's restores (on another
    instance) and every log backup (no pool of ours) go on."""
    east = load_config(_group(tmp_path, "east", standby="SQLDR01"))
    west = load_config(_group(tmp_path, "west", standby="SQLDR02"))
    same = load_config(_group(tmp_path, "same", standby="SQLDR01"))
    assert standby_pool(east) != standby_pool(west)
    merged = deployment_pools([east, west, same])
    assert sorted(merged) == ["biztalk_dr_standby_SQLDR01", "biztalk_dr_standby_SQLDR02"]
    shared = merged["biztalk_dr_standby_SQLDR01"]["description"]
    assert "GROUP-EAST" in shared and "GROUP-SAME" in shared and "GROUP-WEST" not in shared
    assert merged["biztalk_dr_standby_SQLDR01"]["slots"] == 1


def test_a_tasks_process_builds_only_its_own_group(tmp_path, monkeypatch):
    """The task runner parses the DAG file under Airflow's parsing context (its DAG's id): only that group is built,
    so the module-level values a task reads (its Assets, its servers) are its own group's."""
    from airflow.sdk.definitions.context import _AIRFLOW_PARSING_CONTEXT_DAG_ID  # what the task runner sets

    _group(tmp_path, "east")
    _group(tmp_path, "west")
    monkeypatch.setenv("BIZTALK_DR_CONFIG", str(tmp_path))
    monkeypatch.setenv(_AIRFLOW_PARSING_CONTEXT_DAG_ID, "dr_log_shipping__west")
    good, broken = dag_groups()
    assert [(gf.key, cfg.group.name) for gf, cfg in good] == [("west", "GROUP-WEST")] and broken == {}
    monkeypatch.delenv(_AIRFLOW_PARSING_CONTEXT_DAG_ID)
    assert [gf.key for gf, _cfg in dag_groups()[0]] == ["east", "west"]  # the DAG processor: every group


def test_config_check_and_pools_commands_with_several_groups(tmp_path, monkeypatch, capsys):
    from biztalk_dr.cli import main

    _group(tmp_path, "east", standby="SQLDR01")
    _group(tmp_path, "west", standby="SQLDR02")
    typo = _group(tmp_path, "typo", text=EXAMPLE.read_text(encoding="utf-8").replace("mark_prefix: BTS",
                                                                                      "mark_prefix: BIZTALKMARK"))
    monkeypatch.setenv("BIZTALK_DR_CONFIG", str(tmp_path))
    assert main(["pools", "--airflow-json"]) == 0
    out, err = capsys.readouterr()
    assert sorted(json.loads(out)) == ["biztalk_dr_standby_SQLDR01", "biztalk_dr_standby_SQLDR02"]
    assert "group typo left out" in err and f"{typo}:64" in err
    assert main(["config", "check", str(typo)]) == 2
    assert f"{typo}:64: backup.mark_prefix" in capsys.readouterr().err


def test_a_tasks_callbacks_find_its_group_through_the_parsing_context(tmp_path, monkeypatch):
    """Before the task runner exports AIRFLOW_CTX_DAG_ID (a failure before the task starts), its callbacks and the
    config-watch listener still find the group: the task runner parsed the DAG file under its DAG's id."""
    from airflow.sdk.definitions.context import _AIRFLOW_PARSING_CONTEXT_DAG_ID

    _group(tmp_path, "east")
    _group(tmp_path, "west")
    monkeypatch.setenv("BIZTALK_DR_CONFIG", str(tmp_path))
    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID", raising=False)
    monkeypatch.setenv(_AIRFLOW_PARSING_CONTEXT_DAG_ID, "dr_failover__east")
    assert load_config().group.name == "GROUP-EAST"


def test_the_config_watch_alerts_with_the_file_of_the_tasks_own_group(tmp_path, monkeypatch):
    """A broken west file (its DAGs on its last valid version) alerts west's tasks only, naming west's file."""
    from types import SimpleNamespace

    from biztalk_dr.edge import config_alerts

    _group(tmp_path, "east")
    west = _group(tmp_path, "west")
    monkeypatch.setenv("BIZTALK_DR_CONFIG", str(tmp_path))
    monkeypatch.setenv("BIZTALK_DR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID", raising=False)
    assert [gf.key for gf, _cfg in dag_groups()[0]] == ["east", "west"]  # both kept as their last valid version
    west.write_text(west.read_text(encoding="utf-8").replace("mark_prefix: BTS", "mark_prefix: BIZTALKMARK"))
    sent = []
    monkeypatch.setattr(config_alerts, "send_fallback_alert", lambda alert, *a, **k: sent.append(alert) or ["log"])

    def start(dag_id):
        dag = SimpleNamespace(tags={"biztalk-dr"})
        return config_alerts.on_task_start(SimpleNamespace(task=SimpleNamespace(dag=dag), dag_id=dag_id,
                                                           run_id="r1", task_id="t", log_url=""))

    assert start("dr_log_backup__east") == []
    assert start("dr_log_backup__west") == ["log"]
    [alert] = sent
    assert str(west) in alert.text() and ":64" in alert.text()
