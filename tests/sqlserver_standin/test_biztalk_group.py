"""A seeded BizTalk group on the stand-in: BizTalk's backup procedures, history, marks, the Agent job."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from biztalk_dr.ops.config_files import load_config
from sqlserver_standin import faults
from sqlserver_standin.launcher import render_group_config
from sqlserver_standin.seed import BACKUP_JOB_NAME, seed_biztalk_group
from tests.conftest import ROOT
from tests.sqlserver_standin.conftest import new_instance

GROUP_DATABASES = ["BizTalkMgmtDb", "BizTalkMsgBoxDb", "BizTalkDTADb", "SSODB", "BizTalkRuleEngineDb",
                   "BAMPrimaryImport"]  # DemoOrders is custom: not registered until the backup DAG does it
MARK = re.compile(r"^BTS_\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}_\d{3}$")


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    root = tmp_path_factory.mktemp("group")
    cfg = load_config(render_group_config(ROOT / "include" / "config" / "standin_group.yaml", root,
                                          root / "group.yaml"))
    seed_biztalk_group(root / "primary", cfg, instance_name="SQLPRD01")
    instance = new_instance(root / "primary").start()
    yield instance, root / "backups"
    instance.stop()


@pytest.fixture
def mgmt(group):
    instance, _ = group
    client = instance.connect("freetds", database="BizTalkMgmtDb")
    yield client
    client.close()


def history(mgmt, set_id: int) -> list[tuple]:
    return mgmt.rows("SELECT DatabaseName, BackupType, MarkName, BackupFileName, BackupFileLocation, SetComplete "
                     f"FROM dbo.adm_BackupHistory WHERE BackupSetId = {set_id} ORDER BY BackupId")


def test_the_seeded_group_is_what_biztalk_setup_leaves(mgmt):
    rows = mgmt.rows("SELECT name, recovery_model_desc, state_desc FROM sys.databases WHERE database_id > 4 "
                     "ORDER BY name")
    assert {r[0] for r in rows} == {*GROUP_DATABASES, "DemoOrders"}
    assert {(r[1], r[2]) for r in rows} == {("FULL", "ONLINE")}
    assert mgmt.value("SELECT DBName FROM dbo.adm_MessageBox WHERE IsMasterMsgBox = 1") == "BizTalkMsgBoxDb"
    assert mgmt.rows("SELECT name, enabled FROM msdb.dbo.sysjobs") == [(BACKUP_JOB_NAME, 1)]
    assert mgmt.rows("SELECT COUNT(*) FROM dbo.adm_OtherBackupDatabases") == [(0,)]


def test_a_full_set_then_a_marked_log_set(group, mgmt):
    _, backups = group
    mgmt.run("EXEC dbo.sp_ForceFullBackup")
    mgmt.run(f"EXEC dbo.sp_BackupAllFull_Schedule @Frequency = 'd', @MarkName = 'BTS', @BackupPath = N'{backups}/'")
    full_set = mgmt.value("SELECT MAX(BackupSetId) FROM dbo.adm_BackupHistory")
    rows = history(mgmt, full_set)
    assert [r[0] for r in rows] == GROUP_DATABASES
    assert {r[1] for r in rows} == {"db"} and {r[5] for r in rows} == {True}
    assert len({r[2] for r in rows}) == 1 and MARK.match(rows[0][2])
    for db, _, mark, file_name, location, _ in rows:
        assert file_name == f"SQLPRD01_{db}_Full_{mark}.bak"
        assert (Path(location) / file_name).stat().st_size > 0
    assert mgmt.value("SELECT ForceFull FROM dbo.adm_BackupSettings") is False

    mgmt.run(f"EXEC dbo.sp_MarkAll @MarkName = 'BTS', @BackupPath = N'{backups}/'")
    log_set = mgmt.value("SELECT MAX(BackupSetId) FROM dbo.adm_BackupHistory")
    rows = history(mgmt, log_set)
    assert [r[0] for r in rows] == GROUP_DATABASES and {r[1] for r in rows} == {"lg"}
    mark = rows[0][2]
    assert {r[5] for r in rows} == {True} and {r[2] for r in rows} == {mark}
    marked = mgmt.rows(f"SELECT database_name FROM msdb.dbo.logmarkhistory WHERE mark_name = N'{mark}'")
    assert sorted(r[0] for r in marked) == sorted(GROUP_DATABASES)  # one marked transaction in every database


def test_a_full_set_is_taken_only_when_due(group, mgmt):
    _, backups = group
    mgmt.run(f"EXEC dbo.sp_BackupAllFull_Schedule 'd', 'BTS', N'{backups}/'")
    before = mgmt.value("SELECT MAX(BackupSetId) FROM dbo.adm_BackupHistory")
    mgmt.run(f"EXEC dbo.sp_BackupAllFull_Schedule 'd', 'BTS', N'{backups}/'")  # the day's full exists
    assert mgmt.value("SELECT MAX(BackupSetId) FROM dbo.adm_BackupHistory") == before
    mgmt.run("EXEC dbo.sp_ForceFullBackup")
    mgmt.run(f"EXEC dbo.sp_BackupAllFull_Schedule 'd', 'BTS', N'{backups}/'")
    assert mgmt.value("SELECT MAX(BackupSetId) FROM dbo.adm_BackupHistory") == before + 1


def test_a_failed_database_backup_leaves_a_partial_set_and_an_error(group, mgmt):
    instance, backups = group
    faults.inject(instance.data_dir, "partial_backup_set", database="BizTalkDTADb")
    error = mgmt.error(f"EXEC dbo.sp_MarkAll 'BTS', N'{backups}/'")
    assert "BizTalkDTADb" in str(error)
    set_id = mgmt.value("SELECT MAX(BackupSetId) FROM dbo.adm_BackupHistory")
    rows = history(mgmt, set_id)
    assert "BizTalkDTADb" not in [r[0] for r in rows]
    assert {r[5] for r in rows} == {False}  # SetComplete = 0: this set cannot be restored


def test_compression_setting_is_stored(mgmt):
    mgmt.run("EXEC dbo.sp_SetBackupCompression @bCompression = 1")
    assert mgmt.value("SELECT UseCompression FROM dbo.adm_BackupSettings") is True
    mgmt.run("EXEC dbo.sp_SetBackupCompression @bCompression = 0")
    assert mgmt.value("SELECT UseCompression FROM dbo.adm_BackupSettings") is False


def test_history_cleanup_deletes_rows_never_files(group, mgmt):
    _, backups = group
    files_before = sorted(p.name for p in backups.iterdir())
    mgmt.run("UPDATE dbo.adm_BackupHistory SET BackupDateTime = DATEADD(day, -30, BackupDateTime) "
             "WHERE BackupSetId = 1")
    mgmt.run("EXEC dbo.sp_DeleteBackupHistory @DaysToKeep = 14")
    assert mgmt.rows("SELECT COUNT(*) FROM dbo.adm_BackupHistory WHERE BackupSetId = 1") == [(0,)]
    assert sorted(p.name for p in backups.iterdir()) == files_before


def test_the_agent_job_is_disabled_with_sp_update_job(mgmt):
    mgmt.run(f"EXEC msdb.dbo.sp_update_job @job_name = N'{BACKUP_JOB_NAME}', @enabled = 0")
    assert mgmt.value(f"SELECT enabled FROM msdb.dbo.sysjobs WHERE name = N'{BACKUP_JOB_NAME}'") == 0
    assert mgmt.error("EXEC msdb.dbo.sp_update_job @job_name = N'No such job', @enabled = 0").number == 14262
    mgmt.run(f"EXEC msdb.dbo.sp_update_job @job_name = N'{BACKUP_JOB_NAME}', @enabled = 1")


def test_procedure_parameters_are_checked_as_sql_server_does(mgmt):
    assert mgmt.error("EXEC dbo.sp_MarkAll @MarkName = 'BTS'").number == 201  # @BackupPath missing
    assert mgmt.error("EXEC dbo.sp_MarkAll @Nope = 1, @MarkName = 'BTS'").number == 8145
    assert mgmt.error("EXEC dbo.sp_NoSuchProcedure").number == 2812
    assert mgmt.error("EXEC master.dbo.sp_MarkAll 'BTS', N'/tmp'").number == 2812  # only in the management db
