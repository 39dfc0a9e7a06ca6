"""What the standby can deliver now, and how healthy that is: for ``biztalk-dr status``, the data-loss check of
``dr_log_shipping`` and the health check — one pure function, so the three never disagree, and the same
classification of standby databases as a failover's assessment (``failover.assess_failover``), so status never
promises a mark a failover would refuse.

The reachable mark comes from the standby as it is: each database's state on the standby instance and where its
last restore stopped, the standby state (last set restored), plus what shipped and verified files can still
apply — the restore planner's continuation from each database's redo point and recovery branch over the shipped
files' headers (``headers``), as in the failover. Reasons, each with its level:

- CRITICAL: no mark every database can reach (a database recovered, missing, suspect, a file missing); the
  standby instance cannot be reached; the window over ``rpo.critical_minutes``;
- WARN: the window over ``rpo.warn_minutes``; a file quarantined and not shipped again; restores waiting
  longer than ``rpo.warn_minutes`` (a stuck restore); the standby blocked until a re-seed.

A new group (``first_full_set``: nothing restored on the standby yet, within its grace) is WAITING instead of
CRITICAL for what only the first full set can bring (no reachable mark, no data-loss window); what is wrong
regardless (the standby unreachable, a quarantined file, a standby blocked) keeps its level.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from biztalk_dr.backup_sets import BackupSet, HistoryRow
from biztalk_dr.config import GroupConfig
from biztalk_dr.data_loss import DataLossWindow
from biztalk_dr.failover import HeaderOf, StandbyObservation, assess_failover
from biztalk_dr.log_shipping import plan_standby_restores
from biztalk_dr.standby_state import StandbyState

__all__ = ["Reason", "standby_report", "LEVELS"]

Level = Literal["ok", "waiting", "warn", "critical"]
LEVELS: dict[str, int] = {"ok": 0, "waiting": 0, "warn": 1, "critical": 2}


@dataclass(frozen=True)
class Reason:
    level: Level
    reason: str


def standby_report(cfg: GroupConfig, sets: Sequence[BackupSet], state: StandbyState, now: dt.datetime, *,
                   shipped: Callable[[HistoryRow], bool], observed: Mapping[str, StandbyObservation] | None,
                   quarantined: Mapping[str, str], source_failed: Callable[[HistoryRow], bool] = lambda r: False,
                   source_reachable: bool = True, standby_error: str = "",
                   headers: HeaderOf | None = None, waiting: str = "") -> dict[str, Any]:
    """The status report (JSON-ready): health, reasons, reachable mark and data-loss window, per database.
    ``observed`` None: the standby instance could not be asked (``standby_error`` says why). ``headers``: each
    shipped file's header, so the reachable mark is the restore planner's, as in a failover's assessment.
    ``waiting``: the new group's reason to wait for its first full set (``first_full_set.standby_waiting``), or
    empty."""
    names = [d.name for d in cfg.databases]
    reasons: list[Reason] = []
    assessment = assess_failover(sets, state, names, shipped, observed=observed if observed is not None else None,
                                 required=[cfg.management_database.name], headers=headers)
    if observed is None:
        reasons.append(Reason("critical", f"the standby instance cannot be asked ({standby_error}): what it can "
                                          "deliver is unknown; the figures below are from the standby's records"))
    if assessment.ok and assessment.set_time is not None:
        minutes = max(0.0, (now - assessment.set_time).total_seconds() / 60)
        level: Level = ("critical" if minutes >= cfg.rpo.critical_minutes else
                        "warn" if minutes >= cfg.rpo.warn_minutes else "ok")
        window = DataLossWindow(level, minutes, assessment.set_id, assessment.mark, assessment.set_time)
        if level != "ok":
            reasons.append(Reason(level, f"data-loss window {window.describe()}"))
    elif waiting:
        window = DataLossWindow("critical", None, None, None, None)
        reasons.append(Reason("waiting", waiting))
    else:
        window = DataLossWindow("critical", None, None, None, None)
        reasons.append(Reason("critical", "no mark every standby database can reach: "
                                          + "; ".join(assessment.problems)))
    for note in [] if waiting else assessment.notes:
        reasons.append(Reason("warn", note))
    shipped_names = {r.base_name for s in sets for r in s.rows if shipped(r)}
    for name, why in sorted(quarantined.items()):
        if name not in shipped_names:
            reasons.append(Reason("warn", f"{name} is quarantined and not shipped again yet: {why}"))
    plan = plan_standby_restores(sets, state, names, shipped, source_failed)
    if plan.blocked:
        reasons.append(Reason("warn", f"the standby cannot go on until a re-seed: {plan.blocked}"))
    stuck = [s for s in plan.steps if (now - s.backup_time).total_seconds() / 60 >= cfg.rpo.warn_minutes]
    if stuck and not waiting:
        reasons.append(Reason("warn", f"{len(stuck)} restore(s) on the standby have waited since set "
                                      f"{stuck[0].set_id} ({stuck[0].mark_name}): is dr_log_shipping's "
                                      "restore_standby_set_by_set failing?"))
    health: Level = max((r.level for r in reasons if r.level != "waiting"), key=LEVELS.__getitem__,
                        default="waiting" if waiting and not assessment.ok else "ok")
    by_id = {s.set_id: s for s in sets}
    standings = {s.database: s for s in assessment.standings}
    databases = []
    for database in names:
        at_source = next((s for s in reversed(sets) if s.complete and s.row_for(database)), None)
        newest_shipped = next((s for s in reversed(sets) if s.complete and (r := s.row_for(database)) and shipped(r)),
                              None)
        restored = state.of(database)
        restored_set = by_id.get(restored.last_restored_set or -1)
        restore_lag = (now - restored_set.backup_time).total_seconds() if restored_set else None
        standing = standings.get(database)
        databases.append({
            "name": database,
            "source_set": at_source.set_id if at_source else None,
            "shipped_set": newest_shipped.set_id if newest_shipped else None,
            "restored_set": restored.last_restored_set,
            "restored_mark": restored.last_restored_mark,
            "standby_state": (observed or {}).get(database).state if observed and observed.get(database) else None,
            "standing": standing.kind if standing else None,
            "can_reach": standing.can_reach if standing else None,
            "why": standing.reason if standing else "",
            "reachable_mark": window.mark_name,
            "data_loss_seconds": None if window.minutes is None else round(window.minutes * 60),
            "restore_lag_seconds": None if restore_lag is None else round(restore_lag),
        })
    return {
        "group": cfg.group.name,
        "health": health,
        "waiting": waiting if health == "waiting" else "",
        "reasons": [{"level": r.level, "reason": r.reason} for r in reasons],
        "source_reachable": source_reachable,
        "standby_reachable": observed is not None,
        "reachable_mark": window.mark_name,
        "reachable_set": window.set_id,
        "data_loss_seconds": None if window.minutes is None else round(window.minutes * 60),
        "data_loss": window.describe(),
        "thresholds_minutes": {"warn": cfg.rpo.warn_minutes, "critical": cfg.rpo.critical_minutes},
        "databases": databases,
    }
