"""The DAGs' shapes: the exact task ids and order an operator reads in the UI."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def upstream_chain(dag, task_id):
    """Task ids from the first task to ``task_id`` following single upstream links."""
    order = [task_id]
    task = dag.get_task(task_id)
    while task.upstream_task_ids:
        assert len(task.upstream_task_ids) == 1, f"{task.task_id} has several upstream tasks"
        task = dag.get_task(next(iter(task.upstream_task_ids)))
        order.insert(0, task.task_id)
    return order


def test_full_backup_runs_its_steps_in_order(dagbag):
    dag = dagbag.dags["dr_full_backup"]
    assert upstream_chain(dag, "apply_file_retention") == [
        "check_preconditions", "register_custom_databases", "set_backup_compression", "take_full_backup_set",
        "verify_backup_set.check_set_complete", "verify_backup_set.read_back_backup_file",
        "verify_backup_set.publish_backup_set", "delete_old_history", "apply_file_retention"]
    assert dag.max_active_runs == 1
    assert dag.params["retention_dry_run"] is False and "dry_run" not in dag.params


def test_dry_run_means_change_nothing_in_every_dag_that_has_it(dagbag):
    having = {dag_id for dag_id, dag in dagbag.dags.items() if "dry_run" in dag.params}
    assert having == {"dr_failover", "dr_standby_reseed"}
    for dag_id in having:
        param = dagbag.dags[dag_id].params.get_param("dry_run")
        assert param.value is True and "change nothing" in param.description, dag_id


def test_log_backup_takes_then_verifies(dagbag):
    dag = dagbag.dags["dr_log_backup"]
    assert upstream_chain(dag, "verify_backup_set.publish_backup_set") == [
        "take_log_backup_set", "verify_backup_set.check_set_complete", "verify_backup_set.read_back_backup_file",
        "verify_backup_set.publish_backup_set"]
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert str(dag.timetable.summary) == "*/15 * * * *"


def test_backup_sets_are_published_as_assets(dagbag):
    from biztalk_dr.edge.assets import BACKUP_SETS

    for dag_id in ("dr_full_backup", "dr_log_backup"):
        outlets = dagbag.dags[dag_id].get_task("verify_backup_set.publish_backup_set").outlets
        assert [o.name for o in outlets] == [BACKUP_SETS.name]


def test_full_backup_schedule_follows_the_config(dagbag):
    dag = dagbag.dags["dr_full_backup"]
    assert dag.timetable.summary == "0 1 * * *"
    assert str(dag.timetable._timezone.name) == "Europe/Berlin"


def test_every_backup_and_health_task_alerts_on_failure(dagbag):
    from biztalk_dr.edge.alerts import DrAlertNotifier

    assert {"check_backup_schedules", "check_group_file"} <= set(dagbag.dags["dr_health_check"].task_ids)
    for dag_id in ("dr_full_backup", "dr_log_backup", "dr_health_check"):
        for t in dagbag.dags[dag_id].tasks:
            callbacks = t.on_failure_callback if isinstance(t.on_failure_callback, list) else [t.on_failure_callback]
            assert any(isinstance(c, DrAlertNotifier) for c in callbacks), f"{dag_id}.{t.task_id}"


def test_each_database_file_is_read_back_in_its_own_box(dagbag):
    for dag_id in ("dr_full_backup", "dr_log_backup"):
        read_back = dagbag.dags[dag_id].get_task("verify_backup_set.read_back_backup_file")
        assert read_back.map_index_template == "{{ task.op_kwargs['database'] }}"
        assert "RESTORE VERIFYONLY" in read_back.doc_md


def test_log_shipping_runs_on_backup_sets_and_on_a_safety_schedule(dagbag):
    from biztalk_dr.edge.assets import BACKUP_SETS, STANDBY_RESTORED

    dag = dagbag.dags["dr_log_shipping"]
    assert upstream_chain(dag, "check_data_loss_window") == [
        "find_sets_to_ship", "ship_database_files", "restore_standby_set_by_set", "check_data_loss_window"]
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert dag.timetable.timetable.summary == "*/5 * * * *"  # the safety schedule ...
    assert BACKUP_SETS.name in str(dag.timetable.asset_condition)  # ... or a new backup set
    assert dag.get_task("restore_standby_set_by_set").trigger_rule == "all_done"
    assert [o.name for o in dag.get_task("restore_standby_set_by_set").outlets] == [STANDBY_RESTORED.name]
    watcher = dag.get_task("fail_if_any_step_failed")
    assert watcher.trigger_rule == "one_failed" and watcher.upstream_task_ids == {
        "ship_database_files", "restore_standby_set_by_set", "check_data_loss_window"}


def test_standby_reseed_is_manual_and_dry_by_default(dagbag):
    dag = dagbag.dags["dr_standby_reseed"]
    assert type(dag.timetable).__name__ == "NullTimetable"  # manual only
    assert dag.params["dry_run"] is True and dag.params["confirm_group"] == ""
    assert upstream_chain(dag, "reseed_standby") == ["check_request", "reseed_standby"]


def test_standby_retention_is_hourly_one_task_and_a_dry_run_by_default(dagbag):
    from biztalk_dr.ops.config_files import load_config

    dag = dagbag.dags["dr_standby_retention"]
    assert [t.task_id for t in dag.tasks] == ["apply_standby_retention"]
    assert dag.schedule == "@hourly" and dag.max_active_runs == 1 and dag.catchup is False
    assert load_config(ROOT / "include" / "config" / "example_group.yaml").retention.standby.delete is False


def test_restore_validation_plans_restores_checks_reports_and_always_cleans_up(dagbag):
    dag = dagbag.dags["dr_restore_validation"]
    assert upstream_chain(dag, "write_validation_report") == [
        "plan_validation", "restore_validation_database", "check_validation_database", "write_validation_report"]
    assert dag.max_active_runs == 1 and dag.catchup is False  # a second run waits for the active one
    assert dag.timetable.summary == "0 3 * * 0"
    cleanup = dag.get_task("drop_validation_databases")
    assert cleanup.is_teardown and dag.get_task("write_validation_report").trigger_rule == "all_done"
    assert dag.params["set_id"] is None


def test_failover_is_manual_phased_and_restricted(dagbag):
    dag = dagbag.dags["dr_failover"]
    assert type(dag.timetable).__name__ == "NullTimetable" and dag.max_active_runs == 1
    assert dag.params["dry_run"] is True and dag.params["mode"] == "disaster"
    assert upstream_chain(dag, "assess.approve_failover") == [
        "assess.check_request", "assess.assess_standby", "assess.approve_failover"]
    groups = {t.task_group.group_id for t in dag.tasks if t.task_group and t.task_group.group_id}
    assert groups == {"assess", "stop_source", "recover_databases", "repoint_biztalk", "enable_processing",
                      "protect_new_primary"}
    # the runbook's order: nothing stops or changes before the approval, the databases before BizTalk, BizTalk
    # before the console, the new primary protected last
    order = ["assess.approve_failover", "stop_source.hold_backup_schedule", "stop_source.stop_biztalk_processing",
             "stop_source.check_no_biztalk_sessions", "stop_source.take_final_log_set",
             "stop_source.ship_final_log_set", "recover_databases.plan_recovery", "recover_databases.restore_to_mark",
             "recover_databases.verify_at_mark", "recover_databases.fix_orphaned_users",
             "repoint_biztalk.generate_update_info",
             "repoint_biztalk.update_database", "repoint_biztalk.update_registry", "repoint_biztalk.restore_sso_secret",
             "repoint_biztalk.start_biztalk_services", "enable_processing.confirm_processing_enabled",
             "protect_new_primary.record_new_roles", "protect_new_primary.force_full_backup",
             "protect_new_primary.resume_backup_schedule", "write_failover_timeline"]
    for before, after in itertools.pairwise(order):
        assert before in dag.get_task(after).upstream_task_ids, f"{before} must run right before {after}"
    human = [t for t in dag.tasks if t.task_type in ("ApprovalOperator", "RecordedApprovalOperator", "WindowsStepOperator")]
    assert {t.task_id for t in human} == {
        "assess.approve_failover", "stop_source.stop_biztalk_processing", "repoint_biztalk.update_database",
        "repoint_biztalk.update_registry", "repoint_biztalk.restore_sso_secret", "repoint_biztalk.start_biztalk_services",
        "enable_processing.confirm_processing_enabled"}
    from biztalk_dr.edge.windows_step_operator import WindowsStepOperator

    # no answer is never a yes: a mapped step is a WindowsStepOperator, which always defaults to Reject
    assert all(t.defaults == ["Reject"] for t in human if type(t).__name__ != "MappedOperator")
    assert all(t.operator_class is WindowsStepOperator for t in human if type(t).__name__ == "MappedOperator")
    assert WindowsStepOperator(task_id="probe", step="update_registry").defaults == ["Reject"]
    mapped = {t.task_id for t in dag.tasks if type(t).__name__.endswith("MappedOperator")}
    assert {"stop_source.stop_biztalk_processing", "repoint_biztalk.update_registry",  # one box per BizTalk server
            "repoint_biztalk.start_biztalk_services", "recover_databases.verify_at_mark"} <= mapped
    assert dag.get_task("write_failover_timeline").trigger_rule == "all_done"
    assert "DR Operator" in dag.access_control


@pytest.mark.parametrize("task_id", ["assess.approve_failover", "enable_processing.confirm_processing_enabled"])
def test_every_human_step_of_a_dry_run_says_dry_run_first(dagbag, task_id):
    from jinja2 import Environment

    task = dagbag.dags["dr_failover"].get_task(task_id)
    for dry_run, prefix in ((True, "DRY RUN: "), (False, "")):
        subject = Environment().from_string(task.subject).render(params={"dry_run": dry_run})
        assert subject.startswith(prefix) and subject.removeprefix(prefix)[:1].isupper(), subject
    if task_id == "enable_processing.confirm_processing_enabled":
        assert Environment().from_string(task.body).render(params={"dry_run": True}).startswith("DRY RUN: In the")
    else:  # the approval's body is the assessment's summary, which starts with the request: "DRY RUN (nothing..."
        assert "['summary']" in task.body
