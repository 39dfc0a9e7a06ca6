"""A broken group file never stops the DAGs silently: they run on its last valid version, and every run alerts
with the file's problems (file:line) through channels that do not depend on the file, until it is fixed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from biztalk_dr.domain.errors import ConfigError
from biztalk_dr.ops import config_fallback
from biztalk_dr.ops.config_files import load_config, read_config
from tests.conftest import EXAMPLE_CONFIG, ROOT
from tests.smtp_sink import smtp_connection, start_smtp_sink

VALID = EXAMPLE_CONFIG.read_text().replace(
    "  slack: {conn_id: slack_biztalk_ops, channel: '#biztalk-ops'}\n", "")  # alerts: the mail target only


def write(path: Path, data: str | bytes) -> None:
    """Replace the file as an editor does, its modification time moved on (a new version for the cache)."""
    previous = path.stat().st_mtime_ns if path.is_file() else None
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if previous is not None:
        os.utime(path, ns=(previous + 10**9, previous + 10**9))


def _replace(old: str, new: str):
    def broken(path: Path) -> None:
        assert old in VALID, old
        write(path, VALID.replace(old, new, 1))
    return broken


def _directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _no_permission(path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads a file whatever its mode")
    path.chmod(0)


BREAKAGES = {  # what an operator does to the file -> what the problem line says
    "a 9-character mark prefix": (_replace("mark_prefix: BTS ", "mark_prefix: BTSBACKUP"), "backup.mark_prefix: "
                                                                                            "expected 1 to 8 characters"),
    "an unknown key": (_replace("  compression: true", "  compresion: true"), "backup.compresion: unknown key"),
    "a wrong type": (_replace("log_backup_minutes: 15 ", "log_backup_minutes: x"), "schedules.log_backup_minutes: "
                                                                                   "expected a whole number"),
    "a YAML syntax error": (_replace("rpo:  ", "rpo: [  "), "not valid YAML"),
    "not UTF-8": (lambda p: write(p, b"group:\n  name: \xff\xfe\n"), "is not UTF-8 text"),
    "a directory in its place": (_directory, "is a directory, expected a YAML file"),
    "a missing file": (lambda p: p.unlink(), "no such file"),
    "no read permission": (_no_permission, "cannot be read"),
}
WITH_LINE = {"a 9-character mark prefix", "an unknown key", "a wrong type", "a YAML syntax error"}


@pytest.fixture
def group_file(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "group.yaml"
    path.write_text(VALID)
    monkeypatch.setenv("BIZTALK_DR_CONFIG", str(path))
    return path


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda b: b.replace(" ", "-"))
def test_a_broken_file_falls_back_on_its_last_valid_version_until_it_is_fixed(group_file, breakage):
    break_file, expected = BREAKAGES[breakage]
    valid = load_config()
    assert valid.group.name == "CONTOSO-BTS" and config_fallback.current_fallback(group_file) is None

    break_file(group_file)
    with pytest.raises(ConfigError) as strict:  # what `biztalk-dr config check` shows: unchanged
        load_config(group_file)
    assert load_config() == valid  # the DAGs go on with the last valid version
    fallback = config_fallback.current_fallback(group_file)
    assert fallback is not None and fallback.problems == tuple(strict.value.problems)
    [line] = [str(p) for p in fallback.problems if expected in str(p)]
    if breakage in WITH_LINE:
        assert line.startswith(f"{group_file}:") and line.split(":")[1].isdigit(), line
    else:
        assert line.startswith(f"{group_file}: "), line
    assert Path(fallback.copy).read_text() == VALID  # the exact text that validated
    assert f"{group_file} has {len(fallback.problems)} problem(s):" in fallback.text()

    if group_file.is_dir():
        group_file.rmdir()
    group_file.chmod(0o644) if group_file.exists() else None
    write(group_file, VALID.replace("name: CONTOSO-BTS", "name: CONTOSO-BTS2"))
    assert load_config().group.name == "CONTOSO-BTS2"  # fixed: used at once
    assert config_fallback.current_fallback(group_file) is None
    assert "CONTOSO-BTS2" in Path(fallback.copy).read_text()  # and kept as the new last valid version


def test_with_no_valid_version_ever_seen_the_error_is_raised_with_its_lines(group_file):
    write(group_file, VALID.replace("mark_prefix: BTS ", "mark_prefix: BTSBACKUP"))
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert str(caught.value).startswith(f"{group_file}:")
    assert not Path(config_fallback.copy_path(group_file)).exists()


def test_each_group_file_has_its_own_last_valid_copy(tmp_path, monkeypatch):
    """Two groups' files of the same name sharing one state folder never stand in for each other."""
    first, second = tmp_path / "a" / "group.yaml", tmp_path / "b" / "group.yaml"
    for path, name in ((first, "GROUP-A"), (second, "GROUP-B")):
        path.parent.mkdir()
        path.write_text(VALID.replace("name: CONTOSO-BTS", f"name: {name}"))
        monkeypatch.setenv("BIZTALK_DR_CONFIG", str(path))
        load_config()
    write(second, "group: [\n")
    assert load_config().group.name == "GROUP-B"
    assert config_fallback.copy_path(first) != config_fallback.copy_path(second)


def test_the_copy_is_replaced_atomically_and_never_by_a_version_read_before_a_newer_one(group_file):
    load_config()
    copy = config_fallback.copy_path(group_file)
    before = copy.stat()
    text = VALID.replace("name: CONTOSO-BTS", "name: STALE")
    stale_version = (group_file.stat().st_mtime_ns - 1, len(text))  # a version older than the file on disk
    config_fallback._keep(group_file, text, stale_version)
    assert "STALE" not in copy.read_text() and copy.stat().st_ino == before.st_ino
    write(group_file, VALID.replace("name: CONTOSO-BTS", "name: NEWER"))
    load_config()
    assert "NEWER" in copy.read_text() and copy.stat().st_ino != before.st_ino  # a new file renamed over
    assert sorted(p.name for p in copy.parent.iterdir() if p.name.startswith(".") and p.name != ".lock") == []


def test_a_state_folder_that_cannot_be_written_is_logged_and_the_file_still_used(group_file, monkeypatch, caplog,
                                                                                 tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("BIZTALK_DR_STATE_DIR", str(blocker / "state"))
    assert load_config().group.name == "CONTOSO-BTS"
    assert "cannot keep the last valid copy" in caplog.text and "BIZTALK_DR_STATE_DIR" in caplog.text


def test_the_copy_lives_beside_the_file_unless_a_state_folder_is_set(group_file, monkeypatch):
    monkeypatch.delenv("BIZTALK_DR_STATE_DIR")
    assert config_fallback.copy_path(group_file).parent == group_file.parent / ".biztalk-dr"


# ---------------------------------------------------------------------------------------------- the DAG files
def _dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_the_dags_stay_loaded_on_the_last_valid_version(group_file):
    load_config()
    write(group_file, VALID.replace("mark_prefix: BTS ", "mark_prefix: BTSBACKUP").replace("  compression: true",
                                                                                            "  compresion: true"))
    bag = _dagbag()
    assert bag.import_errors == {}
    assert len(bag.dags) == len(list((ROOT / "dags").glob("dr_*.py")))
    assert all("CONTOSO-BTS" in d.tags for d in bag.dags.values())


def test_with_no_valid_version_the_dag_files_show_the_lines_as_their_import_error(group_file):
    write(group_file, VALID.replace("mark_prefix: BTS ", "mark_prefix: BTSBACKUP"))
    bag = _dagbag()
    assert bag.dags == {} and len(bag.import_errors) == len(list((ROOT / "dags").glob("dr_*.py")))
    assert all(f"{group_file}:" in error and "backup.mark_prefix" in error for error in bag.import_errors.values())


# ---------------------------------------------------------------------------------------------- every run alerts
PROBE_DAG = '''
import datetime as dt

from airflow.sdk import dag, task

from biztalk_dr.ops.config_files import load_config

CONFIG = load_config()


@dag(dag_id="dr_config_probe", schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False,
     tags=["biztalk-dr", CONFIG.group.name])
def dr_config_probe():
    @task
    def first() -> str:
        return load_config().backup.mark_prefix

    @task
    def second(prefix: str) -> str:
        return prefix

    second(first())


dr_config_probe()
'''


@pytest.fixture
def mail(monkeypatch):
    sink = start_smtp_sink()
    connection = smtp_connection(sink)
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(connection))  # the group's own target
    connection["extra"]["to"] = "oncall@example.test, dba@example.test"
    monkeypatch.setenv("AIRFLOW_CONN_OPS_PAGER", json.dumps(connection))  # the channel outside the file
    monkeypatch.setenv("BIZTALK_DR_ALERT_CONN_ID", "ops_pager")
    yield sink
    sink.stop()


@pytest.mark.airflow
def test_every_run_on_the_last_valid_version_alerts_once_with_the_files_lines_until_it_is_fixed(
        group_file, mail, probe_dags):
    from airflow.dag_processing.dagbag import DagBag

    dag_file = probe_dags / "dr_config_probe.py"
    dag_file.write_text(PROBE_DAG)

    def run():
        bag = DagBag(dag_folder=str(dag_file))
        assert bag.import_errors == {}
        dr = bag.dags["dr_config_probe"].test()
        assert dr.state == "success"
        return {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in dr.get_task_instances()}

    assert run() == {"first": "BTS", "second": "BTS"}
    assert mail.texts() == []  # a valid file: nothing to say

    write(group_file, VALID.replace("mark_prefix: BTS ", "mark_prefix: BTSBACKUP"))
    for runs in (1, 2):  # every run, once per run (not per task)
        assert run() == {"first": "BTS", "second": "BTS"}  # the backups go on, with the last valid settings
        assert len(mail.texts()) == 2 * runs  # the pager connection's recipients, and the group's own target
    recipients = sorted(str(m["To"]) for m in mail.messages[:2])
    assert recipients == ["biztalk-ops@contoso.com", "oncall@example.test, dba@example.test"]
    subject, body = mail.texts()[0]
    assert subject == ("[CONTOSO-BTS] biztalk-dr: the group's configuration file is broken; dr_config_probe runs on "
                       "its last valid version")
    [problem] = read_problems(group_file)
    assert problem in body and problem.startswith(f"{group_file}:") and "backup.mark_prefix" in problem
    assert f"biztalk-dr config check {group_file}" in body

    write(group_file, VALID)
    run()
    assert len(mail.texts()) == 4  # fixed: no more alerts


def read_problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        read_config(path)
    return [str(p) for p in caught.value.problems]


@pytest.mark.airflow
def test_the_health_check_is_red_while_the_file_is_broken_and_alerts_outside_it(group_file, mail):
    from types import SimpleNamespace

    from biztalk_dr.domain.errors import GroupFileBroken
    from biztalk_dr.edge.alerts import DrAlertNotifier
    from biztalk_dr.edge.config_alerts import check_group_file

    assert check_group_file() == f"{group_file} validates: the DAGs run on it"  # and its last valid copy is kept
    write(group_file, VALID.replace("  compression: true", "  compresion: true"))
    with pytest.raises(GroupFileBroken) as red:
        check_group_file()
    [problem] = read_problems(group_file)
    assert problem.startswith(f"{group_file}:") and "backup.compresion: unknown key" in problem
    assert problem in str(red.value) and "runs use its last valid version" not in str(red.value)
    assert "Every run uses its last valid version" in str(red.value)

    # its failure alert (the health check's on_failure_callback) goes through the channel outside the file too
    ti = SimpleNamespace(dag_id="dr_health_check", task_id="check_group_file", run_id="scheduled__1", log_url="")
    DrAlertNotifier().notify({"ti": ti, "exception": red.value})
    assert sorted(str(m["To"]) for m in mail.messages) == ["biztalk-ops@contoso.com",
                                                          "oncall@example.test, dba@example.test"]
    subject, body = mail.texts()[0]
    assert subject == "[CONTOSO-BTS] biztalk-dr: dr_health_check failed at check_group_file"
    assert problem in body and f"biztalk-dr config check {group_file}" in body

    # a run whose first task alerted already (the listener plugin) is not paged twice for the same lines
    from biztalk_dr.edge.config_alerts import on_task_start

    started = SimpleNamespace(dag_id="dr_health_check", task_id="list_instances", run_id="scheduled__2",
                              log_url="", task=SimpleNamespace(dag=SimpleNamespace(tags=["biztalk-dr"])))
    assert on_task_start(started)
    before = len(mail.messages)
    DrAlertNotifier().notify({"ti": SimpleNamespace(dag_id="dr_health_check", task_id="check_group_file",
                                                    run_id="scheduled__2", log_url=""), "exception": red.value})
    assert len(mail.messages) == before

    write(group_file, VALID)  # fixed: green again
    assert check_group_file() == f"{group_file} validates: the DAGs run on it"
