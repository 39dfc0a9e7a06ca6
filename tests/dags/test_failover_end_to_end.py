"""dr_failover run by Airflow (``dag.test()``, its human steps answered from the operator desk as an operator
would) against a stand-in primary and standby kept in step by dr_log_shipping: bad forms stopped before any
server is touched, a dry run that changes nothing, a real disaster failover to one mark that ends with the
new primary backed up, and a re-run that changes nothing more."""

from __future__ import annotations

import json

import pytest

from tests.dags.e2e import GROUP, dag_named, query, run_dag, run_failover, running_group, states

pytestmark = [pytest.mark.standin, pytest.mark.airflow]
ORPHANS = ("SELECT dp.name FROM [DemoOrders].sys.database_principals AS dp LEFT JOIN sys.server_principals AS sp "
           "ON sp.sid = dp.sid WHERE dp.type = 'S' AND dp.authentication_type = 1 AND dp.principal_id > 4 "
           "AND sp.sid IS NULL")


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    with running_group(tmp_path_factory.mktemp("failover"), standby=True) as g:
        for name in ("dr_full_backup", "dr_log_backup", "dr_log_backup", "dr_log_backup", "dr_log_shipping"):
            run = dag_named(name).test()
            assert run.state == "success", states(run)
        yield g


def standby_state(group) -> dict:
    """What a failover changes at the standby site: database states, restores, the DR records, backups."""
    roles = group.root / "landing" / ".biztalk-dr" / "roles.json"
    return {"databases": dict(query(group.standby, "SELECT name, state_desc FROM sys.databases")),
            "restores": query(group.standby, "SELECT COUNT(*) FROM msdb.dbo.restorehistory")[0][0],
            "roles": json.loads(roles.read_text()) if roles.exists() else None,
            "backups": sorted(p.name for p in (group.root / "standby-backups").iterdir())}


def newest_log_mark(instance) -> str:
    [(mark,)] = query(instance, "SELECT TOP (1) MarkName FROM BizTalkMgmtDb.dbo.adm_BackupHistory "
                                "WHERE BackupType = 'lg' AND SetComplete = 1 ORDER BY BackupSetId DESC")
    return mark


def test_bad_forms_stop_before_any_server_is_touched(group, capfd):
    before = standby_state(group)
    run, st, _ = run_failover(group, mode="disaster", dry_run=False, confirm_group="wrong-group")
    assert run.state == "failed" and st["assess.check_request"] == "failed" and st["assess.assess_standby"] == "upstream_failed"
    assert "confirm_group: a real failover needs the group's name typed exactly ('DEMO-BTS')" in "".join(capfd.readouterr())
    run, st, _ = run_failover(group, mode="disaster", target_mark="BTS_2020_01_01_00_00_00_000")
    assert run.state == "failed" and st["assess.assess_standby"] == "failed"
    assert "mark BTS_2020_01_01_00_00_00_000 is not in the backup history" in "".join(capfd.readouterr())
    run, st, _ = run_failover(group, mode="disaster", target_mark="not a mark")
    assert st["assess.check_request"] == "failed"
    assert "target_mark: expected a BizTalk mark such as BTS_" in "".join(capfd.readouterr())
    # a mark the standby has already restored past cannot be reached by any database
    [(old_mark,)] = query(group.primary, "SELECT MarkName FROM BizTalkMgmtDb.dbo.adm_BackupHistory WHERE "
                                         "BackupType = 'lg' AND DatabaseName = 'SSODB' AND BackupSetId = 2")
    run, st, answers = run_failover(group, mode="disaster", dry_run=False, confirm_group="DEMO-BTS", target_mark=old_mark)
    assert st["assess.assess_standby"] == "failed" and not answers  # nobody was asked to approve anything
    out = "".join(capfd.readouterr())
    assert all(f"{db}: the standby has already restored set 3, past the mark of set 2" in out for db in GROUP)
    assert "Nothing was changed" in out
    assert standby_state(group) == before


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(group, capfd):
    before = standby_state(group)
    run, st, answers = run_failover(group, mode="disaster")
    assert run.state == "success", st
    out = "".join(capfd.readouterr())
    assert f"WITH STOPATMARK = N'{newest_log_mark(group.primary)}', RECOVERY" in out and "DRY RUN" in out
    assert "would hold the backup schedule" in out and "would resume the backup schedule" in out
    assert "UpdateDatabase.vbs" in out  # the Windows steps say what they would do ...
    assert {a.task_id for a in answers} == {"assess.approve_failover", "enable_processing.confirm_processing_enabled"}
    assert standby_state(group) == before and all(before["databases"][db] == "RESTORING" for db in GROUP)


def test_a_disaster_failover_brings_every_database_online_at_one_mark_and_protects_the_new_primary(group, capfd):
    mark = newest_log_mark(group.primary)
    group.primary.stop()  # the primary site is lost
    capfd.readouterr()
    run, st, answers = run_failover(group, mode="disaster", dry_run=False, confirm_group="DEMO-BTS")
    assert run.state == "success", st
    assert all(st[f"recover_databases.verify_at_mark[{db}]"] == "success" for db in GROUP)
    # DemoOrders' SQL user came from the primary with the primary login's SID: orphaned here, then mapped
    assert "DemoOrders: user DemoOrdersApp mapped to login DemoOrdersApp (it was orphaned)" in "".join(capfd.readouterr())
    assert query(group.standby, ORPHANS) == []
    assert st["stop_source.take_final_log_set"] == "success"  # a disaster takes none, and says so
    assert [a.task_id for a in answers] == [
        "assess.approve_failover", "stop_source.stop_biztalk_processing", "repoint_biztalk.update_database",
        "repoint_biztalk.update_registry", "repoint_biztalk.restore_sso_secret", "repoint_biztalk.start_biztalk_services",
        "enable_processing.confirm_processing_enabled"]  # in the runbook's order, one box per BizTalk server
    after = standby_state(group)
    assert all(after["databases"][db] == "ONLINE" for db in GROUP)
    stopped = query(group.standby, "SELECT destination_database_name, stop_at_mark_name FROM msdb.dbo.restorehistory "
                                   "WHERE stop_at_mark_name IS NOT NULL")
    assert sorted(stopped) == sorted((db, mark) for db in GROUP)
    assert after["roles"]["primary_site"] == "standby" and after["roles"]["mark"] == mark
    assert after["roles"]["backups_held_by"] is None  # resumed at the end
    # the new primary's first full set: every database, taken on SQLDR01 into the standby site's backup folder
    fulls = query(group.standby, "SELECT DatabaseName, ServerName, SetComplete FROM BizTalkMgmtDb.dbo.adm_BackupHistory "
                                 "WHERE BackupType = 'db' AND ServerName = 'SQLDR01'")
    assert sorted(db for db, _, complete in fulls if complete) == sorted(GROUP)
    assert len(after["backups"]) == len(GROUP) and all(name.startswith("SQLDR01_") for name in after["backups"])
    folder = group.root / "landing" / ".biztalk-dr" / "failover"
    [record] = [p for p in folder.glob("*/timeline.json") if json.loads(p.read_text())["run_id"] == run.run_id]
    timeline = json.loads(record.read_text())
    assert 'newDBServer="SQLDR01"' in (record.parent / "SampleUpdateInfo.xml").read_text()
    steps = [s["step"] for s in timeline["steps"]]
    assert steps[:2] == ["assess.assess_standby", "stop_source.hold_backup_schedule"]
    assert steps[-1] == "protect_new_primary.resume_backup_schedule"
    assert all(s["outcome"] == "ok" for s in timeline["steps"]) and timeline["recovery_seconds"] > 0
    assert timeline["approvals"]["assess.approve_failover"]["chosen_options"] == ["Approve"]
    assert timeline["approvals"]["repoint_biztalk.update_registry[BTSDR01]"]["responded_by_user"]["name"] == "biztalk-dr drill"

    again, st, _ = run_failover(group, mode="disaster", dry_run=False, confirm_group="DEMO-BTS")
    assert again.state == "success", st
    assert standby_state(group) == after  # nothing restored or backed up twice, the roles record unchanged

    _, st = run_dag("dr_log_shipping")  # its safety schedule fires after the failover
    assert st["find_sets_to_ship"] == st["restore_standby_set_by_set"] == st["check_data_loss_window"] == "skipped"
    # the backup schedule now protects the new primary: a marked log set of every database on SQLDR01
    run, st = run_dag("dr_log_backup")
    assert run.state == "success", st
    logs = query(group.standby, "SELECT COUNT(*) FROM BizTalkMgmtDb.dbo.adm_BackupHistory WHERE BackupType = 'lg' "
                                "AND ServerName = 'SQLDR01' AND SetComplete = 1")
    assert logs == [(len(GROUP),)]

    # the health check now sees the standby site's instance as the primary, backed up on schedule
    run, st = run_dag("dr_health_check")
    assert st["check_instance[primary biztalk_standby]"] == "success" and st["check_backup_schedules"] == "success"
    assert not any(task.startswith("check_instance[standby") for task in st)  # no standby until re-seeded
