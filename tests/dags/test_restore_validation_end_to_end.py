"""dr_restore_validation run by Airflow (``dag.test()``) on a stand-in validation instance, from the files log
shipping put at the standby site: a full validation, and the failures it exists to find."""

from __future__ import annotations

import json

import pytest

from sqlserver_standin import faults
from tests.dags import fault_matrix
from tests.dags.e2e import GROUP, query, run_dag, running_group

pytestmark = [pytest.mark.standin, pytest.mark.airflow]


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    with running_group(tmp_path_factory.mktemp("validate"), standby=True, validation=True) as g:
        yield g


def _ok(name: str, **conf) -> None:
    run, st = run_dag(name, **conf)
    assert run.state == "success", st


def _report(group, run) -> dict:
    [path] = (group.root / "landing" / ".biztalk-dr" / "validation").glob(
        run.run_id.replace(":", "_").replace("+", "_") + "/report.json")
    return json.loads(path.read_text())


def _validation_databases(group) -> list[str]:
    return [name for (name,) in query(group.validation, "SELECT name FROM sys.databases") if name.startswith("drv_")]


def test_a_full_validation_restores_every_database_to_the_same_mark_and_reports_timings(group):
    for name in ("dr_full_backup", "dr_log_backup", "dr_log_backup", "dr_log_shipping"):
        _ok(name)
    run, st = run_dag("dr_restore_validation")
    assert run.state == "success", st
    assert all(st[f"check_validation_database[{db}]"] == "success" for db in GROUP)
    assert st["drop_validation_databases"] == "success" and _validation_databases(group) == []
    report = _report(group, run)
    [(mark,)] = query(group.primary, "SELECT TOP (1) MarkName FROM BizTalkMgmtDb.dbo.adm_BackupHistory "
                                     "WHERE BackupType = 'lg' ORDER BY BackupSetId DESC")
    assert report["passed"] and report["mark"] == mark and report["mark_age_minutes"] < 10
    assert [d["database"] for d in report["databases"]] == GROUP
    for db in report["databases"]:
        assert db["restored_as"] == "drv_" + db["database"] and db["bytes"] > 0
        assert [s["type"] for s in db["steps"]] == ["FULL", "LOG", "LOG"] and all(s["seconds"] >= 0 for s in db["steps"])
        assert {c["name"] for c in db["checks"] if c["ok"]} == {
            "DBCC CHECKDB WITH NO_INFOMSGS", "ONLINE", "restored to the mark", "BizTalk sanity query"}
    assert report["group_restore_seconds"] == pytest.approx(sum(d["seconds"] for d in report["databases"]), abs=0.01)
    markdown = (group.root / "landing" / ".biztalk-dr" / "validation").glob("*/report.md")
    assert any(f"proved mark: **{mark}**" in p.read_text() for p in markdown)
    history = query(group.validation, "SELECT destination_database_name, stop_at_mark_name FROM msdb.dbo.restorehistory "
                                      "WHERE stop_at_mark_name IS NOT NULL")
    assert sorted(history) == sorted(("drv_" + db, mark) for db in GROUP)  # one mark for all


def test_a_byte_flipped_in_a_shipped_log_is_caught_before_any_restore_and_copied_again(group):
    manifests = [json.loads(p.read_text()) for p in (group.root / "landing").glob("*SSODB*.manifest.json")]
    newest = max((m for m in manifests if m["backup_type"] == "lg"), key=lambda m: m["set_id"])  # what it proves
    path = group.root / "landing" / newest["file_name"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    sent = len(group.mail.messages)
    run, st = run_dag("dr_restore_validation")
    assert run.state == "success", st  # the damaged copy never reached RESTORE: a fresh one did
    assert _report(group, run)["passed"] and _validation_databases(group) == []
    [why] = (group.root / "landing" / "quarantine").glob(newest["file_name"] + ".*.why.txt")
    assert "dr_restore_validation: content check before restore failed" in why.read_text()
    assert why.with_name(why.name.removesuffix(".why.txt")).read_bytes() == bytes(data)  # kept for inspection
    again = json.loads((group.root / "landing" / (newest["file_name"] + ".manifest.json")).read_text())
    assert again["blake3"] == newest["blake3"] and path.read_bytes() != bytes(data)  # the source's bytes again
    [body] = [b for s, b in group.mail.texts()[sent:] if "warns at plan_validation" in s]
    assert newest["file_name"] in body and fault_matrix.advice_keys(fault_matrix.advice_line(body)) == [
        "shipped_copy_recopied"]
    assert not [s for s, _ in group.mail.texts()[sent:] if " failed at " in s]


def test_a_restore_error_3183_on_a_file_whose_hash_matches_is_quarantined_copied_again_and_restored(group):
    manifests = [json.loads(p.read_text()) for p in (group.root / "landing").glob("*BizTalkDTADb*.manifest.json")]
    newest = max((m for m in manifests if m["backup_type"] == "lg"), key=lambda m: m["set_id"])
    faults.inject(group.validation.data_dir, "restore_damaged", match=newest["file_name"], count=1)
    sent = len(group.mail.messages)
    try:
        run, st = run_dag("dr_restore_validation")
    finally:
        faults.clear(group.validation.data_dir)
    assert run.state == "success", st  # the second restore, of a fresh copy, worked
    assert _report(group, run)["passed"]
    [why] = (group.root / "landing" / "quarantine").glob(newest["file_name"] + ".*.why.txt")
    assert why.read_text().startswith("dr_restore_validation: SQL Server error 3183 on restore")
    [body] = [b for s, b in group.mail.texts()[sent:] if "warns at restore_validation_database" in s]
    assert newest["file_name"] in body and fault_matrix.advice_keys(fault_matrix.advice_line(body)) == [
        "shipped_copy_recopied"]
    assert _validation_databases(group) == []


def test_a_corrupt_database_fails_the_run_is_named_in_the_report_and_cleanup_still_runs(group):
    faults.inject(group.primary.data_dir, "corrupt_database", database="BizTalkDTADb")
    try:
        for name in ("dr_full_backup", "dr_log_backup", "dr_log_backup", "dr_log_shipping"):
            run_dag(name)  # the damage travels into the backups
    finally:
        faults.clear(group.primary.data_dir)
    sent = len(group.mail.messages)
    run, st = run_dag("dr_restore_validation")
    assert run.state == "failed"
    assert st["check_validation_database[BizTalkDTADb]"] == "failed"
    assert st["check_validation_database[SSODB]"] == "success"
    assert st["drop_validation_databases"] == "success" and _validation_databases(group) == []
    report = _report(group, run)
    [dta] = [d for d in report["databases"] if d["database"] == "BizTalkDTADb"]
    assert not report["passed"] and not dta["ok"]
    assert any(c["name"].startswith("DBCC CHECKDB") and not c["ok"] for c in dta["checks"])
    bodies = [b for s, b in group.mail.texts()[sent:] if "failed at write_validation_report" in s]
    assert bodies and "BizTalkDTADb" in bodies[0] and "report" in bodies[0]


def test_a_missing_shipped_log_fails_before_anything_is_restored_with_the_gap_named(group):
    for name in ("dr_full_backup", "dr_log_backup", "dr_log_backup", "dr_log_backup", "dr_log_shipping"):
        _ok(name)
    manifests = sorted((json.loads(p.read_text()) for p in (group.root / "landing").glob("*SSODB*.manifest.json")),
                       key=lambda m: m["set_id"])
    middle = manifests[-2]  # a log set between the newest full set and the newest log set
    assert middle["backup_type"] == "lg"
    (group.root / "landing" / middle["file_name"]).rename(group.root / "moved-away.bak")
    sent = len(group.mail.messages)
    try:
        run, st = run_dag("dr_restore_validation")
    finally:
        (group.root / "moved-away.bak").rename(group.root / "landing" / middle["file_name"])
    assert run.state == "failed" and st["plan_validation"] == "failed"
    assert st["drop_validation_databases"] in ("skipped", "upstream_failed")  # nothing was restored
    assert _validation_databases(group) == []
    [body] = [b for s, b in group.mail.texts()[sent:] if "failed at plan_validation" in s]
    assert "SSODB" in body and str(middle["first_lsn"]) in body  # the missing LSN range is named


def test_leftovers_of_another_run_and_too_little_space_are_refused_with_the_numbers(group, capfd):
    query(group.validation, "CREATE DATABASE [drv_SSODB]")
    try:
        run, st = run_dag("dr_restore_validation")
        assert run.state == "failed" and st["plan_validation"] == "failed"
        assert "drv_SSODB: another validation run is active" in "".join(capfd.readouterr())
    finally:
        query(group.validation, "DROP DATABASE [drv_SSODB]")
    assert _validation_databases(group) == []


def test_the_validation_instance_down_fails_the_run_and_alerts(group):
    group.validation.stop()
    sent = len(group.mail.messages)
    run, st = run_dag("dr_restore_validation")
    assert run.state == "failed" and st["plan_validation"] == "failed"
    assert any("failed at plan_validation" in s for s, _ in group.mail.texts()[sent:])
