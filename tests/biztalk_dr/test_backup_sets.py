"""Backup history rows as sets; what makes a set usable; which files retention may delete."""

from __future__ import annotations

import datetime as dt

import pytest

from biztalk_dr.domain.backup_sets import (
    HistoryRow,
    group_sets,
    history_rows,
    newest_complete_full,
    newest_restorable_chain,
    set_problems,
)
from biztalk_dr.domain.retention import plan_retention

DBS = ["BizTalkMgmtDb", "BizTalkMsgBoxDb", "SSODB"]
T0 = dt.datetime(2026, 11, 1, 1, 0)


def rows_for(set_id, kind, when, *, dbs=DBS, complete=True, first_id=None):
    mark = f"BTS_{when:%Y_%m_%d_%H_%M_%S}_000"
    word = "Full" if kind == "db" else "Log"
    return [HistoryRow(backup_id=(first_id or set_id * 10) + i, backup_set_id=set_id, mark_name=mark,
                       database_name=db, server_name="SQL1", file_name=f"SQL1_{db}_{word}_{mark}.bak",
                       file_location="\\\\fs\\bk\\", backup_type=kind, backup_time=when, set_complete=complete)
            for i, db in enumerate(dbs)]


def night(start=T0):
    """full at 01:00 day 0, logs every 15 min, full at 01:00 day 1, logs."""
    rows = rows_for(1, "db", start)
    rows += rows_for(2, "lg", start + dt.timedelta(minutes=15))
    rows += rows_for(3, "lg", start + dt.timedelta(minutes=30))
    rows += rows_for(4, "db", start + dt.timedelta(days=1))
    rows += rows_for(5, "lg", start + dt.timedelta(days=1, minutes=15))
    return rows


def test_rows_from_the_database_are_typed_and_paths_joined():
    [row] = history_rows([{"BackupId": 7, "BackupSetId": 3, "MarkName": "BTS_x", "DatabaseName": "SSODB",
                           "ServerName": "SQL1", "BackupFileName": "SQL1_SSODB_Log_BTS_x.bak",
                           "BackupFileLocation": "\\\\fs\\bk", "BackupType": "lg ", "BackupDateTime": T0,
                           "SetComplete": 1}])
    assert row.backup_type == "lg" and row.set_complete is True
    assert row.sql_path == "\\\\fs\\bk\\SQL1_SSODB_Log_BTS_x.bak"
    assert row.base_name == "SQL1_SSODB_Log_BTS_x.bak"


def test_unknown_backup_type_is_an_error_naming_the_row():
    with pytest.raises(ValueError, match="row 7: unknown BackupType 'xx'"):
        history_rows([{"BackupId": 7, "BackupSetId": 3, "MarkName": "m", "DatabaseName": "d", "ServerName": "s",
                       "BackupFileName": "f", "BackupFileLocation": "/b", "BackupType": "xx",
                       "BackupDateTime": T0, "SetComplete": 1}])


def test_rows_group_into_ordered_sets():
    sets = group_sets(reversed(night()))
    assert [(s.set_id, s.kind, len(s.rows)) for s in sets] == [(1, "full", 3), (2, "log", 3), (3, "log", 3),
                                                                 (4, "full", 3), (5, "log", 3)]
    assert sets[1].mark_name == "BTS_2026_11_01_01_15_00_000"
    assert sets[1].as_event()["files"][0] == "\\\\fs\\bk\\SQL1_BizTalkMgmtDb_Log_BTS_2026_11_01_01_15_00_000.bak"


def test_a_complete_set_of_the_group_has_no_problems():
    [bset] = group_sets(rows_for(2, "lg", T0))
    assert set_problems(bset, DBS, file_exists=lambda r: True) == []


def test_partial_set_is_reported_as_not_restorable():
    [bset] = group_sets(rows_for(2, "lg", T0, complete=False))
    assert set_problems(bset, DBS)[0].startswith("set 2 (BTS_2026_11_01_01_00_00_000) is partial (SetComplete = 0)")


def test_missing_extra_and_duplicate_databases_are_named():
    rows = rows_for(2, "lg", T0, dbs=["BizTalkMgmtDb", "SSODB", "ssodb", "Orders"])
    [bset] = group_sets(rows)
    assert set_problems(bset, DBS) == [
        "set 2 has no backup of BizTalkMsgBoxDb",
        "set 2 has 2 backups of SSODB, expected one",
        "set 2 backs up Orders, which the configuration does not list: add it to databases (role: custom) or it "
        "is left behind at failover",
    ]


def test_missing_file_is_named_with_its_path():
    [bset] = group_sets(rows_for(2, "lg", T0))
    problems = set_problems(bset, DBS, file_exists=lambda r: r.database_name != "SSODB")
    assert problems == ["set 2: the backup file of SSODB is missing: "
                        "\\\\fs\\bk\\SQL1_SSODB_Log_BTS_2026_11_01_01_00_00_000.bak"]


def test_newest_chain_skips_a_partial_full():
    rows = night() + rows_for(6, "db", T0 + dt.timedelta(days=2), complete=False)
    sets = group_sets(rows)
    assert newest_complete_full(sets).set_id == 4
    assert [s.set_id for s in newest_restorable_chain(sets)] == [4, 5, 6]


def test_no_complete_full_means_no_chain():
    assert newest_restorable_chain(group_sets(rows_for(2, "lg", T0))) == []


# ---------------------------------------------------------------------------------------------- retention
def decisions_by_set(decisions):
    out = {}
    for d in decisions:
        out.setdefault(d.row.backup_set_id, set()).add((d.delete, d.reason))
    return out


def test_retention_deletes_only_old_superseded_shipped_files():
    sets = group_sets(night())
    now = T0 + dt.timedelta(days=9)
    got = decisions_by_set(plan_retention(sets, now=now, keep_days=7, shipped_and_verified=lambda r: True))
    deleted = {k for k, v in got.items() if any(d for d, _ in v)}
    assert deleted == {1, 2, 3}
    assert got[4] == {(False, "needed by the newest restorable chain (full set 4 and later)")}


def test_retention_keeps_the_newest_chain_even_when_old():
    sets = group_sets(night())
    decisions = plan_retention(sets, now=T0 + dt.timedelta(days=400), keep_days=7, shipped_and_verified=lambda r: True)
    assert all(not d.delete for d in decisions if d.row.backup_set_id >= 4)


def test_retention_keeps_files_without_a_verified_copy():
    sets = group_sets(night())
    decisions = plan_retention(sets, now=T0 + dt.timedelta(days=9), keep_days=7,
                               shipped_and_verified=lambda r: r.database_name != "SSODB")
    kept = [d for d in decisions if d.row.database_name == "SSODB" and d.row.backup_set_id < 4]
    assert kept and all(not d.delete and d.reason == "no verified copy at the standby site yet" for d in kept)


def test_retention_keeps_young_files_and_everything_without_a_complete_full():
    sets = group_sets(night())
    young = plan_retention(sets, now=T0 + dt.timedelta(days=3), keep_days=7, shipped_and_verified=lambda r: True)
    assert not any(d.delete for d in young)
    no_full = group_sets(rows_for(1, "db", T0, complete=False) + rows_for(2, "lg", T0))
    decisions = plan_retention(no_full, now=T0 + dt.timedelta(days=90), keep_days=7, shipped_and_verified=lambda r: True)
    assert {d.reason for d in decisions} == {"no complete full set exists yet: every file may be needed"}


def test_retention_decision_reads_well_in_a_log():
    [bset] = group_sets(rows_for(4, "db", T0))
    [d, *_] = plan_retention([bset], now=T0, keep_days=7, shipped_and_verified=lambda r: True)
    assert str(d) == ("keep \\\\fs\\bk\\SQL1_BizTalkMgmtDb_Full_BTS_2026_11_01_01_00_00_000.bak (set 4, BizTalkMgmtDb): "
                      "needed by the newest restorable chain (full set 4 and later)")
