"""Restore sequences from backup sets alone: which full, differential and logs, in which order, with
which WITH options, to reach a target (the newest point, an LSN such as a mark's, or a point in time).

The rules are SQL Server's (biztalk-dr.md section 4):

- a full backup starts the sequence; copy-only fulls are never used as a base (the issue's rule:
  they sit outside the chain BizTalk manages);
- a differential applies only to the full whose ``checkpoint_lsn`` is its ``database_backup_lsn``;
  the newest one that does not pass the target is used;
- a log applies when it covers the current restore point (``first_lsn <= point < last_lsn``); a
  full does not break the log chain, so an older full with an unbroken log chain can reach a target
  the newest full cannot;
- every step but the last runs WITH NORECOVERY; the last runs WITH RECOVERY and, for an LSN or time
  target, STOPATMARK = 'lsn:...' or STOPAT;
- a backup set striped over several files needs every stripe (family) of its media set.

Anything that prevents reaching the target is raised as ``RestorePlanError`` naming the LSN range and
the files on either side of the gap, so the operator knows exactly which file to find.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from biztalk_dr import tsql
from biztalk_dr.backup_files.headers import BackupSetHeader, BackupType
from biztalk_dr.errors import RestorePlanError

__all__ = ["Target", "RestoreStep", "RestorePlan", "StripedSet", "group_stripes", "plan_restore"]


@dataclass(frozen=True)
class Target:
    """Where the restore stops: ``Target()`` the newest point, ``Target(lsn=...)``, ``Target(time=...)``
    (naive: the server's local time as the backups record it)."""

    lsn: int | None = None
    time: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.lsn is not None and self.time is not None:
            raise ValueError("a restore target is an LSN or a point in time, not both")
        if self.time is not None and self.time.tzinfo is not None:
            raise ValueError("a point-in-time target is the server's local time as recorded: give it without a zone")

    def text(self) -> str:
        if self.lsn is not None:
            return f"lsn:{self.lsn}"
        if self.time is not None:
            return f"time:{self.time.isoformat()}"
        return "latest"


@dataclass(frozen=True)
class StripedSet:
    """One backup set with all the files (stripes) it was written to, in family order."""

    header: BackupSetHeader  # the first family's header; LSNs and dates are the same in every family
    paths: tuple[str, ...]

    @property
    def backup_type(self) -> BackupType:
        return self.header.backup_type

    def where(self) -> str:
        files = " + ".join(self.paths)
        return f"{files} (position {self.header.position})" if self.header.position != 1 else files


@dataclass(frozen=True)
class RestoreStep:
    backup: StripedSet
    recovery: tsql.Recovery
    stop_at_lsn: int | None = None
    stop_at: dt.datetime | None = None

    def with_options(self) -> list[str]:
        file = self.backup.header.position
        if self.backup.backup_type == "LOG":
            mark = f"lsn:{self.stop_at_lsn}" if self.stop_at_lsn is not None else None
            return tsql.restore_log_options(recovery=self.recovery, stop_at_mark=mark, stop_at=self.stop_at,
                                            file=file)
        return tsql.restore_database_options(recovery=self.recovery, file=file)

    def statement(self, database: str) -> str:
        """The RESTORE statement for ``database`` (the name to restore as)."""
        h = self.backup.header
        if self.backup.backup_type == "LOG":
            mark = f"lsn:{self.stop_at_lsn}" if self.stop_at_lsn is not None else None
            return tsql.restore_log(database, self.backup.paths, recovery=self.recovery, stop_at_mark=mark,
                                    stop_at=self.stop_at, file=h.position)
        return tsql.restore_database(database, self.backup.paths, recovery=self.recovery, file=h.position)

    def as_json(self) -> dict[str, Any]:
        h = self.backup.header
        return {"paths": list(self.backup.paths), "position": h.position, "backup_type": h.backup_type,
                "first_lsn": h.first_lsn, "last_lsn": h.last_lsn,
                "backup_finish_date": h.backup_finish_date.isoformat(), "with": self.with_options()}


@dataclass(frozen=True)
class RestorePlan:
    database: str
    target: Target
    steps: tuple[RestoreStep, ...]
    notes: tuple[str, ...] = field(default=())  # what was left out and why

    @property
    def reaches_lsn(self) -> int:
        last = self.steps[-1]
        return last.stop_at_lsn if last.stop_at_lsn is not None else last.backup.header.last_lsn

    def as_json(self) -> dict[str, Any]:
        return {"database": self.database, "target": self.target.text(),
                "steps": [s.as_json() for s in self.steps], "notes": list(self.notes)}


def group_stripes(headers: Iterable[BackupSetHeader]) -> tuple[list[StripedSet], list[str]]:
    """Backup sets with all their stripes, and a problem line for each set with a stripe missing.
    The same file given twice (or a shipped copy beside the original) counts once."""
    by_set: dict[tuple[str, int], dict[int, BackupSetHeader]] = {}
    for h in headers:
        by_set.setdefault((h.media_set_id, h.position), {}).setdefault(h.family_sequence, h)
    complete, problems = [], []
    for (media_set, position), families in by_set.items():
        first = families[min(families)]
        missing = sorted(set(range(1, first.family_count + 1)) - set(families))
        if missing:
            have = ", ".join(f"{families[n].path} (stripe {n})" for n in sorted(families))
            problems.append(
                f"the {first.backup_type} backup of {first.database_name} at position {position} of media set "
                f"{media_set} (LSN {first.first_lsn}–{first.last_lsn}) is striped over {first.family_count} files; "
                f"stripe(s) {', '.join(map(str, missing))} missing (have {have})")
            continue
        complete.append(StripedSet(first, tuple(families[n].path for n in sorted(families))))
    return complete, problems


def plan_restore(headers: Sequence[BackupSetHeader], database: str, target: Target = Target()) -> RestorePlan:
    """The shortest restore sequence of ``database`` that reaches ``target``; raises RestorePlanError."""
    mine = [h for h in headers if h.database_name.lower() == database.lower()]
    notes = [f"{h.path} (position {h.position}) is a backup of {h.database_name}, not {database}: ignored"
             for h in headers if h.database_name.lower() != database.lower()]
    sets, stripe_problems = group_stripes(mine)
    notes += [f"copy-only {s.backup_type} backup {s.where()} is never used as a base: ignored"
              for s in sets if s.header.copy_only and s.backup_type == "FULL"]
    fulls = sorted((s for s in sets if s.backup_type == "FULL" and not s.header.copy_only),
                   key=lambda s: s.header.last_lsn, reverse=True)
    if not fulls:
        counts = {t: sum(s.backup_type == t for s in sets) for t in ("DIFF", "LOG")}
        found = f"{len(mine)} backup set(s) of {database} found ({counts['DIFF']} differential, {counts['LOG']} log)" \
            if mine else f"no backup of {database} among the {len(headers)} backup set(s) read"
        raise RestorePlanError(database, [f"no usable full backup: {found}", *stripe_problems])
    problems_of_newest: list[str] = []
    for full in fulls:
        steps, problems = _plan_from_full(full, sets, target)
        if steps:
            if problems_of_newest:
                notes.append(f"the newest full backup {fulls[0].where()} cannot reach the target "
                             f"({'; '.join(problems_of_newest)}); an older full with an unbroken log chain is used")
            return RestorePlan(database, target, tuple(steps), tuple(notes + stripe_problems))
        problems_of_newest = problems_of_newest or problems
    raise RestorePlanError(database, [*problems_of_newest, *stripe_problems])


def _passes(s: StripedSet, target: Target) -> bool:
    """Whether restoring all of ``s`` would go beyond the target."""
    if target.lsn is not None:
        return s.header.last_lsn > target.lsn
    if target.time is not None:
        return s.header.backup_finish_date > target.time
    return False


def _plan_from_full(full: StripedSet, sets: Sequence[StripedSet],
                    target: Target) -> tuple[list[RestoreStep], list[str]]:
    """The steps from this full to the target, or the problems that stop it."""
    if _passes(full, target):
        end = (f"LSN {full.header.last_lsn}" if target.lsn is not None
               else full.header.backup_finish_date.isoformat())
        return [], [f"the full backup {full.where()} ends at {end}, after the target {target.text()}"]
    chain = [full]
    diffs = [s for s in sets if s.backup_type == "DIFF" and s.header.database_backup_lsn == full.header.checkpoint_lsn
             and s.header.last_lsn >= full.header.last_lsn and not _passes(s, target)]
    if diffs:
        chain.append(max(diffs, key=lambda s: s.header.last_lsn))
    point = chain[-1].header.last_lsn
    logs = [s for s in sets if s.backup_type == "LOG" and not s.header.copy_only]
    while not _reached(chain, target):
        covering = [s for s in logs if s.header.first_lsn <= point < s.header.last_lsn]
        if not covering:
            later = [s for s in logs if s.header.first_lsn > point]
            if later or target.lsn is not None or target.time is not None:
                return [], [_why_chain_stops(chain[-1], point, later, target)]
            break  # latest: no later log continues the chain
        chain.append(max(covering, key=lambda s: s.header.last_lsn))
        point = chain[-1].header.last_lsn
    return _steps(chain, target), []


def _reached(chain: Sequence[StripedSet], target: Target) -> bool:
    last = chain[-1].header
    if target.lsn is not None:
        return last.last_lsn >= target.lsn
    if target.time is not None:
        return last.backup_type == "LOG" and last.backup_finish_date >= target.time
    return False  # latest: follow the chain until no later log continues it


def _why_chain_stops(last: StripedSet, point: int, later: Sequence[StripedSet], target: Target) -> str:
    if later:
        nxt = min(later, key=lambda s: s.header.first_lsn)
        return (f"gap in the log chain: {last.where()} ends at LSN {point}, the next log backup {nxt.where()} starts "
                f"at LSN {nxt.header.first_lsn}; the log backups covering LSN {point} to {nxt.header.first_lsn} are "
                f"missing ({len(later)} later log backup(s) cannot be used)")
    goal = f"LSN {target.lsn}" if target.lsn is not None else str(target.time and target.time.isoformat())
    return (f"the log chain ends at LSN {point} with {last.where()} (finished "
            f"{last.header.backup_finish_date.isoformat()}), before the target {goal}: a later log backup is missing")


def _steps(chain: Sequence[StripedSet], target: Target) -> list[RestoreStep]:
    steps = [RestoreStep(s, tsql.Recovery.NORECOVERY) for s in chain[:-1]]
    last = chain[-1]
    stop_lsn = target.lsn if last.backup_type == "LOG" and target.lsn is not None else None
    stop_at = target.time if last.backup_type == "LOG" and target.time is not None else None
    steps.append(RestoreStep(last, tsql.Recovery.RECOVERY, stop_at_lsn=stop_lsn, stop_at=stop_at))
    return steps
