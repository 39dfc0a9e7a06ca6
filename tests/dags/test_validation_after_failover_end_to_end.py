"""After a failover the landing folder holds the old primary's backups and, once the new primary is backed up
and shipped, the new primary's — two recovery branches of every database, same names and FamilyGUIDs, whose
LSNs overlap. dr_restore_validation (the restore planner) must prove the new primary's mark from it, and
`biztalk-dr plan` must follow the new branch, never a log of the old one."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.dags.e2e import GROUP, dag_named, query, run_dag, run_failover, running_group, states

pytestmark = [pytest.mark.standin, pytest.mark.airflow]


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    with running_group(tmp_path_factory.mktemp("failover-validate"), standby=True, validation=True) as g:
        for name in ("dr_full_backup", "dr_log_backup", "dr_log_backup", "dr_log_shipping"):
            run = dag_named(name).test()
            assert run.state == "success", states(run)
        yield g


def _ship_new_primary_backups(group, landing: Path) -> int:
    """What log shipping does once the old site is the standby again: each backup file of the new primary copied
    into the landing folder, verified, with its manifest (the product's own shipping copy and manifest)."""
    from biztalk_dr.ops.manifest import Manifest, write_manifest
    from biztalk_dr.ops.shipping_copy import ship_file

    rows = query(group.standby, "SELECT BackupSetId, MarkName, DatabaseName, BackupType, BackupFileName, "
                                "BackupFileLocation, BackupDateTime FROM BizTalkMgmtDb.dbo.adm_BackupHistory "
                                "WHERE ServerName = 'SQLDR01' AND SetComplete = 1")
    for set_id, mark, database, kind, file_name, location, when in rows:
        source = Path(location) / file_name
        copied = ship_file(source, landing)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        digests = {"sha256": None, "blake3": None, copied.algorithm: copied.digest}
        write_manifest(landing, Manifest(file_name, copied.size, digests["sha256"], int(set_id), mark, database, kind,
                                         None, None, str(source), now, verified_at=now, backup_time=str(when),
                                         blake3=digests["blake3"]))
    return len(rows)


@pytest.fixture(scope="module")
def failed_over(group):
    """The primary lost, dr_failover run, the new primary backed up (its forced full set, then a marked log set)
    and its files shipped into the landing folder beside the old primary's."""
    old_files = {p.name for p in (group.root / "landing").glob("SQLPRD01_*")}
    group.primary.stop()
    run, st, _ = run_failover(group, mode="disaster", dry_run=False, confirm_group="DEMO-BTS")
    assert run.state == "success", st
    run, st = run_dag("dr_log_backup")
    assert run.state == "success", st
    landing = group.root / "landing"
    assert _ship_new_primary_backups(group, landing) == 2 * len(GROUP)
    [(mark,)] = query(group.standby, "SELECT TOP (1) MarkName FROM BizTalkMgmtDb.dbo.adm_BackupHistory WHERE "
                                     "BackupType = 'lg' AND ServerName = 'SQLDR01' ORDER BY BackupSetId DESC")
    assert old_files and old_files <= {p.name for p in landing.iterdir()}  # the old branch is still there
    return landing, mark


def test_plan_follows_the_new_primarys_branch_in_a_folder_holding_both(failed_over, capsys):
    from biztalk_dr.cli import main

    landing, mark = failed_over
    capsys.readouterr()
    for database in GROUP:
        code = main(["plan", str(landing), "--database", database, "--stop-at-mark", mark, "--json"])
        out, err = capsys.readouterr()
        assert code == 0, err
        plan = json.loads(out)
        used = [Path(s["paths"][0]).name for s in plan["steps"]]
        assert all(name.startswith("SQLDR01_") for name in used), used  # none of the old branch's logs
        assert plan["steps"][-1]["with"][-1] == f"STOPATMARK = N'{mark}'"
        assert main(["plan", str(landing), "--database", database, "--json"]) == 0
        latest = json.loads(capsys.readouterr().out)
        assert latest["recovery_fork_id"] == plan["recovery_fork_id"]  # latest is the new branch too


def test_sets_from_the_manifests_are_one_primarys_in_a_folder_holding_both(failed_over):
    """With the source unreachable (status, a disaster failover's assessment) the sets come from the manifests:
    the old primary's as the configuration names it, the new primary's once the roles say it is the primary —
    never a set holding both servers' files, though their BizTalk set ids overlap or follow on."""
    from biztalk_dr.ops.config_files import load_config
    from biztalk_dr.ops.shipping_jobs import sets_from_manifests
    from biztalk_dr.ops.site_roles import acting_config

    cfg = load_config()
    for config, server in ((cfg, "SQLPRD01"), (acting_config(cfg), "SQLDR01")):
        sets = sets_from_manifests(config)
        assert sets and all(r.file_name.startswith(f"{server}_") and r.server_name == server
                            for s in sets for r in s.rows), [(s.set_id, [r.file_name for r in s.rows]) for s in sets]
    new_ids = [s.set_id for s in sets_from_manifests(acting_config(cfg))]
    assert new_ids == sorted(new_ids) and all(s.complete for s in sets_from_manifests(acting_config(cfg)))


def test_restore_validation_plans_and_restores_the_new_primarys_mark_from_the_folder(group, failed_over):
    """restore_validation's own planning (choose_set, plan_database over the landed headers) on the new primary's history and the
    landing folder holding both branches, and its statements run on the validation instance."""
    from biztalk_dr.domain import restore_validation
    from biztalk_dr.ops import backup_jobs, shipped_files, validation_jobs
    from biztalk_dr.ops.config_files import load_config
    from biztalk_dr.ops.sqlserver import SqlServer

    landing, mark = failed_over
    cfg = load_config()
    with SqlServer("biztalk_standby") as new_primary:
        sets = backup_jobs.read_sets(cfg, new_primary)
    chosen, full = restore_validation.choose_set(sets, lambda r: shipped_files.row_shipped(cfg, r))
    assert chosen.mark_name == mark
    try:
        for database in GROUP:
            plan = validation_jobs.plan_database(cfg, database, chosen, full, sets, landing)
            assert all(name.startswith("SQLDR01_") for step in plan.steps for name in step.file_names)
            for step in plan.steps:
                query(group.validation, step.statement)
        history = query(group.validation, "SELECT destination_database_name, stop_at_mark_name FROM "
                                          "msdb.dbo.restorehistory WHERE stop_at_mark_name IS NOT NULL")
        assert sorted(history) == sorted(("drv_" + db, mark) for db in GROUP)
        states = dict(query(group.validation, "SELECT name, state_desc FROM sys.databases"))
        assert all(states["drv_" + db] == "ONLINE" for db in GROUP)
    finally:
        for (name,) in query(group.validation, "SELECT name FROM sys.databases"):  # the DAG refuses leftovers
            if name.startswith("drv_"):
                query(group.validation, f"DROP DATABASE [{name}]")


def test_the_validation_dag_after_a_failover_proves_the_new_primarys_mark(group, failed_over):
    landing, mark = failed_over
    [(before,)] = query(group.validation, "SELECT ISNULL(MAX(restore_history_id), 0) FROM msdb.dbo.restorehistory")
    run, st = run_dag("dr_restore_validation")
    assert run.state == "success", st
    # this run's restores (msdb keeps the history of the test above's restores after their databases are dropped)
    history = query(group.validation, "SELECT destination_database_name, stop_at_mark_name FROM msdb.dbo.restorehistory "
                                      f"WHERE stop_at_mark_name IS NOT NULL AND restore_history_id > {int(before)}")
    assert sorted(history) == sorted(("drv_" + db, mark) for db in GROUP)
