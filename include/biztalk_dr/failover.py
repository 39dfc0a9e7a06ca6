"""Failover planning: which mark every database can reach at the standby, and the restores that remain.

Pure functions over backup sets and the standby state; the DAG's tasks call them through ``failover_jobs``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from biztalk_dr.backup_sets import BackupSet, HistoryRow
from biztalk_dr.log_shipping import StandbyStep
from biztalk_dr.standby_state import StandbyState

__all__ = ["DatabaseRecovery", "FailoverAssessment", "assess_failover"]


@dataclass(frozen=True)
class DatabaseRecovery:
    database: str
    restored_set: int | None
    steps: tuple[StandbyStep, ...]  # every remaining log; the last one is restored WITH STOPATMARK, RECOVERY


@dataclass(frozen=True)
class FailoverAssessment:
    mark: str | None
    set_id: int | None
    set_time: dt.datetime | None
    databases: tuple[DatabaseRecovery, ...] = ()
    problems: tuple[str, ...] = ()  # any problem stops the failover before anything changes
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems and self.mark is not None

    def data_loss_minutes(self, now: dt.datetime) -> float | None:
        return None if self.set_time is None else round((now - self.set_time).total_seconds() / 60, 1)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["set_time"] = self.set_time.isoformat() if self.set_time else None
        for db in data["databases"]:
            for step in db["steps"]:
                step["backup_time"] = str(step["backup_time"])
        return data


def assess_failover(sets: Sequence[BackupSet], state: StandbyState, databases: Sequence[str],
                    shipped: Callable[[HistoryRow], bool], target_mark: str | None = None) -> FailoverAssessment:
    """The target (the mark asked for, or the newest one every database can reach) and each database's
    remaining restores; problems name the database and what blocks it."""
    logs = [s for s in sets if s.kind == "log" and s.complete and all(shipped(r) for r in s.rows)]
    if target_mark is not None:
        target = next((s for s in sets if s.mark_name == target_mark), None)
        if target is None:
            return FailoverAssessment(None, None, None, problems=(f"mark {target_mark} is not in the backup history "
                                                                  "(nor in the standby's manifests)",))
        if target not in logs:
            return FailoverAssessment(target.mark_name, target.set_id, target.backup_time, problems=(
                f"mark {target_mark} (set {target.set_id}) is not a complete log set whose files are all shipped and "
                "verified at the standby site",))
        candidates = [target]
    else:
        candidates = list(reversed(logs))
    last_problems: tuple[str, ...] = ("no complete log set is shipped and verified at the standby site",)
    for target in candidates:
        recoveries, problems = [], []
        for database in databases:
            recovery, problem = _recovery(database, target, sets, state, shipped)
            if problem:
                problems.append(problem)
            elif recovery is not None:
                recoveries.append(recovery)
        if not problems:
            return FailoverAssessment(target.mark_name, target.set_id, target.backup_time, tuple(recoveries))
        last_problems = tuple(problems)
        if target_mark is not None:
            break
    return FailoverAssessment(target_mark, None, None, problems=last_problems)


def _recovery(database: str, target: BackupSet, sets: Sequence[BackupSet], state: StandbyState,
              shipped: Callable[[HistoryRow], bool]) -> tuple[DatabaseRecovery | None, str]:
    position = state.of(database).last_restored_set
    if position is None:
        return None, f"{database}: no restored copy on the standby (never seeded): re-seed the standby first"
    if position >= target.set_id:
        return None, (f"{database}: the standby has already restored set {position}, past the mark of set "
                      f"{target.set_id}: a mark before what is restored cannot be reached without a re-seed")
    steps = []
    for bset in sets:
        if not position < bset.set_id <= target.set_id:
            continue
        if not bset.complete:
            return None, f"{database}: set {bset.set_id} between the standby and the mark is partial: chain broken"
        row = bset.row_for(database)
        if bset.kind == "full" or row is None:
            continue
        if not shipped(row):
            return None, f"{database}: the log of set {bset.set_id} ({row.base_name}) is not shipped and verified"
        steps.append(StandbyStep(bset.set_id, bset.mark_name, bset.backup_time, database, row.base_name, "log"))
    if not steps or steps[-1].set_id != target.set_id:
        return None, f"{database}: no log backup holding mark {target.mark_name}"
    return DatabaseRecovery(database, position, tuple(steps)), ""
