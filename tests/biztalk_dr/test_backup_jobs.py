"""The backup jobs' rules a DAG applies: the retention-only switch."""

from __future__ import annotations

import pytest

from biztalk_dr import backup_jobs


@pytest.mark.parametrize(("params", "dry"), [
    ({"retention_dry_run": True}, True), ({"retention_dry_run": False}, False),
    # a run conf of before the switch had its own name: dry_run meant "retention only" in dr_full_backup
    ({"retention_dry_run": False, "dry_run": True}, True), ({"retention_dry_run": True, "dry_run": False}, False),
])
def test_the_retention_switch_reads_its_own_name_and_an_old_run_conf(params, dry):
    assert backup_jobs.retention_dry_run(params) is dry
