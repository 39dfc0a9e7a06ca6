"""dr_log_shipping and dr_standby_reseed run by Airflow (``dag.test()``) between a stand-in primary and a
stand-in standby, through the real ODBC provider and driver: sets shipped, proven and restored set by set,
and the faults an operator must hear about."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import start_standin
from tests.dags.e2e import GROUP, query, run_dag, running_group

pytestmark = [pytest.mark.standin, pytest.mark.airflow]


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    with running_group(tmp_path_factory.mktemp("ship"), standby=True) as g:
        yield g


def _backup(kind: str) -> None:
    run, st = run_dag("dr_full_backup" if kind == "full" else "dr_log_backup")
    assert run.state == "success", st


def _complete_sets(group) -> list[tuple[int, str]]:
    return query(group.primary, "SELECT DISTINCT BackupSetId, MarkName FROM BizTalkMgmtDb.dbo.adm_BackupHistory "
                                "WHERE SetComplete = 1 ORDER BY BackupSetId")


def _standby_positions(group) -> dict[str, int | None]:
    state = json.loads((group.root / "landing" / ".biztalk-dr" / "standby-state.json").read_text())
    return {name: state["databases"].get(name, {}).get("last_restored_set") for name in GROUP}


def _status() -> dict:
    """``biztalk-dr status --json`` as monitoring runs it: its own process, the report alone on stdout."""
    done = subprocess.run([sys.executable, "-m", "biztalk_dr.cli", "status", "--json"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"})
    assert "Traceback" not in done.stderr, done.stderr
    return {"code": done.returncode, **json.loads(done.stdout)}


def test_sets_are_shipped_proven_and_restored_up_to_the_set_before_the_newest(group):
    # a new group: nothing backed up or shipped yet is not an incident, within rpo.first_full_set_grace_minutes
    status = _status()
    assert status["code"] == 0 and status["health"] == "waiting", status
    assert status["waiting"].startswith("waiting for the first full set: no complete full backup set at the source")
    run, st = run_dag("dr_log_shipping")
    assert run.state == "success" and st["check_data_loss_window"] == "skipped", st

    _backup("full")
    _backup("log")
    _backup("log")
    sets = _complete_sets(group)
    run, st = run_dag("dr_log_shipping")
    assert run.state == "success", st
    assert st["fail_if_any_step_failed"] == "skipped"
    assert all(st[f"ship_database_files[{db}]"] == "success" for db in GROUP)

    landing = group.root / "landing"
    manifests = [json.loads(p.read_text()) for p in landing.glob("*.manifest.json")]
    assert len(manifests) == 3 * len(GROUP) and all(m["verified_at"] for m in manifests)
    assert {m["set_id"] for m in manifests} == {s for s, _ in sets}

    # every standby database RESTORING at the set before the newest; the newest is held back for failover
    assert _standby_positions(group) == dict.fromkeys(GROUP, sets[-2][0])
    standby_dbs = dict(query(group.standby, "SELECT name, state_desc FROM sys.databases"))
    assert all(standby_dbs[db] == "RESTORING" for db in GROUP)
    history = query(group.standby, "SELECT destination_database_name, restore_type FROM msdb.dbo.restorehistory "
                                   "ORDER BY restore_history_id")
    assert sorted(history) == sorted([(db, "D") for db in GROUP] + [(db, "L") for db in GROUP])
    assert history[:len(GROUP)] == [(db, "D") for db in GROUP]  # set by set: every full before any log
    # files relocated WITH MOVE to the standby's data_path (BizTalk's own log shipping cannot)
    placed = query(group.standby, "SELECT d.name, f.physical_name FROM sys.master_files AS f "
                                  "JOIN sys.databases AS d ON d.database_id = f.database_id WHERE d.database_id > 4")
    assert {name for name, _ in placed} == set(GROUP)
    assert all(path.startswith(str(group.root / "standby-data")) for _, path in placed), placed

    status = _status()
    assert status["code"] == 0 and status["health"] == "ok"
    assert status["reachable_mark"] == sets[-1][1]
    restored = {d["name"]: d["restored_set"] for d in status["databases"]}
    assert restored == dict.fromkeys(GROUP, sets[-2][0])
    assert all(d["shipped_set"] == sets[-1][0] and d["data_loss_seconds"] < 600 for d in status["databases"])

    # a re-run ships nothing again and changes nothing
    before = {p.name: p.stat().st_mtime_ns for p in landing.glob("*.bak")}
    run, st = run_dag("dr_log_shipping")
    assert run.state == "success", st
    assert {p.name: p.stat().st_mtime_ns for p in landing.glob("*.bak")} == before


def _mails(group, since: int) -> list[tuple[str, str]]:
    return group.mail.texts()[since:]


def test_a_partial_set_is_never_shipped_and_the_standby_waits_for_a_full_set_and_a_reseed(group):
    _backup("log")
    [(newest,)] = query(group.primary, "SELECT MAX(BackupSetId) FROM BizTalkMgmtDb.dbo.adm_BackupHistory")
    # as BizTalk records a set where one database's backup failed: the others were backed up
    query(group.primary, f"UPDATE BizTalkMgmtDb.dbo.adm_BackupHistory SET SetComplete = 0 WHERE BackupSetId = {newest}")
    query(group.primary, f"DELETE FROM BizTalkMgmtDb.dbo.adm_BackupHistory WHERE BackupSetId = {newest} "
                         "AND DatabaseName = N'BizTalkDTADb'")
    _backup("log")
    sent = len(group.mail.messages)
    run, st = run_dag("dr_log_shipping")
    assert run.state == "success", st  # no full set since the partial one yet: nothing to do but wait
    shipped_sets = {json.loads(p.read_text())["set_id"] for p in (group.root / "landing").glob("*.manifest.json")}
    assert newest not in shipped_sets and newest + 1 in shipped_sets
    # stopped before the partial set, and the log set before it held back (issue 15): restoring it would pass the
    # newest mark a failover can still reach; status says that mark, and WARNs that the newest one is out of reach
    assert _standby_positions(group) == dict.fromkeys(GROUP, newest - 2)
    status = _status()
    assert status["code"] == 1 and status["health"] == "warn" and status["reachable_set"] == newest - 1, status
    assert any(f"set {newest} between the standby and the mark is partial" in r["reason"] for r in status["reasons"])

    _backup("full")
    _backup("log")
    run, st = run_dag("dr_log_shipping")
    assert run.state == "failed" and st["restore_standby_set_by_set"] == "failed"
    [body] = [b for s, b in _mails(group, sent) if "restore_standby_set_by_set" in s]
    assert f"set {newest} " in body and "is partial" in body and "dr_standby_reseed" in body, body
    reseed, st = run_dag("dr_standby_reseed", dry_run=False, confirm_group="DEMO-BTS")
    assert reseed.state == "success", st
    sets = _complete_sets(group)
    assert _standby_positions(group) == dict.fromkeys(GROUP, sets[-2][0])


def test_the_standby_down_for_a_while_then_back_catches_up_in_order(group):
    group.standby.stop()
    sent = len(group.mail.messages)
    try:
        _backup("log")
        run, st = run_dag("dr_log_shipping")
        assert run.state == "failed"
        assert st["restore_standby_set_by_set"] == "failed" and st["fail_if_any_step_failed"] == "failed"
        assert all(st[f"ship_database_files[{db}]"] == "success" for db in GROUP)  # shipping does not need it
        _backup("log")
    finally:
        group.standby = start_standin(group.root / "standby", "SQLDR01", "biztalk_standby")
    assert any("restore_standby_set_by_set" in subject for subject, _ in _mails(group, sent))
    run, st = run_dag("dr_log_shipping")
    assert run.state == "success", st
    sets = _complete_sets(group)
    assert _standby_positions(group) == dict.fromkeys(GROUP, sets[-2][0])
    logs = query(group.standby, "SELECT destination_database_name, backup_set_id FROM msdb.dbo.restorehistory "
                                "WHERE restore_type = 'L' ORDER BY restore_history_id")
    for db in GROUP:
        applied = [b for name, b in logs if name == db]
        assert applied == sorted(applied)  # in order, none twice


def test_a_standby_database_recovered_by_hand_stops_restores_until_reseeded(group):
    query(group.standby, "RESTORE DATABASE [SSODB] WITH RECOVERY")  # someone "tested" the standby
    _backup("log")
    sent = len(group.mail.messages)
    run, st = run_dag("dr_log_shipping")
    assert run.state == "failed" and st["restore_standby_set_by_set"] == "failed"
    [body] = [b for s, b in _mails(group, sent) if "restore_standby_set_by_set" in s]
    assert "SQL Server error 3117" in body and "SSODB" in body and "dr_standby_reseed" in body
    positions = _standby_positions(group)
    assert len(set(positions.values())) <= 2  # the databases before SSODB in that set went on; none went past it

    dry, st = run_dag("dr_standby_reseed")
    assert dry.state == "success", st
    refused, st = run_dag("dr_standby_reseed", dry_run=False, confirm_group="wrong")
    assert refused.state == "failed" and st["reseed_standby"] == "upstream_failed"
    reseed, st = run_dag("dr_standby_reseed", dry_run=False, confirm_group="DEMO-BTS")
    assert reseed.state == "success", st
    standby_dbs = dict(query(group.standby, "SELECT name, state_desc FROM sys.databases"))
    assert all(standby_dbs[db] == "RESTORING" for db in GROUP)
    run, st = run_dag("dr_log_shipping")
    assert run.state == "success", st
    assert _standby_positions(group) == dict.fromkeys(GROUP, _complete_sets(group)[-2][0])


def test_the_data_loss_window_warns_then_fails_at_the_configured_thresholds(group):
    sent = len(group.mail.messages)
    shift = "UPDATE BizTalkMgmtDb.dbo.adm_BackupHistory SET BackupDateTime = DATEADD(minute, {}, BackupDateTime)"
    query(group.primary, shift.format(-45))  # as if no set had been taken for 45 minutes (warn at 30)
    try:
        run, st = run_dag("dr_log_shipping")
        assert run.state == "success" and st["check_data_loss_window"] == "success", st
        [warning] = [b for s, b in _mails(group, sent) if "warns at check_data_loss_window" in s]
        assert "WARNING: data-loss window 4" in warning and "warn at 30 min, critical at 60 min" in warning
        query(group.primary, shift.format(-30))  # 75 minutes: critical at 60
        run, st = run_dag("dr_log_shipping")
        assert run.state == "failed" and st["check_data_loss_window"] == "failed", st
        [critical] = [b for s, b in _mails(group, sent) if "failed at check_data_loss_window" in s]
        assert "CRITICAL: data-loss window 7" in critical and "What to do: Check dr_log_backup" in critical
        assert _status()["code"] == 1
    finally:
        query(group.primary, shift.format(75))


def test_a_log_backup_taken_outside_biztalk_is_a_gap_caught_before_any_restore(group):
    query(group.primary, "BACKUP LOG [DemoOrders] TO DISK = N'" + str(group.root / "elsewhere.trn") + "'")
    _backup("log")
    sent = len(group.mail.messages)
    run, st = run_dag("dr_log_shipping")
    assert run.state == "failed" and st["ship_database_files[DemoOrders]"] == "failed"
    [body] = [b for s, b in _mails(group, sent) if "ship_database_files" in s]
    assert "the chain has a gap" in body and "dr_standby_reseed" in body
    assert list((group.root / "landing" / "quarantine").glob("*DemoOrders*"))
    forced = query(group.primary, "SELECT ForceFull FROM BizTalkMgmtDb.dbo.adm_BackupSettings")
    assert forced == [(1,)]
    # the way back: the requested full set is shipped although the gap set never will be, then a re-seed
    _backup("full")
    _backup("log")
    run, st = run_dag("dr_log_shipping")
    assert st["ship_database_files[DemoOrders]"] == "failed"  # still reports the gap ...
    reseed, st = run_dag("dr_standby_reseed", dry_run=False, confirm_group="DEMO-BTS")
    assert reseed.state == "success", st  # ... but the full set behind it was shipped, so the re-seed can run
    run, st = run_dag("dr_log_shipping")
    assert run.state == "success", st
    assert _standby_positions(group) == dict.fromkeys(GROUP, _complete_sets(group)[-2][0])
