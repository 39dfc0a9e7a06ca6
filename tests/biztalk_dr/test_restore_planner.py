"""Restore plans from backup headers: the right files, in order, with the right WITH options, and
precise reasons when the target cannot be reached."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from biztalk_dr.backup_files.headers import BackupSetHeader
from biztalk_dr.domain.errors import RestorePlanError
from biztalk_dr.domain.restore_planner import Target, plan_restore

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


def test_a_target_lsn_equal_to_a_backups_last_lsn_needs_the_next_log():
    """LastLSN is the next record *after* the backup (exclusive) and STOPATMARK = 'lsn:X' includes X (issue 16,
    rule 3): the record at the full's LastLSN is in the log that follows it, and so is the one at a log's."""
    plan = plan_restore([FULL, *LOGS], "BizTalkMsgBoxDb", Target(lsn=42 * L))
    assert paths(plan) == [("full.bak",), ("log2.trn",)]
    assert plan.steps[-1].with_options() == ["FILE = 1", "RECOVERY", f"STOPATMARK = N'lsn:{42 * L}'"]
    plan = plan_restore([FULL, *LOGS], "BizTalkMsgBoxDb", Target(lsn=50 * L))  # log2's LastLSN
    assert paths(plan) == [("full.bak",), ("log2.trn",), ("log3.trn",)]
    plan = plan_restore([FULL, *LOGS], "BizTalkMsgBoxDb", Target(lsn=50 * L - 1))  # log2's last record
    assert paths(plan) == [("full.bak",), ("log2.trn",)]
    with pytest.raises(RestorePlanError, match=f"the full backup full.bak ends at LSN {42 * L}, after the target"):
        plan_restore([FULL, *LOGS], "BizTalkMsgBoxDb", Target(lsn=42 * L - 1))  # inside the full: passed


# ------------------------------------------------------------------ plans from real SQL Server backups
from biztalk_dr.backup_files import read_backup_files  # noqa: E402
from tests.conftest import SHARED_BACKUPS  # noqa: E402

real_share = pytest.mark.skipif(not SHARED_BACKUPS.is_dir(), reason=f"{SHARED_BACKUPS} not available")


def _real_plan(folder: str, database: str, target: Target | None = None):
    headers = [h for r in read_backup_files([SHARED_BACKUPS / folder]) for h in r.sets]
    plan = plan_restore(headers, database, target or Target())
    return plan, [(s.backup.backup_type, sorted(Path(p).name for p in s.backup.paths), s.with_options()[1:])
                  for s in plan.steps]


@real_share
@pytest.mark.parametrize("folder", ["RestoreTimeClean", "restoretimeclean2016"])
def test_real_chain_full_then_the_differential_then_only_the_logs_after_it(folder):
    """Logs _1.._3 were taken before the differential (RestoreTimeClean2.bak) and are covered by it;
    the first log after it (2_1) starts before the differential's last LSN and carries the chain on."""
    plan, steps = _real_plan(folder, "RestoreTimeClean")
    assert steps == [("FULL", ["RestoreTimeClean.bak"], ["NORECOVERY"]),
                     ("DIFF", ["RestoreTimeClean2.bak"], ["NORECOVERY"]),
                     ("LOG", ["RestoreTimeClean2_1.trn"], ["NORECOVERY"]),
                     ("LOG", ["RestoreTimeClean2_2.trn"], ["NORECOVERY"]),
                     ("LOG", ["RestoreTimeClean2_3.trn"], ["RECOVERY"])]
    diff, first_log = plan.steps[1].backup.header, plan.steps[2].backup.header
    assert first_log.first_lsn <= diff.last_lsn < first_log.last_lsn


@real_share
def test_real_double_differential_uses_only_the_newest():
    """Differentials are cumulative: the second contains the first, so restoring the first is wasted time."""
    _, steps = _real_plan("DoubleDiffing", "doublediff")
    assert steps == [("FULL", ["difftest-full.bak"], ["NORECOVERY"]), ("DIFF", ["difftest-diff2.bak"], ["RECOVERY"])]


@real_share
def test_real_stripes_are_restored_together_from_the_newest_full():
    """Each striped backup is one step naming both families (Stripe1 and Stripe2 folders)."""
    _, steps = _real_plan("sql2008-backups/RestoreTimeStripe", "RestoreTimeStripe")
    assert steps == [("FULL", ["RestoreTimeStripe2.bak", "RestoreTimeStripe2a.bak"], ["NORECOVERY"]),
                     ("LOG", ["restoretime_21.trn", "restoretime_21a.trn"], ["NORECOVERY"]),
                     ("LOG", ["RestoreTimeStripe_22.trn", "RestoreTimeStripe_22a.trn"], ["NORECOVERY"]),
                     ("LOG", ["RestoreTimeStripe_23.trn", "RestoreTimeStripe_23a.trn"], ["RECOVERY"])]


@real_share
def test_real_point_in_time_stops_in_the_log_that_spans_the_time():
    """13:31 falls after StopAt_2 (finished 13:30:24) and within StopAt_21 (finished 13:32:09)."""
    _, steps = _real_plan("sql2008-backups/StopAt", "StopAt", Target(time=dt.datetime(2020, 5, 12, 13, 31)))
    assert steps == [("FULL", ["StopAt.bak"], ["NORECOVERY"]), ("LOG", ["StopAt_1.trn"], ["NORECOVERY"]),
                     ("LOG", ["StopAt_2.trn"], ["NORECOVERY"]),
                     ("LOG", ["StopAt_21.trn"], ["RECOVERY", "STOPAT = N'2020-05-12T13:31:00.000'"])]


@real_share
def test_real_simple_recovery_restores_full_and_newest_differential():
    _, steps = _real_plan("sql2008-backups/SimpleRecovery", "SimpleBackTest")
    assert steps == [("FULL", ["SimpleBacktest.bak"], ["NORECOVERY"]), ("DIFF", ["SimpleBackTest_2.bak"], ["RECOVERY"])]


@real_share
def test_real_missing_log_is_named_with_its_lsn_range_and_files(tmp_path):
    """Without StopAt_2.trn the chain breaks after StopAt_1: the problem names the gap and both sides."""
    for name in ("StopAt.bak", "StopAt_1.trn", "StopAt_21.trn", "StopAt_23.trn"):
        (tmp_path / name).write_bytes((SHARED_BACKUPS / "sql2008-backups/StopAt" / name).read_bytes())
    headers = [h for r in read_backup_files([tmp_path]) for h in r.sets]
    with pytest.raises(RestorePlanError) as caught:
        plan_restore(headers, "StopAt", Target())
    text = " ".join(caught.value.problems)
    assert "19000000018300001" in text and "19000000019300001" in text and "StopAt_1.trn" in text
    assert "StopAt_21.trn" in text
