"""Restore plans from backup headers: the right files, in order, with the right WITH options, and
precise reasons when the target cannot be reached."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from biztalk_dr.backup_files.headers import BackupSetHeader
from biztalk_dr.errors import RestorePlanError
from biztalk_dr.restore_planner import Target, plan_restore

T0 = dt.datetime(2026, 11, 24, 1, 0)
L = 10**15  # one virtual log file in SQL Server's decimal LSN


def header(path, kind, first, last, *, ckpt=None, base=0, minutes=0, db="BizTalkMsgBoxDb", position=1,
           media=None, family=(1, 1), copy_only=False):
    start = T0 + dt.timedelta(minutes=minutes)
    return BackupSetHeader(
        path=path, position=position, database_name=db, server_name="SQLPRD01", backup_type=kind,
        first_lsn=first, last_lsn=last, checkpoint_lsn=ckpt if ckpt is not None else first, database_backup_lsn=base,
        backup_start_date=start, backup_finish_date=start + dt.timedelta(seconds=30),
        database_creation_date=dt.datetime(2026, 1, 1), compressed=False, software_version="16.0.1000",
        media_set_id=media or f"media-{path}", family_count=family[1], family_sequence=family[0], copy_only=copy_only)


FULL = header("full.bak", "FULL", 40 * L, 42 * L, ckpt=41 * L)
DIFF = header("diff.bak", "DIFF", 60 * L, 62 * L, ckpt=61 * L, base=41 * L, minutes=60)
LOGS = [header(f"log{i}.trn", "LOG", (20 + 10 * i) * L, (30 + 10 * i) * L, base=41 * L, minutes=15 * i)
        for i in range(1, 6)]  # log1 30-40 (before the full), log2 40-50 ... log5 70-80


def paths(plan):
    return [tuple(s.backup.paths) for s in plan.steps]


def test_latest_uses_the_full_the_newest_differential_and_the_logs_after_it():
    plan = plan_restore([FULL, DIFF, *LOGS], "BizTalkMsgBoxDb")
    assert paths(plan) == [("full.bak",), ("diff.bak",), ("log4.trn",), ("log5.trn",)]
    assert [s.with_options() for s in plan.steps] == [
        ["FILE = 1", "NORECOVERY"], ["FILE = 1", "NORECOVERY"], ["FILE = 1", "NORECOVERY"], ["FILE = 1", "RECOVERY"]]
    assert plan.reaches_lsn == 80 * L


def test_stop_at_an_lsn_ends_with_stopatmark_on_the_log_that_holds_it():
    plan = plan_restore([FULL, DIFF, *LOGS], "BizTalkMsgBoxDb", Target(lsn=55 * L + 7))
    assert paths(plan) == [("full.bak",), ("log2.trn",), ("log3.trn",)]  # the differential passes the target
    assert plan.steps[-1].with_options() == ["FILE = 1", "RECOVERY", f"STOPATMARK = N'lsn:{55 * L + 7}'"]
    assert plan.steps[-1].statement("BizTalkMsgBoxDb") == (
        f"RESTORE LOG [BizTalkMsgBoxDb] FROM DISK = N'log3.trn' WITH FILE = 1, RECOVERY, "
        f"STOPATMARK = N'lsn:{55 * L + 7}'")


def test_stop_at_a_time_ends_with_stopat_on_the_first_log_finished_after_it():
    when = T0 + dt.timedelta(minutes=50)
    plan = plan_restore([FULL, DIFF, *LOGS], "BizTalkMsgBoxDb", Target(time=when))
    assert paths(plan) == [("full.bak",), ("log2.trn",), ("log3.trn",), ("log4.trn",)]
    assert plan.steps[-1].with_options()[-1] == "STOPAT = N'2026-11-24T01:50:00.000'"


def test_a_gap_names_the_lsn_range_and_the_files_on_both_sides():
    with pytest.raises(RestorePlanError) as err:
        plan_restore([FULL, LOGS[1], LOGS[3], LOGS[4]], "BizTalkMsgBoxDb")
    assert err.value.problems == [
        f"gap in the log chain: log2.trn ends at LSN {50 * L}, the next log backup log4.trn starts at LSN {60 * L}; "
        f"the log backups covering LSN {50 * L} to {60 * L} are missing (2 later log backup(s) cannot be used)"]


def test_a_chain_that_ends_before_the_target_says_so():
    with pytest.raises(RestorePlanError, match=rf"the log chain ends at LSN {80 * L} with log5.trn .* before the "
                                               rf"target LSN {90 * L}: a later log backup is missing"):
        plan_restore([FULL, *LOGS], "BizTalkMsgBoxDb", Target(lsn=90 * L))


def test_an_older_full_with_an_unbroken_chain_reaches_what_the_newest_cannot():
    newer_full = header("full2.bak", "FULL", 70 * L, 72 * L, ckpt=71 * L, minutes=70)
    plan = plan_restore([FULL, newer_full, *LOGS], "BizTalkMsgBoxDb", Target(lsn=65 * L))
    assert paths(plan)[0] == ("full.bak",)
    assert any("full2.bak" in n for n in plan.notes)


def test_copy_only_fulls_are_never_a_base_and_other_databases_are_ignored_with_a_note():
    copy = header("copy.bak", "FULL", 75 * L, 76 * L, ckpt=75 * L, copy_only=True, minutes=70)
    other = header("ssodb.bak", "FULL", 1 * L, 2 * L, db="SSODB")
    plan = plan_restore([FULL, copy, other, *LOGS], "BizTalkMsgBoxDb")
    assert paths(plan)[0] == ("full.bak",)
    assert "copy-only FULL backup copy.bak is never used as a base: ignored" in plan.notes
    assert "ssodb.bak (position 1) is a backup of SSODB, not BizTalkMsgBoxDb: ignored" in plan.notes


def test_a_differential_of_another_full_is_not_used():
    foreign = replace(DIFF, path="foreign.bak", database_backup_lsn=5 * L)
    plan = plan_restore([FULL, foreign, *LOGS], "BizTalkMsgBoxDb")
    assert ("foreign.bak",) not in paths(plan)


def test_stripes_are_grouped_and_a_missing_stripe_is_named():
    s1 = header("full_1.bak", "FULL", 40 * L, 42 * L, ckpt=41 * L, media="m1", family=(1, 2))
    s2 = replace(s1, path="full_2.bak", family_sequence=2)
    plan = plan_restore([s2, s1, *LOGS], "BizTalkMsgBoxDb")
    assert paths(plan)[0] == ("full_1.bak", "full_2.bak")
    assert plan.steps[0].statement("X").startswith("RESTORE DATABASE [X] FROM DISK = N'full_1.bak', DISK = N'full_2.bak'")
    with pytest.raises(RestorePlanError) as err:
        plan_restore([s1, *LOGS], "BizTalkMsgBoxDb")
    assert "striped over 2 files; stripe(s) 2 missing (have full_1.bak (stripe 1))" in str(err.value)


def test_no_full_backup_says_what_was_found():
    with pytest.raises(RestorePlanError, match=r"no usable full backup: 5 backup set\(s\) of BizTalkMsgBoxDb found "
                                               r"\(0 differential, 5 log\)"):
        plan_restore(LOGS, "BizTalkMsgBoxDb")
    with pytest.raises(RestorePlanError, match="no backup of BizTalkDTADb among the 6 backup set"):
        plan_restore([FULL, *LOGS], "BizTalkDTADb")


def test_a_set_at_a_later_position_of_a_file_gets_its_file_number():
    second = replace(LOGS[1], path="all.trn", position=2)
    plan = plan_restore([FULL, second], "BizTalkMsgBoxDb")
    assert plan.steps[-1].with_options() == ["FILE = 2", "RECOVERY"]


def test_a_target_lsn_at_the_end_of_the_full_needs_no_log():
    plan = plan_restore([FULL, *LOGS], "BizTalkMsgBoxDb", Target(lsn=42 * L))
    assert paths(plan) == [("full.bak",)] and plan.steps[0].with_options() == ["FILE = 1", "RECOVERY"]
