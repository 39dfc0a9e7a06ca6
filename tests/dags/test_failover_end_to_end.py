"""dr_failover run by Airflow (``dag.test()``, the approvals answered as an operator would) against a stand-in
primary and standby kept in step by dr_log_shipping: bad forms stopped before any server is touched, a dry run
that changes nothing, a real disaster failover to one mark, and a re-run that changes nothing more."""

from __future__ import annotations

import json

import pytest

from tests.dags.e2e import GROUP, dag_named, query, running_group, states

pytestmark = [pytest.mark.standin, pytest.mark.airflow]
APPROVALS = r".*(approve_failover|confirm_biztalk_repointed|confirm_processing_enabled)$"


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    with running_group(tmp_path_factory.mktemp("failover"), standby=True) as g:
        for name in ("dr_full_backup", "dr_log_backup", "dr_log_backup", "dr_log_backup", "dr_log_shipping"):
            run = dag_named(name).test()
            assert run.state == "success", states(run)
        yield g


def _failover(**conf):
    run = dag_named("dr_failover").test(run_conf=conf, mark_success_pattern=APPROVALS)
    return run, states(run)


def _standby(group) -> dict:
    return {"databases": dict(query(group.standby, "SELECT name, state_desc FROM sys.databases")),
            "restores": query(group.standby, "SELECT COUNT(*) FROM msdb.dbo.restorehistory")[0][0],
            "roles": (group.root / "landing" / ".biztalk-dr" / "roles.json").exists()}


def _newest_mark(group) -> str:
    [(mark,)] = query(group.primary, "SELECT TOP (1) MarkName FROM BizTalkMgmtDb.dbo.adm_BackupHistory "
                                     "WHERE BackupType = 'lg' AND SetComplete = 1 ORDER BY BackupSetId DESC")
    return mark


def test_bad_forms_stop_before_any_server_is_touched(group, capfd):
    before = _standby(group)
    run, st = _failover(mode="disaster", dry_run=False, confirm_group="wrong-group")
    assert run.state == "failed" and st["assess.check_request"] == "failed" and st["assess.assess_standby"] == "upstream_failed"
    assert "confirm_group: a real failover needs the group's name typed exactly ('DEMO-BTS')" in "".join(capfd.readouterr())
    run, st = _failover(mode="disaster", target_mark="BTS_2020_01_01_00_00_00_000")
    assert run.state == "failed" and st["assess.assess_standby"] == "failed"
    assert "mark BTS_2020_01_01_00_00_00_000 is not in the backup history" in "".join(capfd.readouterr())
    run, st = _failover(mode="disaster", target_mark="not a mark")
    assert st["assess.check_request"] == "failed"
    assert _standby(group) == before


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(group, capfd):
    before = _standby(group)
    run, st = _failover(mode="disaster")
    assert run.state == "success", st
    out = "".join(capfd.readouterr())
    assert f"WITH STOPATMARK = N'{_newest_mark(group)}', RECOVERY" in out and "DRY RUN" in out
    assert _standby(group) == before and all(before["databases"][db] == "RESTORING" for db in GROUP)


def test_a_disaster_failover_brings_every_database_online_at_one_mark_and_a_rerun_changes_nothing(group):
    mark = _newest_mark(group)
    group.primary.stop()  # the primary site is lost
    run, st = _failover(mode="disaster", dry_run=False, confirm_group="DEMO-BTS")
    assert run.state == "success", st
    assert all(st[f"recover_databases.verify_at_mark[{db}]"] == "success" for db in GROUP)
    after = _standby(group)
    assert all(after["databases"][db] == "ONLINE" for db in GROUP)
    stopped = query(group.standby, "SELECT destination_database_name, stop_at_mark_name FROM msdb.dbo.restorehistory "
                                   "WHERE stop_at_mark_name IS NOT NULL")
    assert sorted(stopped) == sorted((db, mark) for db in GROUP)
    roles = json.loads((group.root / "landing" / ".biztalk-dr" / "roles.json").read_text())
    assert roles["primary_site"] == "standby" and roles["mark"] == mark
    assert list((group.root / "landing" / ".biztalk-dr" / "failover").glob("*/SampleUpdateInfo.xml"))
    [timeline] = [json.loads(p.read_text()) for p in (group.root / "landing" / ".biztalk-dr" / "failover").glob(
        "*/timeline.json") if json.loads(p.read_text())["run_id"] == run.run_id]
    assert [s["step"] for s in timeline["steps"]][:2] == ["assess.assess_standby", "recover_databases.restore_to_mark"]
    assert all(s["outcome"] == "ok" for s in timeline["steps"]) and timeline["recovery_seconds"] > 0
    assert set(timeline["approvals"]) == {"assess.approve_failover", "repoint_biztalk.confirm_biztalk_repointed",
                                          "confirm_processing_enabled"}

    again, st = _failover(mode="disaster", dry_run=False, confirm_group="DEMO-BTS")
    assert again.state == "success", st
    assert _standby(group) == after  # nothing restored twice, the roles record unchanged

    shipping = dag_named("dr_log_shipping").test()  # its safety schedule fires after the failover
    st = states(shipping)
    assert st["find_sets_to_ship"] == st["restore_standby_set_by_set"] == st["check_data_loss_window"] == "skipped"
    assert _standby(group) == after  # the new primary is left alone
