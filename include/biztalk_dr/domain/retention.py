"""Which backup files may be deleted at the source, and why each other one is kept.

BizTalk's ``sp_DeleteBackupHistory`` deletes history rows, never files, so files pile up. Deleting
the wrong one loses recovery, so a file is deleted only when *all* of these hold:

1. a complete full set exists and the file is older than it (the newest restorable chain — the
   newest complete full set and every later set — is never touched);
2. it is older than the retention period;
3. a verified copy is at the standby site (shipped, hash and headers checked) — or was, and the standby's own
   retention (``standby_retention``) has deleted it since, nothing there needing it any more.

Every file gets a decision with its reason, so the task log explains what was kept as well.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from biztalk_dr.domain.backup_sets import BackupSet, HistoryRow, newest_complete_full

__all__ = ["FileDecision", "plan_retention"]


@dataclass(frozen=True)
class FileDecision:
    row: HistoryRow
    delete: bool
    reason: str

    def __str__(self) -> str:
        verb = "delete" if self.delete else "keep"
        return f"{verb} {self.row.sql_path} (set {self.row.backup_set_id}, {self.row.database_name}): {self.reason}"


def plan_retention(sets: Sequence[BackupSet], *, now: dt.datetime, keep_days: int,
                   shipped_and_verified: Callable[[HistoryRow], bool]) -> list[FileDecision]:
    """A decision for every file of every set, oldest set first. ``now`` is in the history's clock."""
    if keep_days < 1:
        raise ValueError("keep_days must be at least 1")
    full = newest_complete_full(sets)
    cutoff = now - dt.timedelta(days=keep_days)
    decisions = []
    for bset in sets:
        for row in bset.rows:
            if full is None:
                decisions.append(FileDecision(row, False, "no complete full set exists yet: every file may be needed"))
            elif bset.set_id >= full.set_id:
                decisions.append(FileDecision(
                    row, False, f"needed by the newest restorable chain (full set {full.set_id} and later)"))
            elif row.backup_time > cutoff:
                decisions.append(FileDecision(row, False, f"younger than the retention of {keep_days} day(s)"))
            elif not shipped_and_verified(row):
                decisions.append(FileDecision(row, False, "no verified copy at the standby site yet"))
            else:
                decisions.append(FileDecision(
                    row, True, f"older than {keep_days} day(s), superseded by full set {full.set_id}, "
                               "verified copy at the standby site"))
    return decisions
