"""The failover's classification of standby databases and its refusal, as pure functions."""

from __future__ import annotations

import datetime as dt

from biztalk_dr.backup_sets import BackupSet, HistoryRow
from biztalk_dr.failover import StandbyObservation, assess_failover
from biztalk_dr.standby_state import DatabaseState, StandbyState

DBS = ["BizTalkMgmtDb", "BizTalkDTADb", "SSODB"]
T0 = dt.datetime(2026, 11, 25, 3, 0)


def _set(set_id: int, kind: str) -> BackupSet:
    mark = f"BTS_2026_11_25_03_{set_id:02d}_00_000"
    rows = tuple(HistoryRow(set_id * 10 + i, set_id, mark, db, "SQL1", f"SQL1_{db}_{set_id}.bak", "X:\\b",
                            "db" if kind == "full" else "lg", T0 + dt.timedelta(minutes=set_id), True)
                 for i, db in enumerate(DBS))
    return BackupSet(set_id, mark, kind, T0 + dt.timedelta(minutes=set_id), True, rows)  # type: ignore[arg-type]


SETS = [_set(1, "full"), _set(2, "log"), _set(3, "log")]
STATE = StandbyState({db: DatabaseState(2, SETS[1].mark_name, 100) for db in DBS})


def _observed(**states) -> dict:
    return {db: StandbyObservation(db, *(states.get(db, ("RESTORING", None)))) for db in DBS}


def test_every_database_restoring_reaches_the_newest_mark():
    result = assess_failover(SETS, STATE, DBS, lambda r: True, observed=_observed(), required=DBS[:1])
    assert result.ok and result.mark == SETS[2].mark_name
    assert {s.kind for s in result.standings} == {"restoring"} and len(result.databases) == 3


def test_a_database_recovered_by_hand_refuses_the_failover_naming_it():
    result = assess_failover(SETS, STATE, DBS, lambda r: True, observed=_observed(BizTalkDTADb=("ONLINE", None)))
    assert not result.ok
    assert any(p.startswith("BizTalkDTADb: ONLINE without the mark") for p in result.problems), result.problems
    [dta] = [s for s in result.standings if s.database == "BizTalkDTADb"]
    assert dta.kind == "online_without_mark" and not dta.can_reach


def test_online_at_the_mark_is_a_rerun_and_fine():
    mark = SETS[2].mark_name
    result = assess_failover(SETS, STATE, DBS, lambda r: True,
                             observed={db: StandbyObservation(db, "ONLINE", mark) for db in DBS})
    assert result.ok and result.mark == mark and result.databases == ()


def test_leave_out_names_a_database_explicitly_and_never_the_management_database():
    observed = _observed(BizTalkDTADb=("ONLINE", None))
    result = assess_failover(SETS, STATE, DBS, lambda r: True, observed=observed, leave_out=["BizTalkDTADb"],
                             required=DBS[:1])
    assert result.ok and result.left_out == ("BizTalkDTADb",)
    refused = assess_failover(SETS, STATE, DBS, lambda r: True, observed=_observed(BizTalkMgmtDb=("ONLINE", None)),
                              leave_out=["BizTalkMgmtDb"], required=DBS[:1])
    assert not refused.ok and any("cannot be left out" in p for p in refused.problems)


def test_a_missing_or_suspect_database_or_an_unshipped_log_cannot_reach_the_mark():
    result = assess_failover(SETS, STATE, DBS, lambda r: True, observed=_observed(SSODB=(None, None),
                                                                                   BizTalkDTADb=("SUSPECT", None)))
    kinds = {s.database: s.kind for s in result.standings}
    assert not result.ok and kinds["SSODB"] == "missing" and kinds["BizTalkDTADb"] == "other"
    # the newest log of SSODB not shipped: the older mark is the one every database reaches
    older = assess_failover(SETS, StandbyState({db: DatabaseState(1, SETS[0].mark_name, 1) for db in DBS}), DBS,
                            lambda r: not (r.database_name == "SSODB" and r.backup_set_id == 3), observed=_observed())
    assert older.ok and older.mark == SETS[1].mark_name
