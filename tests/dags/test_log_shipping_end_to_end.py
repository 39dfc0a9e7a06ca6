"""dr_log_shipping and dr_standby_reseed run by Airflow (``dag.test()``) between a stand-in primary and a
stand-in standby, through the real ODBC provider and driver: sets shipped, proven and restored set by set,
and the faults an operator must hear about."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.dags.e2e import GROUP, dag_named, query, running_group, states

pytestmark = [pytest.mark.standin, pytest.mark.airflow]


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    with running_group(tmp_path_factory.mktemp("ship"), standby=True) as g:
        yield g


def _run(name: str, **conf):
    run = dag_named(name).test(run_conf=conf or None)
    return run, states(run)


def _backup(kind: str) -> None:
    run, st = _run("dr_full_backup" if kind == "full" else "dr_log_backup")
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
    _backup("full")
    _backup("log")
    _backup("log")
    sets = _complete_sets(group)
    run, st = _run("dr_log_shipping")
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
    run, st = _run("dr_log_shipping")
    assert run.state == "success", st
    assert {p.name: p.stat().st_mtime_ns for p in landing.glob("*.bak")} == before
