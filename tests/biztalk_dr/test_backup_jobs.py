"""The backup jobs' rules a DAG applies: the retention-only switch."""

from __future__ import annotations

import pytest

from biztalk_dr.ops import backup_jobs


@pytest.mark.parametrize(("params", "dry"), [
    ({"retention_dry_run": True}, True), ({"retention_dry_run": False}, False),
    # a run conf of before the switch had its own name: dry_run meant "retention only" in dr_full_backup
    ({"retention_dry_run": False, "dry_run": True}, True), ({"retention_dry_run": True, "dry_run": False}, False),
])
def test_the_retention_switch_reads_its_own_name_and_an_old_run_conf(params, dry):
    assert backup_jobs.retention_dry_run(params) is dry


class _RecordingServer:
    """Records the statements sent, as the management server would receive them."""

    def __init__(self):
        self.sent: list[str] = []

    def run(self, sql, params=(), *, kind=None):
        self.sent.append(sql)


def _cfg():
    from pathlib import Path

    from biztalk_dr.ops.config_files import load_config

    return load_config(Path(__file__).resolve().parents[2] / "include" / "config" / "example_group.yaml")


def test_an_error_while_taking_a_set_requests_a_full_backup_then_goes_on():
    server = _RecordingServer()
    with pytest.raises(ZeroDivisionError), backup_jobs.full_backup_requested_on_failure(_cfg(), server):
        raise ZeroDivisionError
    assert len(server.sent) == 1 and "sp_ForceFullBackup" in server.sent[0] and "BizTalkMgmtDb" in server.sent[0]


def test_a_set_taken_without_error_requests_nothing():
    server = _RecordingServer()
    with backup_jobs.full_backup_requested_on_failure(_cfg(), server):
        pass
    assert server.sent == []


def test_the_forced_full_rule_is_written_once():
    """No DAG or module but backup_jobs requests a full backup in an except handler: the rule is
    backup_jobs.full_backup_requested_on_failure."""
    import ast

    from tests.conftest import product_files

    offenders = []
    for path in product_files(but=("backup_jobs.py",)):
        for handler in ast.walk(ast.parse(path.read_text())):
            if isinstance(handler, ast.ExceptHandler):
                offenders += [f"{path.name}:{n.lineno}" for n in ast.walk(handler)
                              if isinstance(n, ast.Attribute) and n.attr == "request_full_backup"]
    assert offenders == []


def test_a_retention_result_says_what_it_did_or_would_do():
    real = backup_jobs.RetentionResult(deleted=["a.bak", "b.bak"], kept=3, bytes_freed=3 * 1024**2)
    assert real.summary() == "deleted 2 file(s), 3.0 MB; kept 3"
    assert real.as_xcom() == {"dry_run": False, "files": ["a.bak", "b.bak"], "kept": 3, "bytes": 3 * 1024**2}
    dry = backup_jobs.RetentionResult(dry_run=True, would_delete=["a.bak"], kept=1, bytes_freed=1024**2 // 2)
    assert dry.summary() == "would delete 1 file(s), 0.5 MB; kept 1"
    assert dry.as_xcom() == {"dry_run": True, "files": ["a.bak"], "kept": 1, "bytes": 1024**2 // 2}


def test_a_preflight_report_logs_its_actions_then_its_checks():
    report = backup_jobs.PreflightReport(checks=["BizTalkMgmtDb ONLINE, FULL"], actions=["Agent job disabled"])
    assert report.lines == ["Agent job disabled", "BizTalkMgmtDb ONLINE, FULL"]
