"""Each rule of issue 16 with a history built for it: backup identity (FamilyGUID), recovery forks, LSN bounds,
copy-only, media reuse, SIMPLE recovery, marks by name, reasons per full — and the same rules on copies of real
SQL Server backups arranged into new folders."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from pathlib import Path

import pytest

from biztalk_dr.backup_files import read_backup_files
from biztalk_dr.backup_files.headers import BackupSetHeader
from biztalk_dr.domain.errors import RestorePlanError
from biztalk_dr.domain.restore_planner import (
    LogMark,
    RestorePoint,
    Target,
    plan_continuation,
    plan_restore,
    plan_restores,
)
from tests.conftest import SHARED_BACKUPS

T0 = dt.datetime(2026, 11, 24, 1, 0)
L = 10**15
DB = "BizTalkMsgBoxDb"


def hdr(path: str, kind: str, first: int, last: int, *, fork: str = "f0", family: str = "fam", parent: str | None = None,
        point: int | None = None, base_guid: str | None = None, ckpt: int | None = None, minutes: float = 0,
        guid: str | None = None, copy_only: bool | None = False, created: dt.datetime = dt.datetime(2026, 1, 1),
        media: str | None = None, position: int = 1, family_seq: tuple[int, int] = (1, 1), db: str = DB,
        base_lsn: int = 0) -> BackupSetHeader:
    start = T0 + dt.timedelta(minutes=minutes)
    return BackupSetHeader(
        path=path, position=position, database_name=db, server_name="SQLPRD01", backup_type=kind, first_lsn=first,
        last_lsn=last, checkpoint_lsn=ckpt if ckpt is not None else first, database_backup_lsn=base_lsn,
        backup_start_date=start, backup_finish_date=start + dt.timedelta(seconds=30), database_creation_date=created,
        compressed=False, software_version="16.0.1000", media_set_id=media or f"media-{path}",
        family_count=family_seq[1], family_sequence=family_seq[0], copy_only=copy_only,
        backup_set_id=guid or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{path}/{position}")), family_guid=family,
        database_guid=fork and "binding-" + fork, recovery_fork_id=fork, branch_parent_id=parent, branch_lsn=point,
        differential_base_guid=base_guid, differential_base_lsn=None if base_guid is None else first)


def names(plan) -> list[str]:
    return [s.backup.paths[0] for s in plan.steps]


def options(plan) -> list[list[str]]:
    return [s.with_options()[1:] for s in plan.steps]


# ----------------------------------------------------------------------------------------------------- 1 identity
def test_two_databases_of_one_name_are_never_chained_and_latest_takes_the_newer_one_with_a_note():
    old = [hdr("a_full.bak", "FULL", 10 * L, 12 * L, family="A", created=dt.datetime(2025, 1, 1)),
           hdr("a_log1.trn", "LOG", 10 * L, 20 * L, family="A", minutes=15),
           hdr("a_log2.trn", "LOG", 20 * L, 30 * L, family="A", minutes=30)]
    # another database of the same name (dropped and created again): its LSNs overlap the first one's
    new = [hdr("b_full.bak", "FULL", 15 * L, 16 * L, family="B", fork="g0", created=dt.datetime(2026, 6, 1), minutes=40),
           hdr("b_log1.trn", "LOG", 15 * L, 25 * L, family="B", fork="g0", minutes=45)]
    plan = plan_restore(old + new, DB)
    assert names(plan) == ["b_full.bak", "b_log1.trn"] and plan.family_guid == "B"
    assert any("2 different databases named BizTalkMsgBoxDb" in n and "FamilyGUID B" in n for n in plan.notes)
    # a target only the first reaches: the first, all of it, none of the second's logs
    plan = plan_restore(old + new, DB, Target(lsn=28 * L))
    assert names(plan) == ["a_full.bak", "a_log1.trn", "a_log2.trn"] and plan.family_guid == "A"
    # the first's full with only the second's logs: a gap, never a chain across databases
    with pytest.raises(RestorePlanError, match=f"a_full.bak ends at LSN {12 * L}, the next log backup a_log2.trn"):
        plan_restore([old[0], old[2], *new[1:]], DB, Target(family_guid="A"))


def test_backups_of_other_databases_in_the_folder_cause_no_false_gap():
    mine = [hdr("full.bak", "FULL", 10 * L, 12 * L), hdr("log1.trn", "LOG", 10 * L, 20 * L, minutes=15)]
    others = [hdr(f"sso_{i}.trn", "LOG", (5 + i) * L, (6 + i) * L, db="SSODB", family="sso") for i in range(20)]
    plan = plan_restore(mine + others, DB)
    assert names(plan) == ["full.bak", "log1.trn"]
    assert plan.notes == ("20 backup set(s) of 1 other database(s) (SSODB) ignored",)


# ----------------------------------------------------------------------------------------------------- 2 forks
def _failover_history(fork_inside_log: bool):
    """f0: full, log1..log3 (the old primary); the standby restored to X and recovered: f1 from X (the new
    primary), whose logs overlap the old primary's last log in LSN. X inside log3 (a mark) or at its start."""
    x = 35 * L if fork_inside_log else 30 * L
    old = [hdr("full.bak", "FULL", 10 * L, 12 * L), hdr("log1.trn", "LOG", 10 * L, 20 * L, minutes=15),
           hdr("log2.trn", "LOG", 20 * L, 30 * L, minutes=30), hdr("log3.trn", "LOG", 30 * L, 40 * L, minutes=45)]
    new = [hdr("new_log1.trn", "LOG", x, 38 * L, fork="f1", parent="f0", point=x, minutes=60),
           hdr("new_log2.trn", "LOG", 38 * L, 45 * L, fork="f1", parent="f0", point=x, minutes=75)]
    return old, new, x


def test_latest_follows_the_newest_branch_entering_it_at_the_fork_point_inside_an_old_log():
    old, new, x = _failover_history(fork_inside_log=True)
    plan = plan_restore(old + new, DB)
    assert names(plan) == ["full.bak", "log1.trn", "log2.trn", "log3.trn", "new_log1.trn", "new_log2.trn"]
    assert options(plan)[3] == ["NORECOVERY", f"STOPBEFOREMARK = N'lsn:{x}'"]  # log3 only up to the fork point
    assert plan.recovery_fork_id == "f1" and plan.reaches_lsn == 45 * L


def test_latest_needs_no_stop_when_the_fork_point_is_a_log_boundary():
    old, new, x = _failover_history(fork_inside_log=False)
    plan = plan_restore(old + new, DB)
    assert names(plan) == ["full.bak", "log1.trn", "log2.trn", "new_log1.trn", "new_log2.trn"]
    assert all(len(o) == 1 for o in options(plan))  # NORECOVERY / RECOVERY only
    assert any("log3.trn" not in n and "other recovery branches" in n for n in plan.notes)


def test_a_point_both_branches_hold_is_refused_naming_both_and_planned_on_the_branch_asked_for():
    old, new, x = _failover_history(fork_inside_log=True)
    with pytest.raises(RestorePlanError) as err:
        plan_restore(old + new, DB, Target(lsn=37 * L))
    assert "recovery fork f0" in str(err.value) and "recovery fork f1" in str(err.value)
    assert "--recovery-fork" in str(err.value)
    on_old = plan_restore(old + new, DB, Target(lsn=37 * L, recovery_fork_id="f0"))
    assert names(on_old)[-1] == "log3.trn" and on_old.recovery_fork_id == "f0"
    on_new = plan_restore(old + new, DB, Target(lsn=37 * L, recovery_fork_id="f1"))
    assert names(on_new)[-2:] == ["log3.trn", "new_log1.trn"] and on_new.steps[-1].stop_at_lsn == 37 * L
    # before the fork point both branches agree: no question to ask
    shared = plan_restore(old + new, DB, Target(lsn=25 * L))
    assert names(shared) == ["full.bak", "log1.trn", "log2.trn"]


def test_a_log_of_another_branch_is_never_a_step_even_when_its_lsns_fit():
    old, new, x = _failover_history(fork_inside_log=False)
    # the old branch's own log3 is gone: new_log1 fits the LSNs after log2, and only the new branch may use it
    plan = plan_restore(old[:3] + new, DB, Target(recovery_fork_id="f0"))
    assert names(plan) == ["full.bak", "log1.trn", "log2.trn"]
    # a log that claims to branch from a fork not on the path is not used to cross
    stranger = hdr("stranger.trn", "LOG", 30 * L, 50 * L, fork="f9", parent="f7", point=30 * L, minutes=90)
    plan = plan_restore(old + new + [stranger], DB, Target(recovery_fork_id="f1"))
    assert "stranger.trn" not in names(plan)


def test_branches_that_cannot_be_told_apart_are_refused_naming_both():
    # no recovery fork known (old catalog rows): two logs overlapping as only two branches do
    a = [hdr("full.bak", "FULL", 10 * L, 12 * L, fork=None), hdr("log1.trn", "LOG", 10 * L, 30 * L, fork=None),
         hdr("log2.trn", "LOG", 25 * L, 40 * L, fork=None, minutes=20)]
    with pytest.raises(RestorePlanError, match=r"log1.trn .* and log2.trn .* overlap as two recovery branches do"):
        plan_restore(a, DB)
    # two sibling branches (the database restored and recovered twice): latest follows the one backed up last,
    # naming the other; backed up at the same time, they cannot be told apart: both are named
    sib = [hdr("full.bak", "FULL", 10 * L, 12 * L), hdr("log1.trn", "LOG", 10 * L, 20 * L),
           hdr("x.trn", "LOG", 20 * L, 30 * L, fork="x", parent="f0", point=20 * L, minutes=21),
           hdr("y.trn", "LOG", 20 * L, 31 * L, fork="y", parent="f0", point=20 * L, minutes=20)]
    plan = plan_restore(sib, DB)
    assert names(plan)[-1] == "x.trn" and any("recovery fork y" in n for n in plan.notes)
    tie = [*sib[:3], hdr("y.trn", "LOG", 20 * L, 31 * L, fork="y", parent="f0", point=20 * L, minutes=21)]
    with pytest.raises(RestorePlanError) as err:
        plan_restore(tie, DB)
    assert "recovery fork x" in str(err.value) and "recovery fork y" in str(err.value)
    assert names(plan_restore(tie, DB, Target(recovery_fork_id="y")))[-1] == "y.trn"


# ----------------------------------------------------------------------------------------------------- 4 copy-only
def test_a_copy_only_full_whose_flag_is_not_known_does_not_hide_a_later_differential_of_the_real_base():
    full = hdr("full.bak", "FULL", 10 * L, 12 * L, ckpt=11 * L)
    copy = hdr("copy.bak", "FULL", 20 * L, 22 * L, copy_only=None, minutes=60)  # read from a file: not known
    diff = hdr("diff.bak", "DIFF", 30 * L, 32 * L, base_guid=full.backup_set_id, base_lsn=11 * L, minutes=120)
    plan = plan_restore([full, copy, diff], DB)
    assert names(plan) == ["full.bak", "diff.bak"] and plan.reaches_lsn == 32 * L
    # the differential is never applied on the copy: its base GUID names the real full
    assert names(plan_restore([copy, diff], DB)) == ["copy.bak"]


def test_copy_only_log_backups_from_the_catalog_stay_in_the_chain():
    full = hdr("full.bak", "FULL", 10 * L, 12 * L)
    logs = [hdr("log1.trn", "LOG", 10 * L, 20 * L, minutes=15),
            hdr("copy_log.trn", "LOG", 20 * L, 24 * L, copy_only=True, minutes=20)]  # the newest point there is
    plan = plan_restore([full, *logs], DB)
    assert names(plan) == ["full.bak", "log1.trn", "copy_log.trn"] and plan.reaches_lsn == 24 * L
    regular = hdr("log2.trn", "LOG", 20 * L, 30 * L, minutes=30)  # both start at log1's end; log2 goes further
    assert names(plan_restore([full, *logs, regular], DB)) == ["full.bak", "log1.trn", "log2.trn"]


# ----------------------------------------------------------------------------------------------------- 5 media reuse
def test_two_sets_on_one_media_set_and_position_are_two_sets_by_guid():
    """BACKUP ... WITH INIT onto the same file: a second set at position 1 of the same media set."""
    first = hdr("full_old.bak", "FULL", 10 * L, 12 * L, media="M", guid="g-old")
    second = hdr("full_new.bak", "FULL", 20 * L, 22 * L, media="M", guid="g-new", minutes=60)
    log = hdr("log.trn", "LOG", 20 * L, 30 * L, minutes=70)
    assert names(plan_restore([first, second, log], DB)) == ["full_new.bak", "log.trn"]
    s1 = hdr("s1.bak", "FULL", 20 * L, 22 * L, media="S", guid="g-striped", family_seq=(1, 2))
    s2 = hdr("s2.bak", "FULL", 20 * L, 22 * L, media="S", guid="g-striped", family_seq=(2, 2))
    plan = plan_restore([s2, s1, log], DB)
    assert plan.steps[0].backup.paths == ("s1.bak", "s2.bak")


# ----------------------------------------------------------------------------------------------------- 6 SIMPLE
def test_a_point_in_time_without_log_backups_restores_the_newest_full_and_differential_before_it():
    full = hdr("full.bak", "FULL", 10 * L, 12 * L, ckpt=11 * L)
    diffs = [hdr(f"diff{i}.bak", "DIFF", (20 + 10 * i) * L, (22 + 10 * i) * L, base_guid=full.backup_set_id,
                 base_lsn=11 * L, minutes=60 * i) for i in (1, 2, 3)]
    plan = plan_restore([full, *diffs], DB, Target(time=T0 + dt.timedelta(minutes=150)))
    assert names(plan) == ["full.bak", "diff2.bak"]
    assert plan.reaches_time == T0 + dt.timedelta(minutes=120, seconds=30)
    assert any("no log backups" in n and plan.reaches_time.isoformat() in n for n in plan.notes)


# ----------------------------------------------------------------------------------------------------- 7 marks
def _marked_chain():
    full = hdr("full.bak", "FULL", 10 * L, 12 * L)
    logs = [hdr(f"SQLPRD01_{DB}_Log_BTS_2026_11_24_01_{15 * i:02d}_00_000.bak", "LOG", (10 * i) * L,
                (10 * i + 10) * L, minutes=15 * i) for i in (1, 2, 3)]
    return full, logs


def test_a_mark_by_name_from_the_biztalk_file_names_stops_in_the_log_named_after_it():
    full, logs = _marked_chain()
    plan = plan_restore([full, *logs], DB, Target(mark="BTS_2026_11_24_01_30_00_000"))
    assert names(plan) == [full.path, logs[0].path, logs[1].path]
    assert options(plan)[-1] == ["RECOVERY", "STOPATMARK = N'BTS_2026_11_24_01_30_00_000'"]


def test_a_mark_name_used_twice_needs_after_which_picks_the_first_at_or_after_it():
    full, logs = _marked_chain()
    marks = [LogMark("nightly", lsn=15 * L, time=T0 + dt.timedelta(minutes=20)),
             LogMark("nightly", lsn=35 * L, time=T0 + dt.timedelta(minutes=50))]
    with pytest.raises(RestorePlanError) as err:
        plan_restore([full, *logs], DB, Target(mark="nightly"), marks=marks)
    assert f"LSN {15 * L}" in str(err.value) and f"LSN {35 * L}" in str(err.value) and "--after" in str(err.value)
    plan = plan_restore([full, *logs], DB, Target(mark="nightly", after=T0 + dt.timedelta(minutes=30)), marks=marks)
    assert names(plan)[-1] == logs[2].path
    assert options(plan)[-1] == ["RECOVERY", "STOPATMARK = N'nightly' AFTER N'2026-11-24T01:30:00.000'"]
    with pytest.raises(RestorePlanError, match="mark weekly is not among the marks"):
        plan_restore([full, *logs], DB, Target(mark="weekly"), marks=marks)


# ----------------------------------------------------------------------------------------------------- 8 reasons
def test_when_no_full_reaches_the_target_each_full_says_why_the_gap_behind_an_older_one_too():
    f1 = hdr("full1.bak", "FULL", 10 * L, 12 * L)
    f2 = hdr("full2.bak", "FULL", 40 * L, 42 * L, minutes=120)
    logs = [hdr("log1.trn", "LOG", 10 * L, 20 * L), hdr("log3.trn", "LOG", 30 * L, 50 * L, minutes=60),
            hdr("log5.trn", "LOG", 60 * L, 70 * L, minutes=180)]
    with pytest.raises(RestorePlanError) as err:
        plan_restore([f1, f2, *logs], DB, Target(lsn=65 * L))
    text = " | ".join(err.value.problems)
    assert "full2.bak" in text and f"log3.trn ends at LSN {50 * L}" in text  # the newest full's gap
    assert "full1.bak" in text and f"log1.trn ends at LSN {20 * L}" in text  # and the one behind the older full


# ----------------------------------------------------------------------------------------------------- failover API
def test_continuation_from_a_standby_restore_point_to_a_mark_on_the_new_branch():
    old, new, x = _failover_history(fork_inside_log=False)
    marked = hdr(f"SQLDR01_{DB}_Log_BTS_2026_11_24_03_00_00_000.bak", "LOG", 45 * L, 50 * L, fork="f1", parent="f0",
                 point=x, minutes=90)
    files = old + new + [marked]
    standby = RestorePoint.after(old[1])  # restored up to log1, on f0
    plan = plan_continuation(files, DB, standby, Target(mark="BTS_2026_11_24_03_00_00_000"))
    assert names(plan) == ["log2.trn", "new_log1.trn", "new_log2.trn", marked.path]
    assert plan.steps[-1].stop_at_mark == "BTS_2026_11_24_03_00_00_000"
    # a standby that restored the old primary's log3 is past the fork point: the new branch is out of reach
    with pytest.raises(RestorePlanError):
        plan_continuation(files, DB, RestorePoint.after(old[3]), Target(mark="BTS_2026_11_24_03_00_00_000"))


def test_plan_restores_plans_every_database_in_one_pass():
    mine = [hdr("full.bak", "FULL", 10 * L, 12 * L), hdr("log1.trn", "LOG", 10 * L, 20 * L)]
    sso = [hdr("sso.bak", "FULL", 1 * L, 2 * L, db="SSODB", family="sso")]
    plans = plan_restores(mine + sso + [hdr("orphan.trn", "LOG", 1, 2, db="DTA", family="d")])
    assert names(plans[DB]) == ["full.bak", "log1.trn"] and names(plans["SSODB"]) == ["sso.bak"]
    assert isinstance(plans["DTA"], RestorePlanError)


# ----------------------------------------------------------------------------------------------------- real files
real_share = pytest.mark.skipif(not SHARED_BACKUPS.is_dir(), reason=f"{SHARED_BACKUPS} not available")


def _copy(folders: list[str], into: Path) -> list[BackupSetHeader]:
    for folder in folders:
        for path in (SHARED_BACKUPS / folder).rglob("*"):
            if path.is_file():
                shutil.copy(path, into / f"{folder.replace('/', '_')}__{path.name}")
    return [h for r in read_backup_files([into]) for h in r.sets]


@real_share
def test_real_two_olamsfilter_databases_in_one_folder_are_planned_apart(tmp_path):
    headers = _copy(["OlaMsFilter/Simple", "OlaMsFilter/complex"], tmp_path)
    plan = plan_restore(headers, "OlaMsFilterTest")
    used = {Path(p).name.split("__")[0] for s in plan.steps for p in s.backup.paths}
    assert len(used) == 1  # one database's files only
    assert any("2 different databases named OlaMsFilterTest" in n for n in plan.notes)
    for family in {h.family_guid for h in headers}:
        plan = plan_restore(headers, "OlaMsFilterTest", Target(family_guid=family))
        assert {s.backup.header.family_guid for s in plan.steps} == {family}


@real_share
def test_real_2008_database_and_its_2016_restored_copy_in_one_folder(tmp_path):
    """Same FamilyGUID, two recovery forks: latest follows the 2016 branch (it branched from the 2008 one at
    the end of RestoreTimeClean_1.trn), an LSN only the 2008 branch has is planned there, one both share
    before the fork point needs no choice."""
    headers = _copy(["RestoreTimeClean", "restoretimeclean2016"], tmp_path)
    plan = plan_restore(headers, "RestoreTimeClean")
    assert all("restoretimeclean2016" in s.backup.paths[0] for s in plan.steps)
    assert [s.backup.backup_type for s in plan.steps] == ["FULL", "DIFF", "LOG", "LOG", "LOG"]
    log2_2008 = next(h for h in headers if h.path.endswith("RestoreTimeClean__RestoreTimeClean2_2.trn"))
    plan = plan_restore(headers, "RestoreTimeClean", Target(lsn=log2_2008.first_lsn + 1))
    assert all("RestoreTimeClean__" in s.backup.paths[0] for s in plan.steps)
    log1_2008 = next(h for h in headers if h.path.endswith("RestoreTimeClean__RestoreTimeClean_1.trn"))
    plan = plan_restore(headers, "RestoreTimeClean", Target(lsn=log1_2008.last_lsn - 1))
    assert plan.steps[-1].backup.header is log1_2008
