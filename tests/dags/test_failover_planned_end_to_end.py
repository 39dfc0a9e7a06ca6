"""A planned switchover (``mode = planned``) run by Airflow against the stand-ins, failing at each step in turn.

Each failure is one an operator meets: a BizTalk session still open on the source, a person who rejects a
step or approves UpdateDatabase.vbs without running it, a connection lost in the middle of a step (injected
into the library the task calls). After each, the same run is triggered again, as after clearing the failed
task (the run id is kept, so the run's own records, such as its final log set, are found again). The end state
must be the one an uninterrupted switchover reaches: every database ONLINE at the final log set's mark, no
database restored twice, one final log set, one full set of the new primary, the backup schedule resumed.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import STANDIN_LOGIN
from tests.dags.e2e import GROUP, query, run_dag, run_failover, running_group
from tests.sqlserver_standin.tds.conftest import odbc_connection_string

pytestmark = [pytest.mark.standin, pytest.mark.airflow]
FORM = {"mode": "planned", "dry_run": False, "confirm_group": "DEMO-BTS"}
RUN_ID = "manual__switchover_rehearsal"


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    with running_group(tmp_path_factory.mktemp("switchover"), standby=True) as g:
        for name in ("dr_full_backup", "dr_log_backup", "dr_log_backup", "dr_log_shipping"):
            run, st = run_dag(name)
            assert run.state == "success", st
        yield g


@pytest.fixture
def same_run(monkeypatch):
    """Every dr_failover run of the test gets one run id: a re-run continues the run, as a cleared task does."""
    from airflow.models.dagrun import DagRun

    monkeypatch.setattr(DagRun, "generate_run_id", classmethod(lambda cls, **kw: RUN_ID))


class Once:
    """Wraps a library function so that its n-th call raises, as a lost connection would; later calls go through."""

    def __init__(self, monkeypatch, owner, name: str, *, on_call: int = 1, when=lambda *a, **k: True) -> None:
        self.real, self.calls, self.on_call, self.when = getattr(owner, name), 0, on_call, when
        monkeypatch.setattr(owner, name, self)
        self.undo = lambda: monkeypatch.setattr(owner, name, self.real)

    def __call__(self, *args, **kwargs):
        if self.when(*args, **kwargs):
            self.calls += 1
            if self.calls == self.on_call:
                raise ConnectionError("injected: the connection to the server was lost")
        return self.real(*args, **kwargs)


def _fails_at(group, task_id: str, actions: dict | None = None) -> dict:
    run, st, _ = run_failover(group, actions, **FORM)
    assert run.state == "failed" and st[task_id] == "failed", {k: v for k, v in st.items() if v != "success"}
    return st


def _reject(ti) -> str:
    return "Reject"


def test_a_switchover_that_fails_at_each_step_and_is_run_again_ends_as_an_uninterrupted_one(group, same_run,
                                                                                            monkeypatch, capfd):
    from biztalk_dr.ops import backup_jobs, failover_jobs, shipping_jobs, site_roles

    roles = group.root / "landing" / ".biztalk-dr" / "roles.json"

    def held() -> bool:
        return roles.exists() and json.loads(roles.read_text()).get("backups_held_by") == RUN_ID

    injected = Once(monkeypatch, failover_jobs, "assess")
    _fails_at(group, "assess.assess_standby")
    injected.undo()
    assert not held()  # nothing was stopped or held before the approval

    injected = Once(monkeypatch, site_roles, "hold_backups")
    _fails_at(group, "stop_source.hold_backup_schedule")
    injected.undo()

    _fails_at(group, "stop_source.stop_biztalk_processing[BTSPRD01]", {r".*stop_biztalk_processing": _reject})
    assert held()
    run, st = run_dag("dr_log_backup")  # the held schedule takes no set while the switchover runs
    assert st["take_log_backup_set"] == "skipped"

    import pyodbc

    biztalk = pyodbc.connect(odbc_connection_string("freetds", group.primary.port, STANDIN_LOGIN,
                                                    group.primary.password, "BizTalkMsgBoxDb"), autocommit=True)
    capfd.readouterr()
    _fails_at(group, "stop_source.check_no_biztalk_sessions")
    assert "uses BizTalkMsgBoxDb" in "".join(capfd.readouterr())
    biztalk.close()  # BizTalk is stopped now

    injected = Once(monkeypatch, backup_jobs, "read_back_new_file", when=lambda cfg, set_id, db: db == "SSODB")
    _fails_at(group, "stop_source.take_final_log_set")  # the set is taken, its verification fails
    injected.undo()
    [(final_id, final_mark)] = query(group.primary, "SELECT TOP (1) BackupSetId, MarkName FROM BizTalkMgmtDb.dbo."
                                                    "adm_BackupHistory ORDER BY BackupSetId DESC")

    injected = Once(monkeypatch, shipping_jobs, "ship_files_of_database", when=lambda cfg, db, ids: db == "SSODB")
    _fails_at(group, "stop_source.ship_final_log_set")
    injected.undo()

    injected = Once(monkeypatch, failover_jobs, "_restore_last", on_call=4)  # three databases recovered, then lost
    _fails_at(group, "recover_databases.restore_to_mark")
    injected.undo()
    online = [db for db, state in query(group.standby, "SELECT name, state_desc FROM sys.databases") if state == "ONLINE" and db in GROUP]
    assert len(online) == 3

    injected = Once(monkeypatch, failover_jobs, "verify_database", when=lambda cfg, db, mark, dry: db == "DemoOrders")
    _fails_at(group, "recover_databases.verify_at_mark[DemoOrders]")
    injected.undo()

    injected = Once(monkeypatch, failover_jobs, "write_update_info")
    _fails_at(group, "repoint_biztalk.generate_update_info")
    injected.undo()

    # from here until force_full_backup the person approves UpdateDatabase.vbs without running it
    no_script = {r"repoint_biztalk\.update_database": lambda ti: "Approve"}
    _fails_at(group, "repoint_biztalk.start_biztalk_services[BTSDR01]", {**no_script, r".*start_biztalk_services": _reject})
    _fails_at(group, "enable_processing.confirm_processing_enabled", {**no_script, r".*confirm_processing_enabled": _reject})

    injected = Once(monkeypatch, failover_jobs, "record_new_roles")
    _fails_at(group, "protect_new_primary.record_new_roles", no_script)
    injected.undo()

    capfd.readouterr()  # the new primary is not backed up while BizTalkMgmtDb names the old servers
    _fails_at(group, "protect_new_primary.force_full_backup", no_script)
    assert "BizTalkMgmtDb.dbo.adm_MessageBox still names SQLPRD01 for BizTalkMsgBoxDb" in "".join(capfd.readouterr())

    injected = Once(monkeypatch, backup_jobs, "read_back_new_file", when=lambda cfg, set_id, db: db == "DemoOrders")
    _fails_at(group, "protect_new_primary.force_full_backup")  # the full set is taken, its verification fails
    injected.undo()

    injected = Once(monkeypatch, site_roles, "release_backups")
    _fails_at(group, "protect_new_primary.resume_backup_schedule")
    injected.undo()
    assert held()

    run, st, _ = run_failover(group, **FORM)
    assert run.state == "success", {k: v for k, v in st.items() if v != "success"}

    # the end state of an uninterrupted switchover
    states_now = dict(query(group.standby, "SELECT name, state_desc FROM sys.databases"))
    assert all(states_now[db] == "ONLINE" for db in GROUP)
    stopped = query(group.standby, "SELECT destination_database_name, stop_at_mark_name FROM msdb.dbo.restorehistory "
                                   "WHERE stop_at_mark_name IS NOT NULL")
    assert sorted(stopped) == sorted((db, final_mark) for db in GROUP)  # each database recovered once, at one mark
    restores = query(group.standby, "SELECT destination_database_name, COUNT(*) FROM msdb.dbo.restorehistory "
                                    "GROUP BY destination_database_name")
    assert len({count for _, count in restores}) == 1  # no database restored a log twice
    newest = query(group.primary, "SELECT MAX(BackupSetId) FROM BizTalkMgmtDb.dbo.adm_BackupHistory")
    assert newest == [(final_id,)]  # one final log set: re-runs verified it instead of taking another
    record = json.loads(roles.read_text())
    assert record["primary_site"] == "standby" and record["mark"] == final_mark and record["mode"] == "planned"
    assert record["backups_held_by"] is None
    fulls = query(group.standby, "SELECT BackupSetId, COUNT(*) FROM BizTalkMgmtDb.dbo.adm_BackupHistory WHERE "
                                 "BackupType = 'db' AND ServerName = 'SQLDR01' AND SetComplete = 1 GROUP BY BackupSetId")
    assert [count for _, count in fulls] == [len(GROUP)]  # one full set of the new primary
