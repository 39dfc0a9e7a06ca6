"""The backup DAGs run by Airflow (``dag.test()``) against a seeded stand-in primary, through the real
ODBC provider, pyodbc and FreeTDS: a night's sequence and the faults an operator must hear about."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sqlserver_standin import faults
from tests.dags.e2e import GROUP, asset_events, dag_named, query, running_group, states

pytestmark = [pytest.mark.standin, pytest.mark.airflow]


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    with running_group(tmp_path_factory.mktemp("e2e")) as g:
        yield g.root, g.primary, g.mail


_dag, _states, _query, _asset_events = dag_named, states, query, asset_events


def test_a_log_backup_before_the_first_full_set_is_skipped_and_asks_for_a_full_backup(group):
    root, primary, mail = group
    sent = len(mail.messages)
    run = _dag("dr_log_backup").test()
    assert _states(run)["take_log_backup_set"] == "skipped" and run.state == "success"
    assert _query(primary, "SELECT COUNT(*) FROM BizTalkMgmtDb.dbo.adm_BackupHistory") == [(0,)]
    assert _query(primary, "SELECT ForceFull FROM BizTalkMgmtDb.dbo.adm_BackupSettings") == [(True,)]
    assert len(mail.messages) == sent  # a new group is not an incident


def test_a_night_full_then_marked_log_sets(group):
    root, primary, mail = group
    events_before = len(_asset_events())
    full = _dag("dr_full_backup").test()
    assert full.state == "success", _states(full)
    log1 = _dag("dr_log_backup").test()
    assert log1.state == "success", _states(log1)
    log2 = _dag("dr_log_backup").test()
    assert log2.state == "success", _states(log2)

    sets = _query(primary, "SELECT BackupSetId, BackupType, COUNT(*), MIN(CAST(SetComplete AS int)), "
                           "COUNT(DISTINCT MarkName) FROM BizTalkMgmtDb.dbo.adm_BackupHistory "
                           "GROUP BY BackupSetId, BackupType ORDER BY BackupSetId")
    assert [(t, n, ok, marks) for _, t, n, ok, marks in sets] == [("db", 7, 1, 1), ("lg", 7, 1, 1), ("lg", 7, 1, 1)]
    files = _query(primary, "SELECT BackupFileLocation, BackupFileName FROM BizTalkMgmtDb.dbo.adm_BackupHistory")
    assert all((Path(location) / name).stat().st_size > 0 for location, name in files)
    assert _query(primary, "SELECT enabled FROM msdb.dbo.sysjobs") == [(0,)]  # biztalk-dr took over the schedule
    assert _query(primary, "SELECT DatabaseName FROM BizTalkMgmtDb.dbo.adm_OtherBackupDatabases") == [("DemoOrders",)]

    events = _asset_events()[events_before:]
    assert [e["kind"] for e in events] == ["full", "log", "log"]
    assert all(sorted(e["databases"]) == sorted(GROUP) and e["complete"] for e in events)
    assert len({e["mark"] for e in events}) == 3


def _mails_about(mail, sent_before: int, task_id: str) -> list[tuple[str, str]]:
    return [(subject, body) for subject, body in mail.texts()[sent_before:] if f"at {task_id}" in subject]


def test_a_missed_log_backup_schedule_is_found_and_alerted(group):
    root, primary, mail = group
    if not _query(primary, "SELECT 1 FROM BizTalkMgmtDb.dbo.adm_BackupHistory WHERE BackupType = 'lg' AND SetComplete = 1"):
        assert _dag("dr_full_backup").test().state == "success"
        assert _dag("dr_log_backup").test().state == "success"
    # as if dr_log_backup had been paused for 45 minutes: the newest log set is three intervals old
    _query(primary, "UPDATE BizTalkMgmtDb.dbo.adm_BackupHistory SET BackupDateTime = DATEADD(minute, -45, BackupDateTime)")
    sent = len(mail.messages)
    try:
        run = _dag("dr_health_check").test()
    finally:
        _query(primary, "UPDATE BizTalkMgmtDb.dbo.adm_BackupHistory SET BackupDateTime = DATEADD(minute, 45, BackupDateTime)")
    assert _states(run)["check_backup_schedules"] == "failed"
    [(subject, body)] = _mails_about(mail, sent, "check_backup_schedules")
    assert subject == "[DEMO-BTS] biztalk-dr: dr_health_check failed at check_backup_schedules"
    assert "MISSED: newest complete log set" in body and "dr_log_backup must produce one at least every 30 min" in body
    assert "What to do: Open the backup DAG named above: is it paused" in body
    assert "full" not in body.split("MISSED")[0]  # the full set is on schedule and not blamed


def test_a_partial_log_set_fails_the_run_and_requests_a_full_backup(group):
    root, primary, mail = group
    _query(primary, "UPDATE BizTalkMgmtDb.dbo.adm_BackupSettings SET ForceFull = 0")
    faults.inject(root / "primary", "partial_backup_set", database="BizTalkDTADb")
    events_before = len(_asset_events())
    run = _dag("dr_log_backup").test()
    assert run.state == "failed"
    assert _query(primary, "SELECT ForceFull FROM BizTalkMgmtDb.dbo.adm_BackupSettings") == [(True,)]
    assert len(_asset_events()) == events_before  # a partial set is never published for shipping


def test_a_backup_file_damaged_while_success_was_reported_is_caught_by_verification(group):
    root, primary, mail = group
    _query(primary, "UPDATE BizTalkMgmtDb.dbo.adm_BackupSettings SET ForceFull = 0")
    faults.inject(root / "primary", "damage_backup", mode="truncate", database="SSODB")
    sent = len(mail.messages)
    run = _dag("dr_log_backup").test()
    states = _states(run)
    assert run.state == "failed", states
    read_back = {k: v for k, v in states.items() if k.startswith("verify_backup_set.read_back_backup_file[")}
    assert states["take_log_backup_set"] == "success"
    assert states["verify_backup_set.check_set_complete"] == "success"
    assert read_back["verify_backup_set.read_back_backup_file[SSODB]"] == "failed"
    assert sorted(v for k, v in read_back.items() if "SSODB" not in k) == ["success"] * (len(read_back) - 1)
    assert states["verify_backup_set.publish_backup_set"] == "upstream_failed"
    assert _query(primary, "SELECT ForceFull FROM BizTalkMgmtDb.dbo.adm_BackupSettings") == [(True,)]
    [(_, body)] = _mails_about(mail, sent, "verify_backup_set.read_back_backup_file")
    assert "SSODB:" in body and "cannot be read back" in body and "What to do:" in body


def test_the_server_down_fails_the_run(group):
    root, primary, mail = group
    faults.inject(root / "primary", "refuse_connections")
    try:
        run = _dag("dr_log_backup").test()
        assert run.state == "failed"
    finally:
        faults.clear(root / "primary")


def _failed_task_error(run, task_id: str) -> str:
    [ti] = [ti for ti in run.get_task_instances() if ti.task_id == task_id]
    assert ti.state == "failed", _states(run)
    return ti.task_id


def test_a_database_in_simple_recovery_stops_the_full_backup_before_anything_is_written(group, capfd):
    root, primary, mail = group
    before = _query(primary, "SELECT COUNT(*) FROM BizTalkMgmtDb.dbo.adm_BackupHistory")
    _query(primary, "ALTER DATABASE BizTalkDTADb SET RECOVERY SIMPLE")
    try:
        run = _dag("dr_full_backup").test()
        _failed_task_error(run, "check_preconditions")  # at once: a person must act, retrying cannot help
        out = "".join(capfd.readouterr())
        assert "BizTalkDTADb uses the SIMPLE recovery model" in out and "SET RECOVERY FULL" in out
        assert _query(primary, "SELECT COUNT(*) FROM BizTalkMgmtDb.dbo.adm_BackupHistory") == before
    finally:
        _query(primary, "ALTER DATABASE BizTalkDTADb SET RECOVERY FULL")


def test_an_unreachable_backup_path_fails_the_set_with_3201_and_requests_a_full(group, capfd):
    root, primary, mail = group
    # twice: BizTalk's procedure retries a failed compressed backup uncompressed (biztalk-dr.md section 2)
    faults.inject(root / "primary", "fail_backup", database="BizTalkMsgBoxDb", count=2)
    sent = len(mail.messages)
    run = _dag("dr_full_backup").test()
    assert run.state == "failed", _states(run)
    assert "3201" in "".join(capfd.readouterr())
    [(_, body)] = _mails_about(mail, sent, "take_full_backup_set")
    assert "SQL Server error 3201" in body and "BizTalkMsgBoxDb" in body
    assert "What to do: SQL Server cannot open the backup file" in body
    assert _query(primary, "SELECT ForceFull FROM BizTalkMgmtDb.dbo.adm_BackupSettings") == [(True,)]


def test_an_enabled_agent_job_stops_the_full_backup_unless_the_config_allows_disabling_it(group, capfd):
    root, primary, mail = group
    strict = root / "group_keep_job.yaml"
    strict.write_text((root / "group.yaml").read_text().replace("disable_sql_agent_job: true",
                                                                "disable_sql_agent_job: false"))
    _query(primary, "EXEC msdb.dbo.sp_update_job @job_name = N'Backup BizTalk Server (BizTalkMgmtDb)', @enabled = 1")
    os.environ["BIZTALK_DR_CONFIG"] = str(strict)
    try:
        run = _dag("dr_full_backup").test()
    finally:
        os.environ["BIZTALK_DR_CONFIG"] = str(root / "group.yaml")
    _failed_task_error(run, "check_preconditions")
    out = "".join(capfd.readouterr())
    assert "Backup BizTalk Server (BizTalkMgmtDb)" in out and "sp_update_job" in out  # says how to disable it
    assert _query(primary, "SELECT enabled FROM msdb.dbo.sysjobs") == [(1,)]  # left as the operator had it
