"""The failover's classification of standby databases and its refusal, as pure functions."""

from __future__ import annotations

import datetime as dt

from biztalk_dr.domain.backup_sets import BackupSet, HistoryRow
from biztalk_dr.ops.failover import StandbyObservation, assess_failover
from biztalk_dr.ops.standby_state import DatabaseState, StandbyState

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


# --------------------------------------------------------------------- the restore planner's rules (issue 16)
L = 10**15


def _headers(**ranges):
    """The shipped files' headers, by file name: ``SQL1_<db>_<set>.bak`` -> (first, last[, fork])."""
    from tests.biztalk_dr.test_restore_planner_rules import hdr

    by_set = {1: ("FULL", 10 * L, 12 * L, "f0"), 2: ("LOG", 10 * L, 20 * L, "f0"), 3: ("LOG", 20 * L, 30 * L, "f0")}
    by_set.update({int(k.removeprefix("set")): v for k, v in ranges.items()})
    known = {f"SQL1_{db}_{n}.bak": hdr(f"/landing/SQL1_{db}_{n}.bak", kind, first, last, fork=fork, db=db, minutes=n)
             for db in DBS for n, (kind, first, last, fork) in by_set.items()}
    return lambda row: known.get(row.base_name)


AT_SET_2 = StandbyState({db: DatabaseState(2, SETS[1].mark_name, 20 * L) for db in DBS})


def test_the_planner_confirms_the_chain_from_where_each_database_stands_to_the_mark():
    result = assess_failover(SETS, AT_SET_2, DBS, lambda r: True, observed=_observed(), headers=_headers())
    assert result.ok and result.mark == SETS[2].mark_name
    assert {db.database: [s.set_id for s in db.steps] for db in result.databases} == {db: [3] for db in DBS}


def test_a_log_backup_taken_outside_the_sets_is_a_gap_the_set_order_alone_cannot_see():
    """Someone backed the log up by hand between set 2 and set 3 (LSN 20-25, not in adm_BackupHistory): every set is
    complete and shipped, but set 3's log starts at 25 and the standby stands at 20: the mark cannot be reached."""
    gap = _headers(set3=("LOG", 25 * L, 30 * L, "f0"))
    result = assess_failover(SETS, AT_SET_2, DBS, lambda r: True, observed=_observed(), headers=gap)
    assert not result.ok and result.mark == SETS[2].mark_name
    assert all(not s.can_reach for s in result.standings)
    assert all(str(20 * L) in p and "SQL1_" in p for p in result.problems[:len(DBS)]), result.problems


def test_a_log_of_another_recovery_branch_is_never_planned_onto_the_standby():
    """The standby stands on branch f-new (restored from the new primary's files); set 3's log in the history is of
    the old branch over the same LSNs (a failover's two branches): SQL Server would refuse it (4330)."""
    other = _headers(set1=("FULL", 10 * L, 12 * L, "f-new"), set2=("LOG", 10 * L, 20 * L, "f-new"),
                     set3=("LOG", 20 * L, 30 * L, "f-old"))
    result = assess_failover(SETS, AT_SET_2, DBS, lambda r: True, observed=_observed(), headers=other)
    assert not result.ok
    assert all("recovery fork f-new" in p for p in result.problems[:len(DBS)]), result.problems


def test_a_shipped_file_whose_header_cannot_be_had_refuses_rather_than_promises():
    none = _headers()
    result = assess_failover(SETS, AT_SET_2, DBS, lambda r: True, observed=_observed(),
                             headers=lambda r: None if r.backup_set_id == 3 else none(r))
    assert not result.ok and all("header of SQL1_" in p for p in result.problems[:len(DBS)]), result.problems


def test_a_mark_reached_only_by_leaving_a_branch_at_its_fork_point_is_refused_not_restored_whole():
    """Set 3's log runs on past the point where set 4's branch forked off (LSN 25): the planner stops it there
    (STOPBEFOREMARK), which the failover's whole-log restores cannot: refused, naming the fork point."""
    from tests.biztalk_dr.test_restore_planner_rules import hdr

    sets = [*SETS, _set(4, "log")]
    known = {f"SQL1_{db}_{n}.bak": h for db in DBS for n, h in (
        (2, hdr(f"/l/SQL1_{db}_2.bak", "LOG", 10 * L, 20 * L, db=db)),
        (3, hdr(f"/l/SQL1_{db}_3.bak", "LOG", 20 * L, 30 * L, db=db, minutes=3)),
        (4, hdr(f"/l/SQL1_{db}_4.bak", "LOG", 25 * L, 40 * L, fork="f1", parent="f0", point=25 * L, db=db,
                minutes=4)))}
    result = assess_failover(sets, AT_SET_2, DBS, lambda r: True, observed=_observed(), target_mark=sets[3].mark_name,
                             headers=lambda r: known.get(r.base_name))
    assert not result.ok, result
    assert all(f"'lsn:{25 * L}'" in p for p in result.problems), result.problems
