"""The data-loss window: how much work would be lost if the primary site were lost now.

It is ``now`` minus the backup time of the newest complete set whose every file is shipped and
verified at the standby site — the newest point every database could be recovered to (its mark).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from biztalk_dr.domain.backup_sets import BackupSet
from biztalk_dr.domain.config import Rpo

__all__ = ["DataLossWindow", "data_loss_window"]


@dataclass(frozen=True)
class DataLossWindow:
    level: Literal["ok", "warn", "critical"]
    minutes: float | None  # None: nothing is protected at all
    set_id: int | None
    mark_name: str | None
    backup_time: dt.datetime | None

    def describe(self) -> str:
        if self.minutes is None:
            return "no backup set is shipped and verified at the standby site: everything would be lost"
        return (f"{self.minutes:.0f} minute(s) of work would be lost: the newest recoverable point is mark "
                f"{self.mark_name} (set {self.set_id}, {self.backup_time:%Y-%m-%d %H:%M:%S})")


def data_loss_window(sets: Sequence[BackupSet], *, protected: Callable[[BackupSet], bool], now: dt.datetime,
                     rpo: Rpo) -> DataLossWindow:
    """``protected(set)``: complete and every file shipped and verified. ``now`` in the history's clock."""
    newest = next((s for s in reversed(sets) if s.kind == "log" and s.complete and protected(s)), None)
    if newest is None:
        return DataLossWindow("critical", None, None, None, None)
    minutes = max(0.0, (now - newest.backup_time).total_seconds() / 60)
    level: Literal["ok", "warn", "critical"] = (
        "critical" if minutes >= rpo.critical_minutes else "warn" if minutes >= rpo.warn_minutes else "ok")
    return DataLossWindow(level, minutes, newest.set_id, newest.mark_name, newest.backup_time)
