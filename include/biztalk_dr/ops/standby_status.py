"""What the standby can deliver now, and how healthy that is: for ``biztalk-dr status``, the data-loss check of
``dr_log_shipping``, the health check and the DR status page (``plugins/biztalk_dr_status.py``) — one pure
function, so they never disagree, and the same classification of standby databases as a failover's assessment
(``failover.assess_failover``), so status never promises a mark a failover would refuse.

The reachable mark comes from the standby as it is: each database's state on the standby instance and where its
last restore stopped, the standby state (last set restored), plus what shipped and verified files can still
apply — the restore planner's continuation from each database's redo point and recovery branch over the shipped
files' headers (``headers``), as in the failover. Reasons, each with its level and what to do (from ``advice.py``,
the table the alerts use):

- CRITICAL: no mark every database can reach (a database recovered, missing, suspect, a file missing); the
  standby instance cannot be reached; the window over ``rpo.critical_minutes``;
- WARN: the window over ``rpo.warn_minutes``; a file quarantined and not shipped again; restores waiting
  longer than ``rpo.warn_minutes`` (a stuck restore); the standby blocked until a re-seed.

The result is a ``StandbyStatus`` (frozen): ``as_json()`` is what ``status --json`` prints and what
``dr_log_shipping`` records in ``.biztalk-dr/status.json``; ``StandbyStatus.from_json`` reads that record back
(the status page), and ``window_at(now)`` measures the recorded mark's data-loss window at another moment with
the same thresholds.

A new group (``first_full_set``: nothing restored on the standby yet, within its grace) is WAITING instead of
CRITICAL for what only the first full set can bring (no reachable mark, no data-loss window); what is wrong
regardless (the standby unreachable, a quarantined file, a standby blocked) keeps its level.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from biztalk_dr.domain.advice import advice
from biztalk_dr.domain.backup_sets import BackupSet, HistoryRow
from biztalk_dr.domain.config import GroupConfig, Rpo
from biztalk_dr.domain.data_loss import DataLossWindow
from biztalk_dr.domain.log_shipping import plan_standby_restores
from biztalk_dr.ops.failover import HeaderOf, StandbyObservation, assess_failover
from biztalk_dr.ops.standby_state import StandbyState

__all__ = ["Reason", "DatabaseStatus", "StandbyStatus", "standby_report", "window_level", "LEVELS"]

Level = Literal["ok", "waiting", "warn", "critical"]
LEVELS: dict[str, int] = {"ok": 0, "waiting": 0, "warn": 1, "critical": 2}


@dataclass(frozen=True)
class Reason:
    level: Level
    reason: str
    advice: str = ""  # what to do: an action of the advice table
    advice_key: str = ""  # its entry (the DAGs and tasks it names link from the status page)

    @classmethod
    def advised(cls, level: Level, reason: str, key: str, **values: object) -> Reason:
        return cls(level, reason, advice(key, **values), key)


@dataclass(frozen=True)
class DatabaseStatus:
    """One database: at the source, shipped and verified at the standby site, restored on the standby."""

    name: str
    source_set: int | None  # the newest complete set holding it at the source
    source_time: str | None
    source_full_set: int | None
    source_full_time: str | None
    source_log_set: int | None
    source_log_time: str | None
    shipped_set: int | None  # the newest complete set whose file of it is shipped and verified
    shipped_time: str | None
    restored_set: int | None  # the standby state: the last set restored
    restored_mark: str | None
    standby_state: str | None  # sys.databases.state_desc on the standby; None: missing (or not asked)
    standing: str | None  # failover.Standing.kind
    can_reach: bool | None
    why: str
    reachable_mark: str | None
    data_loss_seconds: int | None
    restore_lag_seconds: int | None  # now minus the backup time of the last set restored


@dataclass(frozen=True)
class StandbyStatus:
    """The status report of a group: health, reasons, reachable mark and data-loss window, per database."""

    group: str
    health: Level
    reasons: tuple[Reason, ...]
    source_reachable: bool
    standby_reachable: bool
    reachable_mark: str | None
    reachable_set: int | None
    reachable_set_time: str | None  # the backup time of the reachable set (the history's clock)
    data_loss_seconds: int | None
    data_loss: str
    warn_minutes: int
    critical_minutes: int
    measured_at: str  # ``now`` of the computation (the history's clock)
    databases: tuple[DatabaseStatus, ...]
    written_at: str | None = None  # when dr_log_shipping recorded it (UTC); None: not recorded
    run: str | None = None  # dag_id/run_id of the run that recorded it
    waiting: str = ""  # health "waiting": why (a new group's first full set is on its way), else empty

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["thresholds_minutes"] = {"warn": out.pop("warn_minutes"), "critical": out.pop("critical_minutes")}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StandbyStatus:
        """A recorded report (``as_json()``) read back; keys a newer or older version wrote are ignored."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        thresholds = data.get("thresholds_minutes") or {}
        values["warn_minutes"] = thresholds.get("warn", 0)
        values["critical_minutes"] = thresholds.get("critical", 0)
        values["reasons"] = tuple(Reason(r["level"], r["reason"], r.get("advice", ""), r.get("advice_key", ""))
                                  for r in data["reasons"])
        db_names = {f.name for f in fields(DatabaseStatus)}
        values["databases"] = tuple(
            DatabaseStatus(**{n: d.get(n) for n in db_names} | {"why": d.get("why") or ""}) for d in data["databases"])
        values.setdefault("reachable_set_time", None)
        values.setdefault("measured_at", data.get("written_at") or "")
        return cls(**values)

    def with_reason(self, reason: Reason, *, first: bool = False) -> StandbyStatus:
        """This report with one more reason, its health raised to the reason's level if lower."""
        reasons = (reason, *self.reasons) if first else (*self.reasons, reason)
        health = max((r.level for r in reasons), key=LEVELS.__getitem__, default="ok")
        return replace(self, reasons=reasons, health=health)

    def window_at(self, now: dt.datetime) -> DataLossWindow:
        """The data-loss window of the recorded reachable mark if the primary were lost at ``now`` (same clock
        as ``reachable_set_time``), with the recorded thresholds."""
        if self.reachable_set_time is None or self.reachable_mark is None:
            return DataLossWindow("critical", None, None, None, None)
        when = dt.datetime.fromisoformat(self.reachable_set_time)
        minutes = max(0.0, (now - when).total_seconds() / 60)
        return DataLossWindow(window_level(minutes, Rpo(warn_minutes=self.warn_minutes,
                                                        critical_minutes=self.critical_minutes)),
                              minutes, self.reachable_set, self.reachable_mark, when)


def window_level(minutes: float, rpo: Rpo) -> Level:
    return "critical" if minutes >= rpo.critical_minutes else "warn" if minutes >= rpo.warn_minutes else "ok"


def _iso(when: dt.datetime | None) -> str | None:
    return when.isoformat(timespec="seconds") if when is not None else None


def standby_report(cfg: GroupConfig, sets: Sequence[BackupSet], state: StandbyState, now: dt.datetime, *,
                   shipped: Callable[[HistoryRow], bool], observed: Mapping[str, StandbyObservation] | None,
                   quarantined: Mapping[str, str], source_failed: Callable[[HistoryRow], bool] = lambda r: False,
                   source_reachable: bool = True, standby_error: str = "",
                   headers: HeaderOf | None = None, waiting: str = "") -> StandbyStatus:
    """The status report: health, reasons, reachable mark and data-loss window, per database.
    ``observed`` None: the standby instance could not be asked (``standby_error`` says why). ``headers``: each
    shipped file's header, so the reachable mark is the restore planner's, as in a failover's assessment.
    ``waiting``: the new group's reason to wait for its first full set (``first_full_set.standby_waiting``), or
    empty."""
    names = [d.name for d in cfg.databases]
    reasons: list[Reason] = []
    assessment = assess_failover(sets, state, names, shipped, observed=observed if observed is not None else None,
                                 required=[cfg.management_database.name], headers=headers)
    if observed is None:
        reasons.append(Reason.advised(
            "critical", f"the standby instance cannot be asked ({standby_error}): what it can deliver is unknown; "
                        "the figures below are from the standby's records", "standby_unreachable"))
    if assessment.ok and assessment.set_time is not None:
        minutes = max(0.0, (now - assessment.set_time).total_seconds() / 60)
        level = window_level(minutes, cfg.rpo)
        window = DataLossWindow(level, minutes, assessment.set_id, assessment.mark, assessment.set_time)
        if level != "ok":
            reasons.append(Reason.advised(level, f"data-loss window {window.describe()}", "data_loss_window"))
    elif waiting:
        window = DataLossWindow("critical", None, None, None, None)
        reasons.append(Reason("waiting", waiting))
    else:
        window = DataLossWindow("critical", None, None, None, None)
        reasons.append(Reason.advised("critical", "no mark every standby database can reach: "
                                                  + "; ".join(assessment.problems), "standby_cannot_deliver"))
    for note in [] if waiting else assessment.notes:
        reasons.append(Reason.advised("warn", note, "standby_cannot_deliver"))
    shipped_names = {r.base_name for s in sets for r in s.rows if shipped(r)}
    for name, why in sorted(quarantined.items()):
        if name not in shipped_names:
            reasons.append(Reason.advised("warn", f"{name} is quarantined and not shipped again yet: {why}",
                                          "quarantined_not_reshipped"))
    plan = plan_standby_restores(sets, state, names, shipped, source_failed)
    if plan.blocked:
        reasons.append(Reason.advised("warn", f"the standby cannot go on until a re-seed: {plan.blocked}",
                                      "partial_set_blocks"))
    stuck = [s for s in plan.steps if (now - s.backup_time).total_seconds() / 60 >= cfg.rpo.warn_minutes]
    if stuck and not waiting:
        reasons.append(Reason.advised("warn", f"{len(stuck)} restore(s) on the standby have waited since set "
                                              f"{stuck[0].set_id} ({stuck[0].mark_name}): is dr_log_shipping's "
                                              "restore_standby_set_by_set failing?", "standby_restores_waiting"))
    health: Level = max((r.level for r in reasons if r.level != "waiting"), key=LEVELS.__getitem__,
                        default="waiting" if waiting and not assessment.ok else "ok")
    data_loss = None if window.minutes is None else round(window.minutes * 60)
    return StandbyStatus(
        group=cfg.group.name, health=health, waiting=waiting if health == "waiting" else "", reasons=tuple(reasons),
        source_reachable=source_reachable,
        standby_reachable=observed is not None, reachable_mark=window.mark_name, reachable_set=window.set_id,
        reachable_set_time=_iso(window.backup_time), data_loss_seconds=data_loss, data_loss=window.describe(),
        warn_minutes=cfg.rpo.warn_minutes, critical_minutes=cfg.rpo.critical_minutes, measured_at=_iso(now) or "",
        databases=tuple(_database(d, sets, state, now, shipped, observed, assessment, window) for d in names))


def _database(database: str, sets: Sequence[BackupSet], state: StandbyState, now: dt.datetime,
              shipped: Callable[[HistoryRow], bool], observed: Mapping[str, StandbyObservation] | None,
              assessment, window: DataLossWindow) -> DatabaseStatus:  # noqa: ANN001 - FailoverAssessment
    holding = [s for s in sets if s.complete and s.row_for(database)]
    at_source = holding[-1] if holding else None
    full = next((s for s in reversed(holding) if s.kind == "full"), None)
    log = next((s for s in reversed(holding) if s.kind == "log"), None)
    newest_shipped = next((s for s in reversed(holding) if shipped(s.row_for(database))), None)
    restored = state.of(database)
    restored_set = next((s for s in sets if s.set_id == restored.last_restored_set), None)
    restore_lag = (now - restored_set.backup_time).total_seconds() if restored_set else None
    standing = next((s for s in assessment.standings if s.database == database), None)
    seen = (observed or {}).get(database)
    return DatabaseStatus(
        name=database,
        source_set=at_source.set_id if at_source else None, source_time=_iso(at_source and at_source.backup_time),
        source_full_set=full.set_id if full else None, source_full_time=_iso(full and full.backup_time),
        source_log_set=log.set_id if log else None, source_log_time=_iso(log and log.backup_time),
        shipped_set=newest_shipped.set_id if newest_shipped else None,
        shipped_time=_iso(newest_shipped and newest_shipped.backup_time),
        restored_set=restored.last_restored_set, restored_mark=restored.last_restored_mark,
        standby_state=seen.state if seen else None, standing=standing.kind if standing else None,
        can_reach=standing.can_reach if standing else None, why=standing.reason if standing else "",
        reachable_mark=window.mark_name,
        data_loss_seconds=None if window.minutes is None else round(window.minutes * 60),
        restore_lag_seconds=None if restore_lag is None else round(restore_lag))
