"""Missed backup schedules, found from what was actually backed up.

A deadline alert fires only for a run that exists; when the scheduler is stopped, the DAG paused,
or every run fails before a set is written, no run is late — there is simply no new backup, and the
data-loss window grows in silence. So the health check compares the newest *complete* set of each
kind in ``adm_BackupHistory`` with the schedule that should have produced it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from biztalk_dr.domain.backup_sets import BackupSet
from biztalk_dr.domain.config import GroupConfig
from biztalk_dr.ops.first_full_set import waiting_text

__all__ = ["FULL_BACKUP_INTERVAL", "ScheduleCheck", "check_backup_schedules"]

# The longest gap between two full sets for each sp_BackupAllFull_Schedule frequency.
FULL_BACKUP_INTERVAL = {
    "h": dt.timedelta(hours=1),
    "d": dt.timedelta(days=1),
    "w": dt.timedelta(days=7),
    "m": dt.timedelta(days=31),
    "y": dt.timedelta(days=366),
}
# How long a full set may take after its scheduled start before it counts as missed (dr_full_backup's deadline).
FULL_BACKUP_GRACE = dt.timedelta(hours=6)


@dataclass(frozen=True)
class ScheduleCheck:
    kind: str  # "full" or "log"
    dag_id: str
    newest: BackupSet | None
    max_age: dt.timedelta
    age: dt.timedelta | None
    waiting: str = ""  # a new group within its grace, with no set of this kind yet (first_full_set)

    @property
    def missed(self) -> bool:
        return not self.waiting and (self.age is None or self.age > self.max_age)

    def text(self) -> str:
        every = _minutes(self.max_age)
        if self.waiting:
            return self.waiting
        if self.newest is None:
            return (f"no complete {self.kind} backup set in adm_BackupHistory: has {self.dag_id} ever run? "
                    f"(expected at least one every {every})")
        state = "MISSED" if self.missed else "ok"
        return (f"{state}: newest complete {self.kind} set {self.newest.set_id} ({self.newest.mark_name}) is "
                f"{_minutes(self.age)} old; {self.dag_id} must produce one at least every {every}")


def _minutes(delta: dt.timedelta | None) -> str:
    minutes = int((delta or dt.timedelta()).total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def check_backup_schedules(cfg: GroupConfig, sets: Sequence[BackupSet], *, now: dt.datetime,
                           grace_left: dt.timedelta | None = None) -> list[ScheduleCheck]:
    """One check per backup kind. A log set is missed after two intervals (one late run is not yet an
    incident: dr_log_backup's own deadline is two intervals too); a full set after its interval plus
    the time a full set may take. Within a new group's grace (``grace_left``, see ``first_full_set``) a kind
    with no complete set yet is waiting, not missed; a set that is late is late, grace or not."""

    limits = {
        "full": ("dr_full_backup", FULL_BACKUP_INTERVAL[cfg.schedules.full_backup.frequency] + FULL_BACKUP_GRACE),
        "log": ("dr_log_backup", dt.timedelta(minutes=2 * cfg.schedules.log_backup_minutes)),
    }
    checks = []
    for kind, (dag_id, max_age) in limits.items():
        newest = next((s for s in reversed(sets) if s.kind == kind and s.complete), None)
        age = None if newest is None else max(now - newest.backup_time, dt.timedelta())
        waiting = (waiting_text(f"no complete {kind} backup set in adm_BackupHistory yet ({dag_id} takes it)",
                                grace_left, cfg) if newest is None and grace_left is not None else "")
        checks.append(ScheduleCheck(kind, dag_id, newest, max_age, age, waiting))
    return checks
