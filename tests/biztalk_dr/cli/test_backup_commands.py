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
