"""``biztalk-dr backup-info`` and ``biztalk-dr plan`` as an operator at the standby site runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from biztalk_dr.cli import main
from tests.conftest import SHARED_BACKUPS

pytestmark = pytest.mark.skipif(not SHARED_BACKUPS.is_dir(), reason=f"{SHARED_BACKUPS} not available")
STOP_AT = SHARED_BACKUPS / "sql2008-backups" / "StopAt"


def test_backup_info_json_lists_every_set_with_path(capsys):
    assert main(["backup-info", str(SHARED_BACKUPS / "compressed"), "--json"]) == 0
    sets = json.loads(capsys.readouterr().out)
    assert [(s["database_name"], s["position"], s["compressed"]) for s in sets] == [
        ("SharePoint_Config", 1, True), ("SharePoint_Config", 1, True), ("SharePoint_Config", 2, True)]
    assert all(s["path"].endswith(".bak") and isinstance(s["first_lsn"], int) for s in sets)


def test_backup_info_table_reports_bad_files_on_stderr_and_exits_2(tmp_path, capsys):
    (tmp_path / "broken.trn").write_bytes((STOP_AT / "StopAt_1.trn").read_bytes()[:5000])
    assert main(["backup-info", str(STOP_AT / "StopAt_1.trn"), str(tmp_path / "broken.trn"),
                 str(tmp_path / "missing.bak")]) == 2
    out, err = capsys.readouterr()
    assert "StopAt" in out and "19000000018300001" in out and "StopAt_1.trn" in out
    errors = err.strip().splitlines()
    assert len(errors) == 2
    assert errors[0].startswith(f"error: {tmp_path / 'broken.trn'}: file truncated")
    assert errors[1] == f"error: {tmp_path / 'missing.bak'}: no such file"


def test_plan_json_has_the_issue_shape(capsys):
    assert main(["plan", str(STOP_AT), "--database", "StopAt", "--stop-at-lsn", "19000000019000001", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["database"] == "StopAt" and plan["target"] == "lsn:19000000019000001"
    assert [(s["backup_type"], s["with"][-2:]) for s in plan["steps"]] == [
        ("FULL", ["FILE = 1", "NORECOVERY"]), ("LOG", ["FILE = 1", "NORECOVERY"]),
        ("LOG", ["RECOVERY", "STOPATMARK = N'lsn:19000000019000001'"])]
    assert {"paths", "backup_type", "first_lsn", "last_lsn", "with"} <= set(plan["steps"][0])


def test_plan_that_cannot_reach_the_target_exits_1_with_the_reason(capsys):
    assert main(["plan", str(STOP_AT), "--database", "StopAt", "--stop-at", "2021-01-01T00:00:00"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cannot plan: ") and "StopAt_23.trn" in err


def test_plan_for_a_database_not_in_the_files(capsys):
    assert main(["plan", str(STOP_AT), "--database", "BizTalkMsgBoxDb"]) == 1
    assert "BizTalkMsgBoxDb" in capsys.readouterr().err


def test_the_installed_command_never_prints_a_traceback(tmp_path):
    (tmp_path / "random.bak").write_bytes(bytes(range(256)) * 10)
    done = subprocess.run([sys.executable, "-m", "biztalk_dr.cli", "backup-info", str(tmp_path), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and json.loads(done.stdout) == []
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1 and "random.bak" in done.stderr
    bad_arg = subprocess.run([sys.executable, "-m", "biztalk_dr.cli", "plan", str(tmp_path), "--database", "x",
                              "--stop-at-lsn", "12ab"], capture_output=True, text=True, timeout=60)
    assert bad_arg.returncode == 2 and "is not an LSN" in bad_arg.stderr and "Traceback" not in bad_arg.stderr


def test_backup_info_json_shows_each_sets_identity(capsys):
    """RESTORE HEADERONLY's identity columns: FamilyGUID, BindingID, RecoveryForkID, FirstRecoveryForkID,
    ForkPointLSN, DifferentialBaseGUID/LSN, BackupSetGUID; IsCopyOnly null where a file does not tell it."""
    assert main(["backup-info", str(SHARED_BACKUPS / "DoubleDiffing"), "--json"]) == 0
    sets = {s["path"].rsplit("/", 1)[1]: s for s in json.loads(capsys.readouterr().out)}
    full, diff = sets["difftest-full.bak"], sets["difftest-diff2.bak"]
    assert diff["differential_base_guid"] == full["backup_set_guid"] and diff["differential_base_lsn"] == full["first_lsn"]
    assert full["family_guid"] == diff["family_guid"] == full["recovery_fork_id"] == full["first_recovery_fork_id"]
    assert full["fork_point_lsn"] is None and full["copy_only"] is None and full["database_guid"]
    assert main(["backup-info", str(SHARED_BACKUPS / "backuppassword"), "--json"]) == 0
    (restored,) = json.loads(capsys.readouterr().out)
    assert restored["branch_parent_id"] and restored["branch_lsn"] == 20000000024300001  # a restored copy's fork


def test_a_fifo_socket_or_device_in_a_folder_is_passed_over_with_a_note_never_opened(tmp_path, capsys):
    """Opening a FIFO for reading blocks until a writer comes: the scan must not open it (it used to hang)."""
    import os
    import socket
    import threading

    (tmp_path / "StopAt_1.trn").write_bytes((STOP_AT / "StopAt_1.trn").read_bytes())
    os.mkfifo(tmp_path / "pipe.bak")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(tmp_path / "sock.trn"))
    results: list[int] = []
    worker = threading.Thread(target=lambda: results.append(main(["backup-info", str(tmp_path), "--json"])),
                              daemon=True)
    worker.start()
    worker.join(timeout=30)
    unix.close()
    assert results == [0], "the scan blocked on the FIFO"
    out, err = capsys.readouterr()
    assert [s["database_name"] for s in json.loads(out)] == ["StopAt"]
    assert f"note: {tmp_path / 'pipe.bak'}: a FIFO (named pipe), not a regular file: not read" in err
    assert f"note: {tmp_path / 'sock.trn'}: a socket, not a regular file: not read" in err
    results.clear()
    worker = threading.Thread(target=lambda: results.append(main(["backup-info", str(tmp_path / "pipe.bak")])),
                              daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert results == [2], "reading a FIFO named on the command line blocked"
    assert "a FIFO (named pipe), not a regular file: not read" in capsys.readouterr().err
    devnull = main(["backup-info", "/dev/zero"])  # a device file named on the command line: refused, not read
    assert devnull == 2 and "a device file, not a regular file" in capsys.readouterr().err


def test_plan_to_a_mark_by_name_from_biztalk_file_names_and_after(tmp_path, capsys):
    """BizTalk names each log backup after the mark written just before it (<server>_<db>_Log_<mark>): copies of the
    real StopAt logs named so, one name used twice."""
    for name, mark in (("StopAt_1", "BTS_2020_05_12_13_29_00_000"), ("StopAt_2", "BTS_2020_05_12_13_30_00_000"),
                       ("StopAt_21", "BTS_2020_05_12_13_30_00_000")):
        (tmp_path / f"{name}_SQL2008_StopAt_Log_{mark}.trn").write_bytes((STOP_AT / f"{name}.trn").read_bytes())
    (tmp_path / "StopAt.bak").write_bytes((STOP_AT / "StopAt.bak").read_bytes())
    assert main(["plan", str(tmp_path), "--database", "StopAt", "--stop-at-mark", "BTS_2020_05_12_13_29_00_000",
                 "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [s["with"][1:] for s in plan["steps"]] == [
        ["NORECOVERY"], ["RECOVERY", "STOPATMARK = N'BTS_2020_05_12_13_29_00_000'"]]
    assert main(["plan", str(tmp_path), "--database", "StopAt", "--stop-at-mark", "BTS_2020_05_12_13_30_00_000"]) == 1
    err = capsys.readouterr().err
    assert "is used more than once" in err and "StopAt_2_" in err and "StopAt_21_" in err and "--after" in err
    assert main(["plan", str(tmp_path), "--database", "StopAt", "--stop-at-mark", "BTS_2020_05_12_13_30_00_000",
                 "--after", "2020-05-12T13:31:00", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["steps"][-1]["paths"][0].endswith("StopAt_21_SQL2008_StopAt_Log_BTS_2020_05_12_13_30_00_000.trn")
    assert plan["steps"][-1]["with"][-1] == "STOPATMARK = N'BTS_2020_05_12_13_30_00_000' AFTER N'2020-05-12T13:31:00.000'"
    assert main(["plan", str(tmp_path), "--database", "StopAt", "--after", "2020-05-12T13:31:00"]) == 2
    assert "--after qualifies --stop-at-mark" in capsys.readouterr().err


def test_plan_follows_the_recovery_fork_asked_for(tmp_path, capsys):
    """The 2008 RestoreTimeClean and its 2016 restored copy in one folder: one family, two recovery forks."""
    for folder in ("RestoreTimeClean", "restoretimeclean2016"):
        for path in (SHARED_BACKUPS / folder).iterdir():
            (tmp_path / f"{folder}_{path.name}").write_bytes(path.read_bytes())
    assert main(["plan", str(tmp_path), "--database", "RestoreTimeClean", "--json"]) == 0
    latest = json.loads(capsys.readouterr().out)
    assert all("restoretimeclean2016_" in s["paths"][0] for s in latest["steps"])
    old_fork = next(s for s in json.loads(_info(capsys, tmp_path / "RestoreTimeClean_RestoreTimeClean.bak")))
    assert main(["plan", str(tmp_path), "--database", "RestoreTimeClean", "--recovery-fork",
                 "{" + old_fork["recovery_fork_id"].upper() + "}", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["recovery_fork_id"] == old_fork["recovery_fork_id"]
    assert all("/RestoreTimeClean_" in s["paths"][0] for s in plan["steps"])


def _info(capsys, path) -> str:
    assert main(["backup-info", str(path), "--json"]) == 0
    return capsys.readouterr().out
