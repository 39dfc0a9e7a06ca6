"""What crosses dr_failover's task boundaries: typed, read and written in one place, the JSON unchanged."""

from __future__ import annotations

import datetime as dt

from biztalk_dr.domain.log_shipping import StandbyStep
from biztalk_dr.ops.failover_plan import FailoverPlan, FinalLogSet, PlannedDatabase

STEP = StandbyStep(7, "BTS_2026_12_02_06_00_00_000", dt.datetime.min, "SSODB", "SSODB_Log_7.bak", "log")
PLAN = FailoverPlan(mode="disaster", dry_run=False, mark="BTS_2026_12_02_06_00_00_000", set_id=7,
                    set_time="2026-12-02T06:00:00", data_loss_minutes=12.5, source="NOT reachable (gone)",
                    source_reachable=False, already_online=("BizTalkDTADb",), left_out=("BAMPrimaryImport",),
                    standby=("SSODB: RESTORING at set 6",), failed_over=None,
                    databases=(PlannedDatabase("SSODB", 6, (STEP,)),), notes=("a note",), summary="DRY RUN ...")


def test_the_plan_json_has_the_keys_the_tasks_and_the_approval_read():
    data = PLAN.to_json()
    assert list(data) == ["mode", "dry_run", "mark", "set_id", "set_time", "data_loss_minutes", "source",
                          "source_reachable", "already_online", "left_out", "standby", "failed_over", "databases",
                          "notes", "summary"]
    assert data["databases"] == [{"database": "SSODB", "restored_set": 6, "steps": [
        {"set_id": 7, "mark": "BTS_2026_12_02_06_00_00_000", "database": "SSODB", "file": "SSODB_Log_7.bak",
         "action": "log"}]}]
    assert data["left_out"] == ["BAMPrimaryImport"] and data["summary"] == "DRY RUN ..."


def test_the_plan_reads_back_as_it_was_written():
    assert FailoverPlan.from_json(PLAN.to_json()) == PLAN
    assert FailoverPlan.from_json(PLAN.to_json()).databases[0].steps[0].file_name == "SSODB_Log_7.bak"


def test_the_final_log_set_json_and_its_run_record():
    none = FinalLogSet(None, None, "disaster: no final log set")
    assert none.to_json() == {"set_id": None, "mark": None, "said": "disaster: no final log set"}
    taken = FinalLogSet(12, "BTS_1", "final log set 12 taken", verified=True)
    assert taken.to_json() == {"set_id": 12, "mark": "BTS_1", "verified": True, "said": "final log set 12 taken"}
    assert taken.record() == {"set_id": 12, "mark": "BTS_1", "verified": True}
    assert FinalLogSet.from_json(taken.to_json()) == taken
    assert FinalLogSet.from_json(taken.record()) == FinalLogSet(12, "BTS_1", "", verified=True)
