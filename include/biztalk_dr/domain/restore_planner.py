"""Restore sequences from backup sets alone: which full, differential and logs, in which order, with
which WITH options, to reach a target (the newest point, an LSN, a point in time, a mark by name), or why
no sequence can.

The rules are SQL Server's, each with the page that states it:

- **Identity.** A backup belongs to a database by its ``FamilyGUID`` ("ID of the original database when
  created. This value stays the same when the database is restored", *RESTORE HEADERONLY*), not by name: two
  databases of one name are two families, planned apart and never chained one onto the other. The plan uses
  the family that reaches the target; for "latest", the one created most recently (a note names the other; if
  its backups cannot restore, the planner says so rather than restore an older database instead).
- **Recovery forks.** Recovering a restored database starts a new recovery path (*Recovery Paths*: backups
  taken afterwards can then lie on two or more paths over the same range of LSNs); each backup says the fork it
  ends on (``RecoveryForkID``) and where that fork branched off (fork point and parent fork). A plan follows one
  branch from a full to its target, entering a child branch only at its fork point (stopping an older log there
  with ``STOPBEFOREMARK = 'lsn:fork point'``), and never applies a log of another branch (SQL Server refuses it
  with 4330). For "latest", the newest branch: the one no other branched from (of siblings, the one backed up
  last), and the restore must get onto it; where branches cannot be told apart (fork unknown and the logs
  overlap), or two are equally newest, the planner refuses and names both. A target both branches hold is
  refused naming both, unless ``Target.recovery_fork_id`` says which.
- **LSNs** (*RESTORE HEADERONLY*; *RESTORE Arguments*): ``LastLSN`` is "the log sequence number of the next
  log record after the backup set": a backup restores the records before it. ``STOPATMARK = 'lsn:X'``
  includes the record at X, so a target X needs a log with ``FirstLSN <= X < LastLSN``: a target equal to a
  backup's LastLSN needs the next log. A log applies when ``FirstLSN <= redo point < LastLSN``
  (*Apply Transaction Log Backups*); a full does not break the log chain, so an older full with an unbroken
  chain can reach what the newest cannot.
- **Differentials** apply to the full whose ``BackupSetGUID`` is their ``DifferentialBaseGUID`` (or, where
  GUIDs are not known, whose CheckpointLSN is their DatabaseBackupLSN); the newest that does not pass the
  target is used (*Differential Backups*).
- **Copy-only** (*Copy-Only Backups*): a copy-only full is never a differential base; known copy-only fulls
  (the catalog says so) are not used as a base at all. Read from files the flag is not known, so every full
  is a candidate and, for "latest", the one whose sequence reaches furthest wins: a copy-only full cannot
  hide a later differential of the real base. Copy-only log backups stay in the chain.
- **Media** (*Media Sets, Media Families, and Backup Sets*): a backup set striped over several files needs
  every family; stripes are one set by the set's ``BackupSetGUID``, not by media set and position (WITH INIT
  writes another set at the same position).
- **SIMPLE recovery**: with no log backups a point in time cannot be reached; the newest full (+
  differential) finished at or before it is restored and the plan says the time it really reaches.
- **Marks** (*Restore a Database to a Marked Transaction*): ``STOPATMARK = 'name' [AFTER 'datetime']`` stops
  at the first mark of that name (at or after the time); a name used twice without AFTER is ambiguous.

Every step but the last runs WITH NORECOVERY. Anything that prevents reaching the target is raised as
``RestorePlanError`` naming, for each full, why it cannot (the LSN gap and the files on either side).

The planner is O(N log N) in the number of backup sets: sets are grouped in one pass, each branch's logs
sorted once, and the chain walked with a binary search over a running maximum (``benchmarks/
bench_restore_planner.py``).
"""

from __future__ import annotations

import bisect
import datetime as dt
import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath, PureWindowsPath
from typing import Any

from biztalk_dr.backup_files.headers import BackupSetHeader, BackupType
from biztalk_dr.domain import tsql
from biztalk_dr.domain.errors import RestorePlanError

__all__ = ["Target", "LogMark", "RestorePoint", "RestoreStep", "RestorePlan", "StripedSet", "group_stripes",
           "marks_from_file_names", "plan_restore", "plan_restores", "plan_continuation"]

_BRANCH_SHIFT = 100  # a position on a branch path: (index of the branch on the path << 100) | LSN
_MANY = 8            # beyond this many files of one kind, notes are summed up


@dataclass(frozen=True)
class Target:
    """Where the restore stops: ``Target()`` the newest point, ``Target(lsn=...)`` (the record at that LSN
    included), ``Target(time=...)`` (naive: the server's local time as the backups record it),
    ``Target(mark=NAME, after=TIME)``. ``recovery_fork_id`` follows that branch, ``family_guid`` that one of
    several databases of the name."""

    lsn: int | None = None
    time: dt.datetime | None = None
    mark: str | None = None
    after: dt.datetime | None = None
    recovery_fork_id: str | None = None
    family_guid: str | None = None

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.lsn, self.time, self.mark)) > 1:
            raise ValueError("a restore target is an LSN, a point in time or a mark, not several")
        if self.after is not None and self.mark is None:
            raise ValueError("AFTER qualifies a mark: give the mark's name too")
        for value in (self.time, self.after):
            if value is not None and value.tzinfo is not None:
                raise ValueError("a point-in-time target is the server's local time as recorded: give it without a "
                                 "zone")

    def text(self) -> str:
        if self.lsn is not None:
            text = f"lsn:{self.lsn}"
        elif self.time is not None:
            text = f"time:{self.time.isoformat()}"
        elif self.mark is not None:
            text = f"mark:{self.mark}" + (f" after {self.after.isoformat()}" if self.after else "")
        else:
            text = "latest"
        if self.recovery_fork_id:
            text += f" on recovery fork {self.recovery_fork_id}"
        return text


@dataclass(frozen=True)
class LogMark:
    """A marked transaction (``BEGIN TRAN name WITH MARK``): its name, and where it is — its LSN
    (``msdb.dbo.logmarkhistory.lsn``) and/or the log backup that holds it (its BackupSetGUID or file: a
    BizTalk log backup is named after the mark written just before it, biztalk-dr.md section 2)."""

    name: str
    lsn: int | None = None
    time: dt.datetime | None = None
    backup_set_id: str | None = None
    path: str | None = None

    @classmethod
    def held_by(cls, name: str, header: BackupSetHeader) -> LogMark:
        """Mark ``name`` in the log backup ``header`` (a BizTalk set's log: the mark is written just before it)."""
        return cls(name, time=header.backup_start_date, backup_set_id=header.backup_set_id or None, path=header.path)

    def where(self) -> str:
        bits = [f"LSN {self.lsn}"] if self.lsn is not None else []
        if self.path:
            bits.append(f"in {self.path}")
        if self.time is not None:
            bits.append(f"at {self.time.isoformat()}")
        return f"mark {self.name} ({', '.join(bits) or 'place not known'})"


@dataclass(frozen=True)
class RestorePoint:
    """Where a database in the RESTORING state stands: every record before ``lsn`` restored, on recovery fork
    ``recovery_fork_id`` (``sys.master_files.redo_start_lsn`` / ``redo_start_fork_guid``)."""

    lsn: int
    recovery_fork_id: str | None = None
    family_guid: str | None = None

    @classmethod
    def after(cls, header: BackupSetHeader) -> RestorePoint:
        """The point after restoring ``header``'s backup set completely."""
        return cls(header.last_lsn, header.recovery_fork_id, header.family_guid)


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
    stop_at_lsn: int | None = None       # STOPATMARK = 'lsn:X' (the record at X included)
    stop_before_lsn: int | None = None   # STOPBEFOREMARK = 'lsn:X': where a branch is left at its fork point
    stop_at: dt.datetime | None = None
    stop_at_mark: str | None = None
    mark_after: dt.datetime | None = None

    def _log_options(self) -> dict[str, Any]:
        return {"recovery": self.recovery, "stop_at": self.stop_at, "mark_after": self.mark_after,
                "stop_at_mark": self.stop_at_mark or (f"lsn:{self.stop_at_lsn}" if self.stop_at_lsn is not None
                                                      else None),
                "stop_before_mark": f"lsn:{self.stop_before_lsn}" if self.stop_before_lsn is not None else None}

    def with_options(self) -> list[str]:
        file = self.backup.header.position
        if self.backup.backup_type == "LOG":
            return tsql.restore_log_options(file=file, **self._log_options())
        return tsql.restore_database_options(recovery=self.recovery, file=file)

    def statement(self, database: str, paths: Sequence[str] | None = None,
                  moves: Sequence[tsql.Move] = (), replace: bool = False) -> str:
        """The RESTORE statement for ``database`` (the name to restore as), from ``paths`` (default: where
        the files were read)."""
        h = self.backup.header
        disks = list(paths) if paths is not None else list(self.backup.paths)
        if self.backup.backup_type == "LOG":
            return tsql.restore_statement(database, disks, log=True, file=h.position, **self._log_options())
        return tsql.restore_statement(database, disks, log=False, recovery=self.recovery, file=h.position,
                                      moves=moves, replace=replace)

    def as_json(self) -> dict[str, Any]:
        h = self.backup.header
        return {"paths": list(self.backup.paths), "position": h.position, "backup_type": h.backup_type,
                "first_lsn": h.first_lsn, "last_lsn": h.last_lsn, "backup_set_guid": h.backup_set_id or None,
                "recovery_fork_id": h.recovery_fork_id,
                "backup_finish_date": h.backup_finish_date.isoformat(), "with": self.with_options()}


@dataclass(frozen=True)
class RestorePlan:
    database: str
    target: Target
    steps: tuple[RestoreStep, ...]
    notes: tuple[str, ...] = field(default=())  # what was left out and why
    family_guid: str | None = None
    recovery_fork_id: str | None = None  # the branch the restore ends on

    @property
    def reaches_lsn(self) -> int:
        last = self.steps[-1]
        return last.stop_at_lsn if last.stop_at_lsn is not None else last.backup.header.last_lsn

    @property
    def reaches_time(self) -> dt.datetime:
        """The point in time restored: the STOPAT time, else the last backup's finish."""
        last = self.steps[-1]
        return last.stop_at if last.stop_at is not None else last.backup.header.backup_finish_date

    def as_json(self) -> dict[str, Any]:
        return {"database": self.database, "target": self.target.text(), "family_guid": self.family_guid,
                "recovery_fork_id": self.recovery_fork_id, "reaches_lsn": self.reaches_lsn,
                "reaches_time": self.reaches_time.isoformat(),
                "steps": [s.as_json() for s in self.steps], "notes": list(self.notes)}


# ---------------------------------------------------------------------------------------------- backup sets
def _set_key(h: BackupSetHeader) -> object:
    """What makes a backup set one set: its BackupSetGUID, or (a catalog row without one) its place and LSNs."""
    return h.backup_set_id or (h.media_set_id, h.position, h.backup_type, h.first_lsn, h.last_lsn)


def _stripe_sets(headers: Iterable[BackupSetHeader]) -> tuple[list[BackupSetHeader], dict[int, tuple[str, ...]],
                                                                list[str]]:
    """(one header per complete set, the paths of each striped set by ``id`` of its header, problems). A set
    seen twice (a shipped copy beside the original) counts once; one set per file is the fast path."""
    headers = headers if isinstance(headers, list) else list(headers)
    ids = {h.backup_set_id for h in headers}
    if len(ids) == len(headers) and "" not in ids and {h.family_count for h in headers} <= {1}:
        return list(headers), {}, []  # one file per set, none given twice: the sets as they are
    seen: dict[object, BackupSetHeader] = {}
    striped: dict[object, dict[int, BackupSetHeader]] = {}
    for h in headers:
        key = _set_key(h)
        if h.family_count == 1:
            seen.setdefault(key, h)
        else:
            striped.setdefault(key, {}).setdefault(h.family_sequence, h)
    sets = list(seen.values())
    paths: dict[int, tuple[str, ...]] = {}
    problems = []
    for families in striped.values():
        first = families[min(families)]
        missing = sorted(set(range(1, first.family_count + 1)) - set(families))
        if missing:
            have = ", ".join(f"{families[n].path} (stripe {n})" for n in sorted(families))
            where = (f"backup set {first.backup_set_id}" if first.backup_set_id else
                     f"position {first.position} of media set {first.media_set_id}")
            problems.append(
                f"the {first.backup_type} backup of {first.database_name} at {where} (LSN {first.first_lsn}–"
                f"{first.last_lsn}) is striped over {first.family_count} files; stripe(s) "
                f"{', '.join(map(str, missing))} missing (have {have})")
            continue
        ordered = [families[n] for n in sorted(families)]
        sets.append(ordered[0])
        paths[id(ordered[0])] = tuple(f.path for f in ordered)
    return sets, paths, problems


def group_stripes(headers: Iterable[BackupSetHeader]) -> tuple[list[StripedSet], list[str]]:
    """Backup sets with all their stripes, and a problem line for each set with a stripe missing.
    The same file given twice (or a shipped copy beside the original) counts once."""
    sets, paths, problems = _stripe_sets(headers)
    return [StripedSet(h, paths.get(id(h), (h.path,))) for h in sets], problems


_BIZTALK_LOG_NAME = re.compile(r"_Log_(?P<mark>[^\\/]+?)(?:\.[A-Za-z]+)?$")


def marks_from_file_names(headers: Iterable[BackupSetHeader]) -> list[LogMark]:
    """The marks BizTalk log backups carry in their names: ``<server>_<db>_Log_<mark>.bak`` holds the mark
    written just before it (sp_MarkAll marks, then backs up). The mark's time is at most the backup's start."""
    found = []
    for h in headers:
        if h.backup_type != "LOG":
            continue
        name = PureWindowsPath(h.path).name if "\\" in h.path else PurePath(h.path).name
        match = _BIZTALK_LOG_NAME.search(name)
        if match and f"_{h.database_name.lower()}_log_" in name.lower():
            found.append(LogMark(match["mark"], time=h.backup_start_date, backup_set_id=h.backup_set_id or None,
                                 path=h.path))
    return found


# ---------------------------------------------------------------------------------------------- branches
@dataclass
class _Branch:
    """One recovery fork of a family: where it branched off (parent fork, fork point)."""

    fork: str | None
    parent: str | None = None
    point: int | None = None


def _branches(sets: Sequence[BackupSetHeader]) -> dict[str | None, _Branch]:
    """Each recovery fork the sets end on, with where it branched off (from any set of it that says so:
    every backup of a forked database carries the fork point and parent fork)."""
    branches = {fork: _Branch(fork) for fork in {h.recovery_fork_id for h in sets}}
    for h in sets:
        if h.branch_parent_id is None or h.branch_lsn is None:
            continue
        branch = branches[h.recovery_fork_id]
        if branch.parent is None and h.branch_parent_id != h.recovery_fork_id:
            branch.parent, branch.point = h.branch_parent_id, h.branch_lsn
    return branches


def _path_to(branches: Mapping[str | None, _Branch], fork: str | None) -> list[_Branch]:
    """The branches from the oldest known ancestor to ``fork``."""
    path = [branches.get(fork) or _Branch(fork)]
    while path[0].parent is not None and len(path) <= len(branches):
        path.insert(0, branches.get(path[0].parent) or _Branch(path[0].parent))
    return path


def _leaves(branches: Mapping[str | None, _Branch]) -> list[str | None]:
    parents = {b.parent for b in branches.values() if b.parent is not None}
    return [f for f in branches if f not in parents]


# ---------------------------------------------------------------------------------------------- one branch path
@dataclass(slots=True)
class _Interval:
    """A log backup on a branch path: from ``start`` to ``end`` (path positions); ``clip`` is the fork point
    where the path leaves its branch inside this log (restored WITH STOPBEFOREMARK there)."""

    start: int
    end: int
    header: BackupSetHeader
    clip: int | None = None


class _Line:
    """The backups usable on one branch path, as positions on one line: logs as intervals, fulls and
    differentials as points. Positions are (branch index << 100) | LSN; a log of branch i+1 that starts at or
    before its fork point starts on branch i, so it covers a database stopped there on branch i.
    Logs are kept as sorted arrays (a year of a database is 35,000 of them); an :class:`_Interval` is made only
    for those a walk looks at."""

    def __init__(self, path: list[_Branch], sets: Sequence[BackupSetHeader], *, unknown_fork_on: str | None = None
                 ) -> None:
        self.path = path
        self.index: dict[str | None, int] = {b.fork: i for i, b in enumerate(path)}
        if unknown_fork_on is not None and unknown_fork_on in self.index:  # the database has one branch only
            self.index[None] = self.index[unknown_fork_on]
        self.exits = [path[i + 1].point for i in range(len(path) - 1)] + [None]  # where branch i is left
        self.off_path = 0
        if len(path) == 1:  # one branch: positions are the LSNs themselves (the common case, kept fast)
            forks = {h.recovery_fork_id for h in sets}
            mine = list(sets) if forks <= set(self.index) else \
                [h for h in sets if self.index.get(h.recovery_fork_id) == 0]
            self.off_path = len(sets) - len(mine)
            logs = sorted((h for h in mine if h.backup_type == "LOG"), key=_FIRST_LSN)
            self.fulls = [h for h in mine if h.backup_type == "FULL"]
            self.diffs = [h for h in mine if h.backup_type == "DIFF"]
            self._headers = logs
            self.starts = [h.first_lsn for h in logs]
            self._ends = [h.last_lsn for h in logs]
            self._clips: list[int | None] | None = None
        else:
            self.fulls, self.diffs = [], []
            parts: list[tuple[int, int, int | None, BackupSetHeader]] = []
            for h in sets:
                i = self.index.get(h.recovery_fork_id)
                if i is None:
                    self.off_path += 1
                elif h.backup_type == "LOG":
                    part = self._interval(h, i)
                    if part is None:
                        self.off_path += 1
                    else:
                        parts.append((*part, h))
                elif self.exits[i] is None or h.last_lsn <= self.exits[i]:
                    (self.fulls if h.backup_type == "FULL" else self.diffs).append(h)
                else:
                    self.off_path += 1
            parts.sort(key=lambda part: part[0])
            self.starts = [part[0] for part in parts]
            self._ends = [part[1] for part in parts]
            self._clips = [part[2] for part in parts]
            self._headers = [part[3] for part in parts]
        best, top, self._best = -1, -1, []
        for n, end in enumerate(self._ends):  # _best[n]: the log among the first n+1 that ends last
            if end > top:
                best, top = n, end
            self._best.append(best)
        self._made: dict[int, _Interval] = {}

    def interval(self, n: int) -> _Interval:
        made = self._made.get(n)
        if made is None:
            made = self._made[n] = _Interval(self.starts[n], self._ends[n], self._headers[n],
                                             self._clips[n] if self._clips is not None else None)
        return made

    def interval_of(self, h: BackupSetHeader) -> _Interval | None:
        n = next((n for n, other in enumerate(self._headers) if other is h), None)
        return None if n is None else self.interval(n)

    def position(self, i: int, lsn: int) -> int:
        """LSN ``lsn`` on branch ``i`` of the path. A database stopped at branch i+1's fork point is still on
        branch i (its fork changes only when a log of i+1 is applied), so that point is (i, X): the logs of i+1
        start on branch i (see :meth:`_interval`), the logs of i+2 do not."""
        return (i << _BRANCH_SHIFT) | lsn

    def lsn_position(self, lsn: int) -> int:
        """The position of ``lsn`` on the path: on the last branch whose fork point is at or before it."""
        i = len(self.path) - 1
        while i > 0 and (self.path[i].point is None or lsn < self.path[i].point):
            i -= 1
        return self.position(i, lsn)

    def _interval(self, h: BackupSetHeader, i: int) -> tuple[int, int, int | None] | None:
        """(start, end, clip) of the log ``h`` of branch ``i`` on this path, or None when no part of it is: it
        branched from another fork, or starts after the path left branch ``i``."""
        start_branch = i
        point = self.path[i].point if i > 0 else None
        if point is not None and h.first_lsn <= point:  # begins on the parent's side of the fork point, or at it
            parent = h.branch_parent_id
            if (parent is not None and parent != self.path[i - 1].fork) or (parent is None and h.first_lsn < point):
                return None
            start_branch = i - 1
        exit_ = self.exits[i]
        if exit_ is not None and h.first_lsn >= exit_:
            return None
        clip = exit_ if exit_ is not None and h.last_lsn > exit_ else None
        start = self.position(start_branch, h.first_lsn)
        end = self.position(i, h.last_lsn if clip is None else clip)
        return (start, end, clip) if end > start else None

    @property
    def has_logs(self) -> bool:
        return bool(self.starts)

    def covering(self, position: int) -> _Interval | None:
        """The log that covers ``position`` and ends last (the greedy choice, optimal on one line)."""
        n = bisect.bisect_right(self.starts, position) - 1
        if n < 0:
            return None
        best = self._best[n]
        return self.interval(best) if self._ends[best] > position else None

    def later_logs(self, position: int) -> int:
        return len(self.starts) - bisect.bisect_right(self.starts, position)

    def next_after(self, position: int) -> _Interval | None:
        n = bisect.bisect_right(self.starts, position)
        return self.interval(n) if n < len(self.starts) else None


_FIRST_LSN = operator.attrgetter("first_lsn")


# ---------------------------------------------------------------------------------------------- goals
@dataclass(frozen=True)
class _Goal:
    """The target resolved on one path: what ends the walk."""

    kind: str                       # latest | lsn | time | mark-log
    position: int | None = None     # lsn, or the mark's LSN
    time: dt.datetime | None = None
    mark: LogMark | None = None
    mark_log: BackupSetHeader | None = None  # the log backup that holds the mark

    def passes(self, line: _Line, h: BackupSetHeader, at: int) -> bool:
        """Whether a full or differential ending at ``at`` goes beyond the goal."""
        if self.kind == "time":
            return h.backup_finish_date > self.time
        if self.position is not None:
            return at > self.position
        if self.mark_log is not None:  # the mark is somewhere in its log backup; a backup ending inside that log
            log = self.mark_log         # is taken to be before it unless it finished after the mark's time (BizTalk
            i = line.index.get(log.recovery_fork_id, 0)  # writes the mark right before the log backup it names)
            if at >= line.position(i, log.last_lsn):
                return True
            return (at > line.position(i, log.first_lsn) and self.mark is not None and self.mark.time is not None
                    and h.backup_finish_date > self.mark.time)
        return False


def _resolve_mark(target: Target, marks: Sequence[LogMark], family: Sequence[BackupSetHeader]) -> LogMark:
    name = target.mark or ""
    by_guid = {h.backup_set_id: h for h in family if h.backup_set_id}
    by_path = {h.path: h for h in family}
    found = [m for m in marks if m.name.lower() == name.lower()
             and (m.lsn is not None or by_guid.get(m.backup_set_id or "") or by_path.get(m.path or ""))]
    if target.after is not None:
        found = [m for m in found if m.time is None or m.time >= target.after]
        found.sort(key=lambda m: (m.time or dt.datetime.max, m.lsn or 0))
        found = found[:1]
    unique = {(m.lsn, m.backup_set_id or m.path): m for m in found}
    if not unique:
        after = f" after {target.after.isoformat()}" if target.after else ""
        raise _Refusal(f"mark {name}{after} is not among the marks the backups or the catalog carry "
                       f"({len({m.name for m in marks})} mark name(s) known); give --stop-at-lsn with the mark's LSN "
                       "(msdb.dbo.logmarkhistory) if it is in a log backup not named after it")
    if len(unique) > 1:
        listed = "; ".join(m.where() for m in unique.values())
        raise _Refusal(f"mark {name} is used more than once ({listed}): say which with --after (STOPATMARK ... AFTER "
                       "'datetime')")
    return next(iter(unique.values()))


class _Refusal(Exception):
    """A target that cannot be planned for any full: the reason is the whole answer."""


# ---------------------------------------------------------------------------------------------- planning
@dataclass
class _Attempt:
    """The best plan of one branch path, or why each full of it cannot reach the goal."""

    steps: list[RestoreStep] | None
    problems: list[str]
    notes: list[str]
    start: int = -1
    line: _Line | None = None


def _steps_for(chain: Sequence[tuple[BackupSetHeader, int | None]], paths: Mapping[int, tuple[str, ...]],
               goal: _Goal, final: _Interval | None) -> list[RestoreStep]:
    def striped(h: BackupSetHeader) -> StripedSet:
        return StripedSet(h, paths.get(id(h), (h.path,)))

    steps = [RestoreStep(striped(h), tsql.Recovery.NORECOVERY, stop_before_lsn=clip) for h, clip in chain]
    if final is None:  # the last step of the chain recovers as it is
        last = steps.pop()
        steps.append(RestoreStep(last.backup, tsql.Recovery.RECOVERY, stop_before_lsn=last.stop_before_lsn))
        return steps
    kwargs: dict[str, Any] = {}
    if goal.kind == "lsn":
        kwargs["stop_at_lsn"] = _lsn(goal.position)
    elif goal.kind == "time":
        kwargs["stop_at"] = goal.time
    elif goal.mark is not None:
        kwargs["stop_at_mark"], kwargs["mark_after"] = goal.mark.name, None
    steps.append(RestoreStep(striped(final.header), tsql.Recovery.RECOVERY, **kwargs))
    return steps


def _walk(line: _Line, start: int, goal: _Goal, failed: dict[int, str], base: str = "the restored database"
          ) -> tuple[list[_Interval], _Interval | None, str | None]:
    """From ``start``, the logs to apply and the final one that reaches the goal (None for latest), or the
    reason the chain stops. ``failed`` remembers logs from which the chain is known to stop, and why: walks
    from many fulls over one chain stay linear in all."""
    holder = None
    if goal.kind == "mark-log":
        holder = line.interval_of(goal.mark_log)
        if holder is None:
            return [], None, f"the log backup holding {goal.mark.where()} is not on this branch's path"
    chain: list[_Interval] = []
    position = start
    while True:
        if holder is not None:
            if holder.start <= position < holder.end:
                return chain, holder, None
            if position >= holder.end:
                return chain, None, f"the restore is already past {goal.mark.where()} (at LSN {_lsn(position)})"
        if goal.kind == "lsn" and position > goal.position:
            return chain, None, f"the restore is already past the target (at LSN {_lsn(position)})"
        nxt = line.covering(position)
        if nxt is None:
            if goal.kind == "latest" and not line.later_logs(position):
                return chain, None, None
            return chain, None, _why_stop(line, chain, position, goal, base)
        if id(nxt) in failed:
            return chain, None, failed[id(nxt)]
        if goal.kind == "lsn" and nxt.start <= goal.position < nxt.end:
            return chain, nxt, None
        if goal.kind == "time" and nxt.header.backup_finish_date >= goal.time:
            if nxt.clip is not None:
                return chain, None, (f"the point in time {goal.time.isoformat()} falls in {nxt.header.path}, which "
                                     f"this branch leaves at its fork point LSN {nxt.clip} at a time the backups do not "
                                     "record: give --stop-at-lsn or --recovery-fork")
            return chain, nxt, None
        if holder is not None and nxt.start <= holder.start and nxt.end >= holder.end:
            return chain, nxt, None  # it holds all the mark's log backup holds
        chain.append(nxt)
        position = nxt.end


def _lsn(position: int) -> int:
    return position & ((1 << _BRANCH_SHIFT) - 1)


def _why_stop(line: _Line, chain: Sequence[_Interval], position: int, goal: _Goal, base: str) -> str:
    lsn = _lsn(position)
    last = chain[-1].header if chain else None
    after = line.next_after(position)
    if after is not None:
        later = line.later_logs(position)
        before = last.path if last is not None else base
        nxt = after.header
        return (f"gap in the log chain: {before} ends at LSN {lsn}, the next log backup {nxt.path} starts at LSN "
                f"{nxt.first_lsn}; the log backups covering LSN {lsn} to {nxt.first_lsn} are missing ({later} later "
                "log backup(s) cannot be used)")
    goal_text = {"lsn": lambda: f"LSN {_lsn(goal.position)}",
                 "time": lambda: goal.time.isoformat(),
                 "mark-log": lambda: goal.mark.where() if goal.mark else "the mark",
                 "latest": lambda: "the newest point"}[goal.kind]()
    if last is None:
        return (f"{base} ends at LSN {lsn} and no log backup continues it towards the target {goal_text}: a later "
                "log backup is missing")
    return (f"the log chain ends at LSN {lsn} with {last.path} (finished {last.backup_finish_date.isoformat()}), "
            f"before the target {goal_text}: a later log backup is missing")


def _plan_path(line: _Line, paths: Mapping[int, tuple[str, ...]], goal: _Goal, known_copy_only: set[int],
               restored: RestorePoint | None) -> _Attempt:
    """The best sequence on one branch path: the start (full + differential) furthest along that reaches the
    goal. On one line, starting further along never reaches less (any log covering a later point that an
    earlier start's chain uses is there for the later start too), so the first start that works is the answer
    and for latest the furthest start is."""
    if restored is not None:
        return _continue(line, paths, goal, restored)
    bases = [f for f in line.fulls if id(f) not in known_copy_only]
    if not bases:
        return _Attempt(None, [], [], line=line)
    diffs_of: dict[object, list[BackupSetHeader]] = {}
    for d in line.diffs:
        diffs_of.setdefault(d.differential_base_guid or ("lsn", d.database_backup_lsn), []).append(d)
    starts: list[tuple[int, BackupSetHeader, BackupSetHeader | None]] = []
    problems: list[str] = []
    for full in bases:
        at = line.position(line.index[full.recovery_fork_id], full.last_lsn)
        if goal.passes(line, full, at):
            end = f"LSN {full.last_lsn}" if goal.kind != "time" else full.backup_finish_date.isoformat()
            problems.append(f"the full backup {_where(full, paths)} ends at {end}, after the target {_goal_text(goal)}")
            continue
        candidates = diffs_of.get(full.backup_set_id, []) if full.backup_set_id else []
        candidates += [d for d in diffs_of.get(("lsn", full.checkpoint_lsn), [])]
        best_diff, best_at = None, at
        for d in candidates:
            if d.recovery_fork_id != full.recovery_fork_id and not (  # a differential of a child branch: its
                    d.branch_parent_id == full.recovery_fork_id and d.branch_lsn is not None  # base before the fork
                    and full.last_lsn <= d.branch_lsn):  # point (SQL Server checks the recovery path, 4330)
                continue
            d_at = line.position(line.index[d.recovery_fork_id], d.last_lsn)
            if d.last_lsn >= full.last_lsn and d_at > best_at and not goal.passes(line, d, d_at):
                best_diff, best_at = d, d_at
        starts.append((best_at, full, best_diff))
    starts.sort(key=lambda s: (s[0], s[1].backup_finish_date), reverse=True)
    if goal.kind == "time" and not line.has_logs and starts:  # SIMPLE recovery: no point in time between backups
        at, full, diff = starts[0]
        base = [full] + ([diff] if diff is not None else [])
        reached = base[-1].backup_finish_date
        note = (f"no log backups: a point in time cannot be restored (SIMPLE recovery); the restore reaches "
                f"{reached.isoformat()}, when {_where(base[-1], paths)} finished, not {goal.time.isoformat()}")
        return _Attempt(_steps_for([(h, None) for h in base], paths, goal, None), [], [note], at, line)
    failed: dict[int, str] = {}
    tried: list[tuple[BackupSetHeader, str]] = []
    newest = max(bases, key=lambda f: (f.last_lsn, f.backup_finish_date))
    tip = line.path[-1]  # latest must get onto it: at least to its fork point (its first state) on the parent
    tip_starts = line.position(len(line.path) - 2, tip.point) if tip.point is not None else None
    for at, full, diff in starts:
        chain, final, why = _walk(line, at, goal, failed, _where(diff or full, paths))
        end = chain[-1].end if chain else at
        if why is None and goal.kind == "latest" and tip_starts is not None and end < tip_starts:
            why = (f"the restore ends at LSN {_lsn(end)} on recovery fork {line.path[end >> _BRANCH_SHIFT].fork}, "
                   f"before recovery fork {tip.fork} branched off it (at LSN {tip.point}): none of that branch's "
                   "backups can be reached")
        if why is None:
            base = [(full, None)] + ([(diff, None)] if diff is not None else [])
            notes = []
            if full is not newest:
                reasons = "; ".join([p for _, p in tried[:2]] + problems[:2]) or "its sequence reaches less far"
                notes.append(f"the newest full backup {_where(newest, paths)} cannot reach the target ({reasons}); "
                             "an older full with an unbroken log chain is used")
            return _Attempt(_steps_for(base + [(s.header, s.clip) for s in chain], paths, goal, final), [], notes,
                            at, line)
        for s in chain:
            failed[id(s)] = why
        tried.append((full, why))
    grouped: dict[str, list[BackupSetHeader]] = {}
    for full, why in tried:
        grouped.setdefault(why, []).append(full)
    if len(tried) == 1 and not problems:
        return _Attempt(None, [tried[0][1]], [], line=line)
    for why, fulls in grouped.items():
        named = ", ".join(_where(f, paths) for f in fulls[:3]) + (f" and {len(fulls) - 3} more" if len(fulls) > 3
                                                                  else "")
        problems.append(f"from the full backup(s) {named}: {why}")
    return _Attempt(None, _summed(problems), [], line=line)


def _continue(line: _Line, paths: Mapping[int, tuple[str, ...]], goal: _Goal, restored: RestorePoint) -> _Attempt:
    """The log steps from a database already restoring at ``restored``."""
    if restored.recovery_fork_id is None:
        start = line.lsn_position(restored.lsn)
    elif restored.recovery_fork_id in line.index:
        i = line.index[restored.recovery_fork_id]
        exit_ = line.exits[i]
        if exit_ is not None and restored.lsn > exit_:
            return _Attempt(None, [f"the database is restoring on recovery fork {restored.recovery_fork_id} at LSN "
                                   f"{restored.lsn}, past LSN {exit_} where recovery fork {line.path[i + 1].fork} "
                                   "branched off: that branch cannot be reached from it (a new full restore can)"], [],
                            line=line)
        start = line.position(i, restored.lsn)
    else:
        return _Attempt(None, [f"the database is restoring on recovery fork {restored.recovery_fork_id}, which no "
                               "backup here continues"], [], line=line)
    if goal.kind == "time":
        return _Attempt(None, ["a point-in-time target cannot be checked from a restoring database's LSN"], [],
                        line=line)
    chain, final, why = _walk(line, start, goal, {})
    if why is not None:
        return _Attempt(None, [why], [], line=line)
    if not chain and final is None:
        return _Attempt(None, [f"no log backup continues the restore from LSN {restored.lsn}: it is already at the "
                               "newest point these backups reach"], [], line=line)
    return _Attempt(_steps_for([(s.header, s.clip) for s in chain], paths, goal, final), [], [], start, line)


def _summed(problems: list[str]) -> list[str]:
    if len(problems) <= 2 * _MANY:
        return problems
    return problems[:_MANY] + [f"... and {len(problems) - _MANY} more full backup(s) that cannot reach it either"]


def _goal_text(goal: _Goal) -> str:
    if goal.kind == "time":
        return f"time:{goal.time.isoformat()}"
    if goal.kind == "lsn":
        return f"lsn:{_lsn(goal.position)}"
    if goal.kind == "mark-log":
        return goal.mark.where() if goal.mark else "the mark"
    return "latest"


def _where(h: BackupSetHeader, paths: Mapping[int, tuple[str, ...]]) -> str:
    return StripedSet(h, paths.get(id(h), (h.path,))).where()


def _goal_on(line: _Line, target: Target, mark: LogMark | None, holder: BackupSetHeader | None) -> _Goal:
    if target.lsn is not None:
        return _Goal("lsn", position=line.lsn_position(target.lsn))
    if target.time is not None:
        return _Goal("time", time=target.time)
    if mark is not None and holder is not None:
        return _Goal("mark-log", mark=mark, mark_log=holder)
    if mark is not None:  # known by its LSN only (the catalog): planned as that LSN, stopped by name
        return _Goal("lsn", position=line.lsn_position(mark.lsn or 0), mark=mark)
    return _Goal("latest")


def _plan_family(database: str, family: list[BackupSetHeader], paths: Mapping[int, tuple[str, ...]],
                 target: Target, marks: Sequence[LogMark], restored: RestorePoint | None,
                 known_copy_only: set[int]) -> tuple[RestorePlan | None, list[str]]:
    """(the plan or None, problems) for one family (one database identity); _Refusal when the target cannot
    be planned at all (an ambiguous mark or branch)."""
    notes: list[str] = []
    mark = _resolve_mark(target, marks, family) if target.mark is not None else None
    holder = None
    if mark is not None and (mark.backup_set_id or mark.path):
        holder = next((h for h in family if (mark.backup_set_id and h.backup_set_id == mark.backup_set_id)
                       or (mark.path and h.path == mark.path)), None)
    branches = _branches(family)
    known = [f for f in branches if f is not None]
    unknown_fork_on = None
    if None in branches and known:
        unknown = [h for h in family if h.recovery_fork_id is None]
        if len(known) == 1:
            unknown_fork_on = known[0]
        else:
            notes.append(f"{len(unknown)} backup set(s) do not say which recovery branch they are on, and the "
                         f"database has {len(known)} branches: not used ({', '.join(h.path for h in unknown[:3])})")
        del branches[None]
    elif None in branches:
        ambiguous = _overlapping_branches(family, known_copy_only, paths)
        if ambiguous:
            raise _Refusal(ambiguous)
    point_target = target.lsn is not None or target.time is not None or (mark is not None and holder is None)
    if target.recovery_fork_id is not None:
        if target.recovery_fork_id not in branches:
            raise _Refusal(f"no backup of {database} is on recovery fork {target.recovery_fork_id} (the backups are on "
                           f"{', '.join(str(f) for f in branches)})")
        tips = [target.recovery_fork_id]
    elif holder is not None:
        tips = [holder.recovery_fork_id if holder.recovery_fork_id in branches else unknown_fork_on]
    elif restored is not None and restored.recovery_fork_id in branches:
        tips = [f for f in _leaves(branches)
                if restored.recovery_fork_id in {b.fork for b in _path_to(branches, f)}]
    elif point_target:
        tips = list(branches)  # the point may lie on an older branch's own part too: compare the plans
    else:
        tips = _leaves(branches)
        if len(tips) > 1:  # sibling branches (a database restored and recovered twice): the one backed up last
            newest = {tip: max(h.backup_finish_date for h in family if h.recovery_fork_id == tip) for tip in tips}
            tips.sort(key=newest.__getitem__, reverse=True)
            named = "; ".join(f"recovery fork {tip} (newest backup {_newest_on(family, tip)})" for tip in tips)
            if newest[tips[0]] == newest[tips[1]]:
                raise _Refusal(f"the backups of {database} hold {len(tips)} recovery branches, none branched from the "
                               f"other(s), backed up last at the same time: {named}; say which with --recovery-fork")
            notes.append(f"the backups of {database} hold {len(tips)} recovery branches, none branched from the "
                         f"other(s): the one backed up last is followed ({named})")
            tips = tips[:1]
    attempts: dict[str | None, _Attempt] = {}
    for tip in tips:
        line = _Line(_path_to(branches, tip), family, unknown_fork_on=unknown_fork_on)
        goal = _goal_on(line, target, mark, holder)
        attempt = _plan_path(line, paths, goal, known_copy_only, restored)
        if attempt.steps is not None and mark is not None:
            last = attempt.steps[-1]
            attempt.steps[-1] = RestoreStep(last.backup, last.recovery, stop_at_mark=mark.name, mark_after=target.after)
        attempts[tip] = attempt
    good = {tip: a for tip, a in attempts.items() if a.steps is not None}
    distinct: dict[tuple, str | None] = {}
    for tip, a in good.items():  # plans along different branch paths that restore the same backups are one plan
        key = tuple((id(s.backup.header), s.stop_before_lsn) for s in a.steps) if len(good) > 1 else ()
        distinct.setdefault(key, tip)
    if len(distinct) > 1:
        named = "; ".join(f"recovery fork {tip} (ending with {good[tip].steps[-1].backup.where()}, finished "
                          f"{good[tip].steps[-1].backup.header.backup_finish_date.isoformat()})"
                          for tip in distinct.values())
        raise _Refusal(f"the target {target.text()} is on more than one recovery branch of {database}: {named}; "
                       "say which with --recovery-fork")
    if not good:
        return None, [p for a in attempts.values() for p in a.problems]
    tip = next(iter(distinct.values()))
    attempt = good[tip]
    if attempt.line is not None and attempt.line.off_path and len(branches) > 1:
        notes.append(f"{attempt.line.off_path} backup set(s) of {database} on other recovery branches (or after this "
                     f"branch left theirs) are not used: the plan follows recovery fork {tip}")
    last_fork = attempt.steps[-1].backup.header.recovery_fork_id or unknown_fork_on
    return RestorePlan(database, target, tuple(attempt.steps), tuple(notes + attempt.notes),
                       family[0].family_guid, last_fork), []


def _newest_on(family: Sequence[BackupSetHeader], fork: str | None) -> str:
    on = [h for h in family if h.recovery_fork_id == fork]
    newest = max(on, key=lambda h: h.backup_finish_date)
    return f"{newest.path}, finished {newest.backup_finish_date.isoformat()}"


def _overlapping_branches(family: Sequence[BackupSetHeader], known_copy_only: set[int],
                          paths: Mapping[int, tuple[str, ...]]) -> str | None:
    """With no recovery fork known: two log backups that overlap in LSN in a way one branch never makes (on one
    branch a log starts where the previous one ended; only a copy-only log shares its start with another)."""
    logs = sorted((h for h in family if h.backup_type == "LOG"), key=lambda h: (h.first_lsn, -h.last_lsn))
    group_start, group_end, group_head = None, None, None
    for h in logs:
        if group_start is not None and h.first_lsn == group_start:
            if h.last_lsn != group_end and id(h) not in known_copy_only and h.copy_only is not True:
                return _two_branches(group_head, h, paths)
            continue
        if group_end is not None and h.first_lsn < group_end:
            return _two_branches(group_head, h, paths)
        group_start, group_end, group_head = h.first_lsn, h.last_lsn, h
    return None


def _two_branches(a: BackupSetHeader, b: BackupSetHeader, paths: Mapping[int, tuple[str, ...]]) -> str:
    return (f"the log backups {_where(a, paths)} (LSN {a.first_lsn}–{a.last_lsn}) and {_where(b, paths)} (LSN "
            f"{b.first_lsn}–{b.last_lsn}) overlap as two recovery branches do, and neither says which branch it is "
            "on: restore one branch by hand (RESTORE HEADERONLY's RecoveryForkID tells them apart)")


def _families(sets: Sequence[BackupSetHeader]) -> tuple[dict[str | None, list[BackupSetHeader]], list[str]]:
    guids = {h.family_guid for h in sets}
    if len(guids) == 1:
        return {guids.pop(): list(sets)}, []
    by_family: dict[str | None, list[BackupSetHeader]] = {}
    for h in sets:
        by_family.setdefault(h.family_guid, []).append(h)
    notes = []
    unknown = by_family.get(None)
    known = [f for f in by_family if f is not None]
    if unknown and known:
        if len(known) == 1:
            by_family[known[0]].extend(unknown)
        else:
            notes.append(f"{len(unknown)} backup set(s) do not say which database (FamilyGUID) they belong to and "
                         f"{len(known)} databases of this name have backups here: not used")
        del by_family[None]
    return by_family, notes


def _plan(database: str, mine: list[BackupSetHeader], others: int, other_notes: list[str], total: int,
          target: Target, marks: Sequence[LogMark], restored: RestorePoint | None) -> RestorePlan:
    sets, paths, stripe_problems = _stripe_sets(mine)
    notes = list(other_notes)
    known_copy_only = {id(h) for h in sets if h.copy_only is True and h.backup_type == "FULL"}
    notes += [f"copy-only {h.backup_type} backup {_where(h, paths)} is never used as a base: ignored"
              for h in sets if id(h) in known_copy_only][:_MANY]
    families, family_notes = _families(sets)
    notes += family_notes
    if target.family_guid is not None:
        if target.family_guid not in families:
            raise RestorePlanError(database, [f"no backup of {database} belongs to the database with FamilyGUID "
                                              f"{target.family_guid}"])
        families = {target.family_guid: families[target.family_guid]}
    if not any(h.backup_type == "FULL" and id(h) not in known_copy_only for h in sets) and restored is None:
        counts = {t: sum(h.backup_type == t for h in sets) for t in ("DIFF", "LOG")}
        found = (f"{len(mine)} backup set(s) of {database} found ({counts['DIFF']} differential, {counts['LOG']} log)"
                 if mine else f"no backup of {database} among the {total} backup set(s) read")
        raise RestorePlanError(database, [f"no usable full backup: {found}", *stripe_problems])
    latest = target.lsn is None and target.time is None and target.mark is None and restored is None
    if latest and len(families) > 1:  # latest: the database created most recently, not an older one instead
        def age(guid: str | None) -> tuple:
            return (max(h.database_creation_date for h in families[guid]),
                    max(h.backup_finish_date for h in families[guid]))
        ordered = sorted(families, key=age, reverse=True)
        if age(ordered[0]) == age(ordered[1]):
            raise RestorePlanError(database, [
                f"{len(families)} different databases named {database} have backups here, created and last backed "
                f"up at the same times: FamilyGUID {ordered[0]} and {ordered[1]}; say which with --family-guid"])
        notes.append(f"{len(families)} different databases named {database} have backups here: the one created most "
                     f"recently (FamilyGUID {ordered[0]}, created {age(ordered[0])[0].isoformat()}) is restored, not "
                     + ", ".join(f"FamilyGUID {g} (created {age(g)[0].isoformat()})" for g in ordered[1:])
                     + "; choose another with --family-guid")
        others_named = f" (another database of the name has backups here: --family-guid {ordered[1]} restores it)"
        families = {ordered[0]: families[ordered[0]]}
    else:
        others_named = ""
    plans: list[RestorePlan] = []
    problems: list[str] = []
    for guid, family in families.items():
        if restored is not None and restored.family_guid is not None and guid is not None \
                and guid != restored.family_guid:
            continue
        try:
            plan, family_problems = _plan_family(database, family, paths, target, marks, restored, known_copy_only)
        except _Refusal as exc:
            family_problems, plan = [str(exc)], None
        if plan is not None:
            plans.append(plan)
        elif len(families) > 1:
            problems += [f"the database {database} with FamilyGUID {guid}: {p}" for p in family_problems]
        else:
            problems += family_problems
    if not plans:
        problems = [*problems, *stripe_problems] or [f"no backup of {database} can start or continue the restore"]
        if others_named:
            problems[-1] += others_named
        raise RestorePlanError(database, problems)
    if len(plans) > 1:
        created = {p.family_guid: max(h.database_creation_date for h in families[p.family_guid]) for p in plans}
        newest = {p.family_guid: max(h.backup_finish_date for h in families[p.family_guid]) for p in plans}
        plans.sort(key=lambda p: (created[p.family_guid], newest[p.family_guid]), reverse=True)
        chosen = plans[0]
        if (created[chosen.family_guid], newest[chosen.family_guid]) == (created[plans[1].family_guid],
                                                                         newest[plans[1].family_guid]):
            raise RestorePlanError(database, [
                f"{len(plans)} different databases named {database} reach the target, created and last backed up at "
                f"the same times: FamilyGUID {chosen.family_guid} and {plans[1].family_guid}; say which with "
                "--family-guid"])
        others_text = ", ".join(f"FamilyGUID {p.family_guid} (created {created[p.family_guid].isoformat()})"
                                for p in plans[1:])
        notes.append(f"{len(plans)} different databases named {database} have backups that reach the target: the one "
                     f"created most recently (FamilyGUID {chosen.family_guid}, created "
                     f"{created[chosen.family_guid].isoformat()}) is used, not {others_text}; choose another with "
                     "--family-guid")
    else:
        chosen = plans[0]
        if len(families) > 1:
            notes.append(f"{len(families)} different databases named {database} have backups here; only FamilyGUID "
                         f"{chosen.family_guid} reaches the target ({'; '.join(problems[:2])})")
    return RestorePlan(database, target, chosen.steps, tuple(notes + list(chosen.notes) + stripe_problems),
                       chosen.family_guid, chosen.recovery_fork_id)


def _other_notes(database: str, others: Sequence[BackupSetHeader]) -> list[str]:
    if len(others) <= _MANY:
        return [f"{h.path} (position {h.position}) is a backup of {h.database_name}, not {database}: ignored"
                for h in others]
    names = sorted({h.database_name for h in others})
    return [f"{len(others)} backup set(s) of {len(names)} other database(s) ({', '.join(names[:5])}"
            f"{', ...' if len(names) > 5 else ''}) ignored"]


def plan_restore(headers: Sequence[BackupSetHeader], database: str, target: Target = Target(), *,
                 marks: Sequence[LogMark] = ()) -> RestorePlan:
    """The restore sequence of ``database`` that reaches ``target``; raises RestorePlanError. ``marks`` are
    the marks known from the catalog; those BizTalk log backup names carry are added."""
    wanted = database.lower()
    mine = [h for h in headers if h.database_name.lower() == wanted]
    others = [h for h in headers if h.database_name.lower() != wanted] if len(mine) != len(headers) else []
    all_marks = [*marks, *marks_from_file_names(mine)] if target.mark is not None else []
    return _plan(database, mine, len(others), _other_notes(database, others), len(headers), target, all_marks, None)


def plan_restores(headers: Iterable[BackupSetHeader], target: Target = Target(), *,
                  databases: Sequence[str] | None = None, marks: Sequence[LogMark] = ()
                  ) -> dict[str, RestorePlan | RestorePlanError]:
    """Every database's plan (or why not) from one pass over the headers: for catalogs of a year's backups."""
    exact: dict[str, list[BackupSetHeader]] = {}
    for h in headers:  # by the name as written (one dict lookup a set), then case-insensitively
        group = exact.get(h.database_name)
        if group is None:
            group = exact[h.database_name] = []
        group.append(h)
    by_name: dict[str, list[BackupSetHeader]] = {}
    for written, group in exact.items():
        by_name.setdefault(written.lower(), []).extend(group)
    names = databases if databases is not None else sorted({hs[0].database_name for hs in by_name.values()})
    total = sum(len(v) for v in by_name.values())
    result: dict[str, RestorePlan | RestorePlanError] = {}
    for name in names:
        mine = by_name.get(name.lower(), [])
        all_marks = [*marks, *marks_from_file_names(mine)] if target.mark is not None else []
        try:
            result[name] = _plan(name, mine, total - len(mine), [], total, target, all_marks, None)
        except RestorePlanError as exc:
            result[name] = exc
    return result


def plan_continuation(headers: Sequence[BackupSetHeader], database: str, restored: RestorePoint,
                      target: Target = Target(), *, marks: Sequence[LogMark] = ()) -> RestorePlan:
    """The log backups that take a database already RESTORING at ``restored`` (its redo point and recovery
    fork, e.g. a standby) to ``target``, under the same rules as :func:`plan_restore`; RestorePlanError when
    the files cannot (a gap, a log of another branch only, the target behind the database). This is what the
    failover assessment asks: "can this database, restored up to LSN X on branch B, reach mark M from these
    verified files?"::

        headers = [h for f in shipped_and_verified_files for h in read_backup_file(f)]
        restored = RestorePoint.after(header_of_the_last_file_restored)   # or RestorePoint(lsn, fork)
        holder = header of the set's log backup of this database
        plan = plan_continuation(headers, database, restored, Target(mark=mark_name),
                                 marks=[LogMark.held_by(mark_name, holder)])
        statements = [step.statement(database, paths_as_sql_server_sees_them) for step in plan.steps]

    The last step is WITH STOPATMARK = N'mark', RECOVERY; ``RestorePlanError.problems`` say why not."""
    wanted = database.lower()
    mine = [h for h in headers if h.database_name.lower() == wanted]
    all_marks = [*marks, *marks_from_file_names(mine)] if target.mark is not None else []
    return _plan(database, mine, len(headers) - len(mine), [], len(headers), target, all_marks, restored)
