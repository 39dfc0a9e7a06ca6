"""Failover planning: what each standby database is, which one mark every database can reach, and the
restores that remain.

Pure functions over backup sets, the standby state and what the standby instance says of each database
(``StandbyObservation``, read at the edge by ``failover_jobs``); the same classification feeds
``biztalk-dr status``, so status and failover never disagree about what the standby can deliver.

Every database is classified (``Standing.kind``):

- ``restoring``            RESTORING at a recorded set (and LSN): can reach a later mark if every log up to
                           it is shipped and verified;
- ``online_at_mark``       ONLINE and its last restore stopped at the target mark: an earlier failover run;
- ``online_without_mark``  ONLINE otherwise (recovered by hand, or at another mark): it cannot take logs;
- ``missing``              not on the standby instance;
- ``other``                any other state (SUSPECT, RECOVERY_PENDING, OFFLINE...);
- ``unrecorded``           RESTORING but biztalk-dr never restored it (no record in the standby state).

A failover is refused unless every database can reach the one target mark, except databases the operator
named in ``leave_out`` (never the management database): they are reported, loudly, as not recovered.

Whether a RESTORING database can reach a mark is two questions. BizTalk's: every set between the one it is
restored at and the mark's is complete, and this database's log of each is shipped and verified. SQL Server's,
answered by the restore planner (``restore_planner.plan_continuation``, the same rules restore validation and
``biztalk-dr plan`` use): from where the database stands (its redo point, the recovery branch and database of
the file restored last), the shipped files' own headers (``headers``: the manifest's copy of each file's
RESTORE HEADERONLY) continue the log chain without a gap, on one recovery branch, to the log that holds the
mark. The restores are the planner's steps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from biztalk_dr.backup_files import BackupSetHeader
from biztalk_dr.domain.backup_sets import BackupSet, HistoryRow
from biztalk_dr.domain.errors import RestorePlanError
from biztalk_dr.domain.log_shipping import StandbyStep
from biztalk_dr.domain.restore_planner import LogMark, RestorePoint, Target, plan_continuation
from biztalk_dr.ops.standby_state import DatabaseState, StandbyState

__all__ = ["HeaderOf", "StandbyObservation", "Standing", "DatabaseRecovery", "FailoverAssessment", "assess_failover",
           "classify"]

HeaderOf = Callable[[HistoryRow], BackupSetHeader | None]  # a shipped file's header; None: not shipped
Kind = Literal["restoring", "online_at_mark", "online_without_mark", "missing", "other", "unrecorded"]


@dataclass(frozen=True)
class StandbyObservation:
    """What the standby instance says of one database now."""

    database: str
    state: str | None  # sys.databases.state_desc; None: not on the instance
    stopped_at_mark: str | None = None  # msdb.dbo.restorehistory.stop_at_mark_name of its newest restore


@dataclass(frozen=True)
class Standing:
    """One standby database measured against one target mark."""

    database: str
    kind: Kind
    state: str | None
    restored_set: int | None
    restored_mark: str | None
    restored_lsn: int | None
    can_reach: bool
    reason: str  # why it cannot reach the mark; what it is when it can
    left_out: bool = False

    @property
    def where(self) -> str:
        return (f"RESTORING at set {self.restored_set} ({self.restored_mark}, LSN {self.restored_lsn})"
                if self.kind == "restoring" else {
                    "online_at_mark": "ONLINE at the mark",
                    "online_without_mark": "ONLINE without the mark",
                    "missing": "NOT on the standby instance",
                    "unrecorded": "RESTORING, but never restored by biztalk-dr",
                }.get(self.kind, f"{self.state}"))

    def problem(self) -> str:
        """Why it cannot reach the mark, database first (for the refusal)."""
        if self.kind == "restoring":
            return f"{self.database}: {self.reason} ({self.where})"
        return f"{self.database}: {self.where}: {self.reason}"

    def describe(self) -> str:
        where = self.where
        verdict = "reaches the mark" if self.can_reach else ("LEFT OUT: NOT recovered" if self.left_out
                                                              else "CANNOT reach the mark")
        return f"{self.database}: {where}: {verdict}" + (f" ({self.reason})" if self.reason else "")


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
    databases: tuple[DatabaseRecovery, ...] = ()  # the restoring databases to recover
    problems: tuple[str, ...] = ()  # any problem stops the failover before anything changes
    notes: tuple[str, ...] = field(default=())
    standings: tuple[Standing, ...] = ()
    left_out: tuple[str, ...] = ()  # named by the operator and NOT recovered

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


def classify(database: str, observed: StandbyObservation | None, state: StandbyState, target: BackupSet | None,
             sets: Sequence[BackupSet], shipped: Callable[[HistoryRow], bool], *, headers: HeaderOf | None = None
             ) -> tuple[Standing, DatabaseRecovery | None]:
    """This database against ``target`` (None: no reachable target at all): its standing, and its remaining
    restores when it is RESTORING and can reach the target. ``headers``: the header of a shipped row's file,
    for the restore planner (without it only BizTalk's set rules are applied: for records without files)."""
    recorded = state.of(database)
    base = {"database": database, "state": observed.state if observed else None,
            "restored_set": recorded.last_restored_set, "restored_mark": recorded.last_restored_mark,
            "restored_lsn": recorded.last_restored_lsn}
    mark = target.mark_name if target else None
    if observed is None or observed.state is None:
        return Standing(kind="missing", can_reach=False, reason="never restored there, or dropped", **base), None
    if observed.state == "ONLINE":
        if mark is not None and observed.stopped_at_mark == mark:
            return Standing(kind="online_at_mark", can_reach=True, reason="recovered by an earlier run", **base), None
        last = f"its last restore stopped at {observed.stopped_at_mark}" if observed.stopped_at_mark else \
            "recovered by hand? it takes no more logs"
        return Standing(kind="online_without_mark", can_reach=False, reason=last, **base), None
    if observed.state != "RESTORING":
        return Standing(kind="other", can_reach=False, reason=f"state {observed.state}", **base), None
    if recorded.last_restored_set is None:
        return Standing(kind="unrecorded", can_reach=False, reason="no record in the standby state", **base), None
    if target is None:
        return Standing(kind="restoring", can_reach=False, reason="no complete log set is shipped and verified",
                        **base), None
    recovery, problem = _recovery(database, recorded, target, sets, shipped, headers)
    return Standing(kind="restoring", can_reach=recovery is not None, reason=problem, **base), recovery


def assess_failover(sets: Sequence[BackupSet], state: StandbyState, databases: Sequence[str],
                    shipped: Callable[[HistoryRow], bool], target_mark: str | None = None, *,
                    observed: Mapping[str, StandbyObservation] | None = None, leave_out: Sequence[str] = (),
                    required: Sequence[str] = (), headers: HeaderOf | None = None) -> FailoverAssessment:
    """The target (the mark asked for, or the newest one every database can reach) and each database's
    standing and remaining restores; problems name the database and what blocks it. ``observed`` (by database
    name, any case) is what the standby instance says; without it every database is taken as RESTORING where
    the standby state records it. ``leave_out``: databases the operator accepts NOT to recover (those in
    ``required`` never). ``headers``: each shipped file's header (see :func:`classify`), asked once a file."""
    if headers is not None:
        headers = _once(headers)
    seen = {k.lower(): v for k, v in (observed or {}).items()}

    def look(database: str) -> StandbyObservation | None:
        if observed is None:
            return StandbyObservation(database, "RESTORING" if state.of(database).last_restored_set is not None
                                      else None)
        return seen.get(database.lower())

    out = {d.lower() for d in leave_out}
    problems_up_front = [f"{d}: cannot be left out (without it the group cannot run)" for d in databases
                         if d.lower() in out and d.lower() in {r.lower() for r in required}]
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
        candidates: list[BackupSet | None] = [target]
    else:
        candidates = list(reversed(logs)) or [None]
    first: FailoverAssessment | None = None
    for target in candidates:
        standings, recoveries, problems = [], [], list(problems_up_front)
        for database in databases:
            standing, recovery = classify(database, look(database), state, target, sets, shipped, headers=headers)
            if not standing.can_reach and database.lower() in out and not problems_up_front:
                standing = Standing(**{**asdict(standing), "left_out": True})
            elif not standing.can_reach:
                problems.append(standing.problem())
            standings.append(standing)
            if recovery is not None:
                recoveries.append(recovery)
        if target is None:
            problems.insert(0, "no complete log set is shipped and verified at the standby site")
        result = FailoverAssessment(
            target.mark_name if target else target_mark, target.set_id if target else None,
            target.backup_time if target else None, tuple(recoveries), tuple(problems),
            standings=tuple(standings), left_out=tuple(s.database for s in standings if s.left_out))
        if not problems:
            notes = [f"{d} is named in leave_out but can reach the mark: it is recovered with the others"
                     for d in databases if d.lower() in out and not any(s.left_out and s.database == d
                                                                        for s in standings)]
            if first is not None and first.mark:
                notes.append(f"the newest mark {first.mark} cannot be reached: " + "; ".join(first.problems))
            return FailoverAssessment(result.mark, result.set_id, result.set_time, result.databases, (),
                                      tuple(notes), result.standings, result.left_out)
        if first is None:
            first = result
        if target_mark is not None:
            break
    assert first is not None
    if target_mark is None:  # a newer set that is not all at the standby site is what an operator must hear of
        newer = [s for s in sets if s.kind == "log" and s.complete and s.set_id > (first.set_id or 0)]
        missing = [f"set {s.set_id} ({s.mark_name}) is not all shipped and verified at the standby site: "
                   + ", ".join(f"{r.database_name} ({r.base_name})" for r in s.rows if not shipped(r))
                   for s in newer[-1:]]
        first = replace(first, problems=first.problems + tuple(missing))
    return first  # the problems against the newest candidate: what the operator would try first


def _once(headers: HeaderOf) -> HeaderOf:
    known: dict[str, BackupSetHeader | None] = {}

    def header_of(row: HistoryRow) -> BackupSetHeader | None:
        if row.base_name not in known:
            known[row.base_name] = headers(row)
        return known[row.base_name]
    return header_of


def _recovery(database: str, recorded: DatabaseState, target: BackupSet, sets: Sequence[BackupSet],
              shipped: Callable[[HistoryRow], bool], headers: HeaderOf | None
              ) -> tuple[DatabaseRecovery | None, str]:
    position = recorded.last_restored_set
    assert position is not None
    if position >= target.set_id:
        return None, (f"the standby has already restored set {position}, past the mark of set "
                      f"{target.set_id}: a mark before what is restored cannot be reached without a re-seed")
    steps, rows, restored_row = [], [], None
    for bset in sets:
        if bset.set_id == position:
            restored_row = bset.row_for(database)
        if not position < bset.set_id <= target.set_id:
            continue
        if not bset.complete:
            return None, f"set {bset.set_id} between the standby and the mark is partial: chain broken"
        row = bset.row_for(database)
        if bset.kind == "full" or row is None:
            continue
        if not shipped(row):
            return None, f"the log of set {bset.set_id} ({row.base_name}) is not shipped and verified"
        steps.append(StandbyStep(bset.set_id, bset.mark_name, bset.backup_time, database, row.base_name, "log"))
        rows.append(row)
    if not steps or steps[-1].set_id != target.set_id:
        return None, f"no log backup holding mark {target.mark_name}"
    if headers is not None:
        planned, problem = _planned(database, recorded, target, list(zip(steps, rows, strict=True)), restored_row,
                                    headers)
        if planned is None:
            return None, problem
        steps = planned
    return DatabaseRecovery(database, position, tuple(steps)), f"{len(steps)} log(s) to restore"


def _planned(database: str, recorded: DatabaseState, target: BackupSet, steps: Sequence[tuple[StandbyStep, HistoryRow]],
             restored_row: HistoryRow | None, headers: HeaderOf) -> tuple[list[StandbyStep] | None, str]:
    """The restore planner's continuation from where the database stands to the mark, over the shipped files'
    headers: the steps as StandbySteps, or (None, why not: the LSN gap, the other recovery branch...)."""
    found = [(step, headers(row)) for step, row in steps]
    missing = [step.file_name for step, h in found if h is None]
    if missing:
        return None, f"the header of {missing[0]} cannot be read from its manifest or the shipped file"
    logs = [h for _, h in found if h is not None]
    restored = headers(restored_row) if restored_row is not None else None
    lsn = recorded.last_restored_lsn if recorded.last_restored_lsn is not None else \
        (restored.last_lsn if restored is not None else None)
    if lsn is None:
        return None, (f"where the standby stands in the log (the LSN after set {recorded.last_restored_set}) is not "
                      "recorded and its file is not at the standby site: re-seed it")
    point = RestorePoint(lsn, restored.recovery_fork_id if restored else None,
                         restored.family_guid if restored else None)
    try:
        plan = plan_continuation(logs, database, point, Target(mark=target.mark_name),
                                 marks=[LogMark.held_by(target.mark_name, logs[-1])])
    except RestorePlanError as exc:
        return None, "; ".join(exc.problems)
    leaves = next((step for step in plan.steps if step.stop_before_lsn is not None), None)
    if leaves is not None:  # the failover restores whole logs and stops at the mark: it cannot do this
        return None, (f"reaching the mark leaves a recovery branch at its fork point in {leaves.backup.where()} "
                      f"(STOPBEFOREMARK = 'lsn:{leaves.stop_before_lsn}'), which the failover's restores do not do: "
                      "restore this database by hand as `biztalk-dr plan` says, or re-seed it")
    by_header = {id(h): step for step, h in found}
    return [by_header[id(step.backup.header)] for step in plan.steps], ""
