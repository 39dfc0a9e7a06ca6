"""Issue 15's fault matrix, end to end on stand-ins (one running group, shared: every test ends with the group
converged again): each fault is detected, alerted with the right advice (an action it says was taken was
taken), recovered or stopped safely, no file lost, and the next runs converge once the cause is removed. Each
test records its row; the table is printed at the end of the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from sqlserver_standin import faults
from tests.conftest import start_standin
from tests.dags import fault_matrix
from tests.dags.e2e import GROUP, query, run_dag, run_failover, running_group

pytestmark = [pytest.mark.standin, pytest.mark.airflow]

FLIPPED = "shipped log: one byte flipped in the landing folder"
MEDIA = "restore error 3183 on a shipped log whose hash matches"
READ_BACK = "log whose read-back failed at the source (damage_backup)"
DELETED = "landing file deleted"
KILLED = "standby killed mid-restore, restarted"
PRIMARY = "primary unreachable during a log backup"
UNWRITABLE = "landing folder that cannot be written (immutable)"
STATE = "corrupt standby state file"
RECOVERED = "standby database recovered by hand, then a real failover approved"
REJECTED = "failover approval rejected (recorded: who, when)"


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    with running_group(tmp_path_factory.mktemp("faults"), standby=True) as g:
        for name in ("dr_full_backup", "dr_log_backup", "dr_log_backup", "dr_log_shipping"):
            _ok(name)
        yield g


def _ok(name: str, **conf) -> None:
    run, st = run_dag(name, **conf)
    assert run.state == "success", {k: v for k, v in st.items() if v != "success"}


def _landing(group):
    return group.root / "landing"


def _positions(group) -> dict:
    state = json.loads((_landing(group) / ".biztalk-dr" / "standby-state.json").read_text())
    return {n: state["databases"].get(n, {}).get("last_restored_set") for n in GROUP}


def _complete_sets(group) -> list[tuple[int, str]]:
    return query(group.primary, "SELECT DISTINCT BackupSetId, MarkName FROM BizTalkMgmtDb.dbo.adm_BackupHistory "
                                "WHERE SetComplete = 1 ORDER BY BackupSetId")


def _converged(group) -> None:
    """Every standby database RESTORING at the set before the newest complete one, status OK (exit 0)."""
    sets = _complete_sets(group)
    assert _positions(group) == dict.fromkeys(GROUP, sets[-2][0])
    states = dict(query(group.standby, "SELECT name, state_desc FROM sys.databases"))
    assert all(states[db] == "RESTORING" for db in GROUP), states
    status = _status()
    assert status["code"] == 0 and status["health"] == "ok" and status["reachable_mark"] == sets[-1][1], status


def _status() -> dict:
    done = subprocess.run([sys.executable, "-m", "biztalk_dr.cli", "status", "--json"], capture_output=True,
                          text=True, timeout=180, env={**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"})
    assert "Traceback" not in done.stderr, done.stderr
    return {"code": done.returncode, **json.loads(done.stdout)}


def _mail(group, since: int, task: str) -> str:
    bodies = [b for s, b in group.mail.texts()[since:] if task in s]
    assert bodies, [s for s, _ in group.mail.texts()[since:]]
    return bodies[0]


def _advice(body: str) -> str:
    return fault_matrix.advice_line(body)


def _keys(body: str) -> list[str]:
    """The advice table's keys the alert's "What to do" is made of (every part of it from the table)."""
    return fault_matrix.advice_keys(_advice(body))


def _warning(group, since: int, task: str) -> str:
    bodies = [b for s, b in group.mail.texts()[since:] if f"warns at {task}" in s]
    assert bodies, [s for s, _ in group.mail.texts()[since:]]
    return bodies[0]


def _failures(group, since: int) -> list[str]:
    return [s for s, _ in group.mail.texts()[since:] if " failed at " in s]


def _nothing_lost(group) -> None:
    """Every file adm_BackupHistory records is still at the source or shipped and verified at the standby site,
    and every quarantined copy is still kept beside its reason."""
    from biztalk_dr.ops import backup_jobs, shipped_files
    from biztalk_dr.ops.config_files import load_config

    cfg = load_config()
    with backup_jobs.management_server(cfg) as mgmt:
        sets = backup_jobs.read_sets(cfg, mgmt)
    lost = [r.sql_path for s in sets for r in s.rows
            if not backup_jobs.worker_file(cfg, r).is_file() and not shipped_files.row_shipped(cfg, r)]
    assert sets and not lost, lost
    for why in (_landing(group) / "quarantine").glob("*.why.txt"):
        assert why.with_name(why.name.removesuffix(".why.txt")).is_file(), why


def _newest_manifest(group, database: str) -> dict:
    found = [json.loads(p.read_text()) for p in _landing(group).glob(f"*_{database}_*.manifest.json")]
    return max(found, key=lambda m: m["set_id"])


@fault_matrix.fault(FLIPPED)
def test_a_byte_flipped_in_a_shipped_log_is_caught_before_restore_and_copied_again(group):
    held = _newest_manifest(group, "SSODB")  # the held-back set: the next run restores it
    path = _landing(group) / held["file_name"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    _ok("dr_log_backup")
    sent = len(group.mail.messages)
    _ok("dr_log_shipping")  # detected (content hash before restore), quarantined, copied again, restored
    quarantined = list((_landing(group) / "quarantine").glob(held["file_name"] + ".*.why.txt"))
    assert quarantined and "content check before restore failed" in quarantined[0].read_text()
    assert json.loads((_landing(group) / (held["file_name"] + ".manifest.json")).read_text())["verified_at"]
    assert not _failures(group, sent)  # recovered by a second copy: no failure alert, a warning (the disk)
    body = _warning(group, sent, "restore_standby_set_by_set")
    assert held["file_name"] in body and "content check before restore failed" in body
    assert _keys(body) == ["shipped_copy_recopied"]
    _nothing_lost(group)
    _converged(group)
    fault_matrix.record(FLIPPED, detected="content hash before restore", advice=", ".join(_keys(body)),
                        outcome="quarantined; copied again; restored from the second copy (warning)",
                        converged="yes (same run)")


@fault_matrix.fault(MEDIA)
def test_a_restore_error_3183_on_a_file_whose_hash_matches_quarantines_it_and_restores_a_fresh_copy(group):
    held = _newest_manifest(group, "BizTalkMsgBoxDb")  # the held-back set: the next run restores it
    faults.inject(group.standby.data_dir, "restore_damaged", match=held["file_name"], count=1)
    _ok("dr_log_backup")
    sent = len(group.mail.messages)
    try:
        _ok("dr_log_shipping")  # 3183 on the file: quarantined, copied again, restored once more: no failure
    finally:
        faults.clear(group.standby.data_dir)
    [why] = (_landing(group) / "quarantine").glob(held["file_name"] + ".*.why.txt")
    assert why.read_text().startswith("SQL Server error 3183 on restore")
    kept = why.with_name(why.name.removesuffix(".why.txt"))
    assert kept.read_bytes() == (_landing(group) / held["file_name"]).read_bytes()  # the bytes were fine: a read error
    assert not _failures(group, sent)
    body = _warning(group, sent, "restore_standby_set_by_set")
    assert held["file_name"] in body and "3183" in body and _keys(body) == ["shipped_copy_recopied"]
    _nothing_lost(group)
    _converged(group)
    fault_matrix.record(MEDIA, detected="SQL Server 3183 on RESTORE (content hash matched)",
                        advice=", ".join(_keys(body)), outcome="quarantined; copied again; restored once more "
                        "(never retried as it is)", converged="yes (same run)")


@fault_matrix.fault(READ_BACK)
def test_a_log_whose_read_back_failed_at_the_source_is_never_shipped_and_the_standby_waits_for_the_full(group):
    faults.inject(group.primary.data_dir, "damage_backup", mode="corrupt", database="SSODB")
    run, st = run_dag("dr_log_backup")
    assert run.state == "failed" and st["verify_backup_set.read_back_backup_file[SSODB]"] == "failed"
    assert query(group.primary, "SELECT ForceFull FROM BizTalkMgmtDb.dbo.adm_BackupSettings") == [(1,)]
    before = _positions(group)
    sent = len(group.mail.messages)
    run, st = run_dag("dr_log_shipping")
    assert run.state == "failed" and st["ship_database_files[SSODB]"] == "failed"
    body = _mail(group, sent, "ship_database_files")
    assert "failed its read-back when it was taken" in body
    assert _advice(body).startswith("A full backup was requested when the read-back failed; the standby waits")
    assert _keys(body) == ["source_unverified"]
    damaged = [m for m in _landing(group).glob("*SSODB*.manifest.json")
               if json.loads(m.read_text())["set_id"] == _complete_sets(group)[-1][0]]
    assert damaged == []  # never shipped as good
    assert _positions(group) == before  # nothing restored past it
    status = _status()
    assert status["code"] == 0 and status["reachable_set"] == _complete_sets(group)[-2][0]  # the mark before it
    _ok("dr_full_backup")  # the requested full set, then the way back: a re-seed from it
    _ok("dr_log_backup")
    sent = len(group.mail.messages)
    run, st = run_dag("dr_log_shipping")
    assert st["restore_standby_set_by_set"] == "failed"  # the standby cannot go on: it says re-seed
    reseed = _mail(group, sent, "restore_standby_set_by_set")
    assert _keys(reseed) == ["partial_set_blocks"] and "dr_standby_reseed" in _advice(reseed)
    _ok("dr_standby_reseed", dry_run=False, confirm_group="DEMO-BTS")
    _ok("dr_log_shipping")
    _nothing_lost(group)
    _converged(group)
    fault_matrix.record(READ_BACK, detected="read-back record at the standby site",
                        advice=f"{_keys(body)[0]}, then {_keys(reseed)[0]}",
                        outcome="never shipped; full requested at the read-back",
                        converged="yes after the full set and the re-seed advised")


@fault_matrix.fault(DELETED)
def test_a_landing_file_deleted_is_shipped_again_from_the_source(group):
    held = _newest_manifest(group, "BizTalkDTADb")
    (_landing(group) / held["file_name"]).unlink()
    status = _status()  # the mark of that set cannot be reached now: status says the older one
    assert status["reachable_set"] != held["set_id"]
    assert status["code"] == 1 and status["health"] == "critical", status  # the held-back mark is out of reach
    assert any(held["file_name"] in r["reason"] for r in status["reasons"]), status
    _ok("dr_log_backup")
    sent = len(group.mail.messages)
    _ok("dr_log_shipping")
    assert (_landing(group) / held["file_name"]).exists()
    assert not _failures(group, sent)
    body = _warning(group, sent, "ship_database_files")
    assert held["file_name"] in body and _keys(body) == ["shipped_copy_vanished"]
    _nothing_lost(group)
    _converged(group)
    fault_matrix.record(DELETED, detected="manifest without its file (status CRITICAL: no mark reachable; shipping)",
                        advice=", ".join(_keys(body)), outcome="copied again from the source (warning)",
                        converged="yes (next run)")


@fault_matrix.fault(KILLED)
def test_the_standby_killed_mid_restore_and_restarted_converges(group):
    _ok("dr_log_backup")
    _ok("dr_log_backup")
    state = _landing(group) / ".biztalk-dr" / "standby-state.json"
    first = state.stat().st_mtime_ns
    killed = threading.Event()

    def kill_after_first_restore() -> None:
        import time

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and state.stat().st_mtime_ns == first:
            time.sleep(0.05)
        group.standby.process.kill()
        killed.set()

    killer = threading.Thread(target=kill_after_first_restore, daemon=True)
    killer.start()
    sent = len(group.mail.messages)
    try:
        run, st = run_dag("dr_log_shipping")
    finally:
        killer.join(timeout=130)
        group.standby = start_standin(group.root / "standby", "SQLDR01", "biztalk_standby")
    assert killed.is_set() and run.state == "failed" and st["restore_standby_set_by_set"] == "failed"
    body = _mail(group, sent, "restore_standby_set_by_set")
    assert _advice(body).startswith("Check that the standby instance runs")
    assert _keys(body) == ["standby_unreachable"]
    _ok("dr_log_shipping")
    _nothing_lost(group)
    _converged(group)
    fault_matrix.record(KILLED, detected="connection lost during RESTORE", advice=", ".join(_keys(body)),
                        outcome="stopped; the step not recorded", converged="yes (next run: 4326 or applied)")


@fault_matrix.fault(PRIMARY)
def test_the_primary_unreachable_during_a_log_backup_alerts_with_what_to_do(group):
    faults.inject(group.primary.data_dir, "refuse_connections")
    sent = len(group.mail.messages)
    try:
        run, st = run_dag("dr_log_backup")
    finally:
        faults.clear(group.primary.data_dir)
    assert run.state == "failed" and st["take_log_backup_set"] == "failed"
    body = _mail(group, sent, "take_log_backup_set")
    assert "SQL Server error 0" not in body and _advice(body).startswith("Check that the instance (biztalk_primary)")
    assert _keys(body) == ["instance_unreachable"]
    _ok("dr_log_backup")
    _ok("dr_log_shipping")
    _nothing_lost(group)
    _converged(group)
    fault_matrix.record(PRIMARY, detected="connection refused", advice=", ".join(_keys(body)),
                        outcome="no set taken; nothing changed", converged="yes (next run)")


@fault_matrix.fault(UNWRITABLE)
def test_a_landing_folder_that_cannot_be_written_loses_nothing(group):
    landing = _landing(group)
    lock, unlock = _unwritable(landing)
    sent = len(group.mail.messages)
    lock()
    try:
        _ok("dr_log_backup")
        run, st = run_dag("dr_log_shipping")
    finally:
        unlock()
    assert run.state == "failed" and all(st[f"ship_database_files[{db}]"] == "failed" for db in GROUP)
    body = _mail(group, sent, "ship_database_files")
    assert "cannot be written to the landing folder" in body
    assert _advice(body).startswith("Nothing was lost: the primary keeps every backup file")
    newest = _complete_sets(group)[-1][0]
    [(n,)] = query(group.primary, f"SELECT COUNT(*) FROM BizTalkMgmtDb.dbo.adm_BackupHistory WHERE BackupSetId = {newest}")
    assert n == len(GROUP)
    assert _keys(body) == ["landing_unwritable"] and str(landing) in _advice(body)
    # nothing requested that is not needed: a landing folder that cannot take files breaks no chain
    assert query(group.primary, "SELECT ForceFull FROM BizTalkMgmtDb.dbo.adm_BackupSettings") == [(0,)]
    _nothing_lost(group)
    _ok("dr_log_shipping")
    _converged(group)
    fault_matrix.record(UNWRITABLE, detected="EPERM writing the copy", advice=", ".join(_keys(body)),
                        outcome="nothing shipped, nothing lost, no full requested", converged="yes (next run)")


def _unwritable(folder):
    """(make ``folder`` refuse new files, undo it): immutable (chattr +i) where the file system and privileges
    allow it, else read-only permissions (which root ignores: then the test cannot make the fault here)."""
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
        return (lambda: subprocess.run(["chattr", "+i", str(folder)], check=True),
                lambda: subprocess.run(["chattr", "-i", str(folder)], check=True))
    if os.geteuid() != 0:
        mode = folder.stat().st_mode
        return lambda: folder.chmod(0o555), lambda: folder.chmod(mode)
    pytest.skip("neither chattr +i nor read-only permissions can make the landing folder refuse files here (root on "
                "a file system without immutable flags)")


@fault_matrix.fault(STATE)
def test_a_corrupt_standby_state_file_is_rebuilt_by_a_reseed(group):
    path = _landing(group) / ".biztalk-dr" / "standby-state.json"
    path.write_text("{ this is not json")
    status = _status()
    assert status["code"] == 1 and status["health"] == "critical"
    assert "standby state cannot be read" in status["reasons"][0]["reason"]
    sent = len(group.mail.messages)
    run, st = run_dag("dr_log_shipping")
    assert run.state == "failed"
    body = _mail(group, sent, "dr_log_shipping")
    assert "a re-seed does not need the old file" in _advice(body)
    assert _keys(body) == ["standby_state_unreadable"]
    _ok("dr_standby_reseed", dry_run=False, confirm_group="DEMO-BTS")
    assert list(path.parent.glob("standby-state.json.unreadable-*"))  # kept aside, not deleted
    _ok("dr_log_shipping")
    _nothing_lost(group)
    _converged(group)
    fault_matrix.record(STATE, detected="state file unreadable (status CRITICAL)", advice=", ".join(_keys(body)),
                        outcome="stopped; the re-seed advised rebuilds the state (old file kept aside)",
                        converged="yes after the re-seed the advice names")


def _standby_databases(group) -> dict:
    return dict(query(group.standby, "SELECT name, state_desc FROM sys.databases"))


@fault_matrix.fault(RECOVERED, REJECTED)
def test_a_standby_database_recovered_by_hand_refuses_a_real_failover_with_nothing_recovered(group, capfd):
    _ok("dr_log_backup")
    _ok("dr_log_shipping")
    # the standby changes after the approval: right before the first WITH RECOVERY it is checked again
    recover = {r"assess\.approve_failover": lambda ti: (query(group.standby, "RESTORE DATABASE [BizTalkDTADb] "
                                                                              "WITH RECOVERY"), "Approve")[1]}
    sent = len(group.mail.messages)
    run, st, _ = run_failover(group, recover, mode="disaster", dry_run=False, confirm_group="DEMO-BTS")
    assert st["recover_databases.restore_to_mark"] == "failed" and run.state == "failed"
    changed = _mail(group, sent, "recover_databases.restore_to_mark")
    assert _keys(changed) == ["failover_changed_since_approval"]
    out = "".join(capfd.readouterr())
    assert "the standby changed since the approval" in out and "BizTalkDTADb: ONLINE without the mark" in out
    after = _standby_databases(group)
    assert all(after[db] == "RESTORING" for db in GROUP if db != "BizTalkDTADb"), after  # nothing recovered
    status = _status()
    assert status["code"] == 1 and status["health"] == "critical"
    assert any("BizTalkDTADb: ONLINE without the mark" in r["reason"] for r in status["reasons"])
    # triggered again: refused at the assessment, before the approval, nothing changed
    sent = len(group.mail.messages)
    run, st, answers = run_failover(group, mode="disaster", dry_run=False, confirm_group="DEMO-BTS")
    assert st["assess.assess_standby"] == "failed" and not answers
    body = _mail(group, sent, "assess.assess_standby")
    assert _advice(body).startswith("Nothing was changed. Fix the named databases")
    assert _keys(body) == ["failover_refused"] and "BizTalkDTADb" in body
    assert _standby_databases(group) == after
    # a rejected approval is recorded, who and when
    sent = len(group.mail.messages)
    run, st, _ = run_failover(group, {r"assess\.approve_failover": lambda ti: "Reject"}, mode="disaster",
                              leave_out="BizTalkDTADb")
    assert st["assess.approve_failover"] == "failed"
    rejection = _mail(group, sent, "assess.approve_failover")
    assert _keys(rejection) == ["failover_rejected"] and "Reject by biztalk-dr drill at " in rejection
    [timeline] = [json.loads(p.read_text()) for p in (_landing(group) / ".biztalk-dr" / "failover").glob(
        "*/timeline.json") if json.loads(p.read_text())["run_id"] == run.run_id]
    rejected = timeline["approvals"]["assess.approve_failover"]
    assert rejected["outcome"] == "rejected" and rejected["responded_by_user"]["name"] == "biztalk-dr drill"
    assert rejected["responded_at"]  # when
    assert timeline["left_out"] == ["BizTalkDTADb"]
    assert _standby_databases(group) == after  # a rejection changes nothing
    _ok("dr_standby_reseed", dry_run=False, confirm_group="DEMO-BTS")
    _ok("dr_log_shipping")
    _nothing_lost(group)
    _converged(group)
    fault_matrix.record(RECOVERED, detected="re-check right before the first WITH RECOVERY; then the assessment",
                        advice=f"{_keys(changed)[0]}, then {_keys(body)[0]}", outcome="refused; nothing recovered",
                        converged="yes after the re-seed")
    fault_matrix.record(REJECTED, detected="the approval's answer", advice=", ".join(_keys(rejection)),
                        outcome="stopped at the approval; who and when in the timeline; nothing changed",
                        converged="yes after the re-seed")
