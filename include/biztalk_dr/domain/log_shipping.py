"""Log shipping to the standby site, the plans: which sets to ship, whether a landed file is the one the catalog
records, and which restores bring the standby set by set to the set before the newest complete one. Pure (no I/O,
no Airflow): the effects — copying, proving and quarantining files (``shipped_files``), the RESTOREs on the standby
(``standby_restore``) — take these plans.

Better than BizTalk's own log shipping (biztalk-dr.md section 4) on purpose: files are restored from the
standby's own verified copies (never from the primary's share), data and log files are relocated with
MOVE where the standby's paths differ, every standby database advances set by set together (a failed
database stops the others at the same set), and the lag is measured. The newest complete set is held
back: it is applied at failover, to its mark.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from biztalk_dr.backup_files.headers import BackupSetHeader
from biztalk_dr.domain.backup_sets import BackupSet, HistoryRow, newest_complete_full

if TYPE_CHECKING:  # types only: both modules do I/O
    from biztalk_dr.ops.manifest import Manifest
    from biztalk_dr.ops.standby_state import StandbyState

__all__ = [
    "CatalogEntry",
    "ShippingPlan",
    "StandbyPlan",
    "StandbyStep",
    "catalog_from_rows",
    "landed_mismatch",
    "plan_shipping",
    "plan_standby_restores",
]


# ---------------------------------------------------------------------------------------------- what to ship
@dataclass(frozen=True)
class ShippingPlan:
    sets: tuple[BackupSet, ...]  # complete sets to ship (or to check shipped), oldest first
    partial: tuple[BackupSet, ...]  # partial sets in the same range: never shipped, reported
    waiting: str = ""  # why nothing can be shipped yet
    start_set_id: int | None = None  # the oldest set the standby still needs

    def as_json(self) -> dict[str, Any]:
        return {"sets": [s.set_id for s in self.sets], "partial": [s.set_id for s in self.partial],
                "waiting": self.waiting}


def plan_shipping(sets: Sequence[BackupSet], state: StandbyState, databases: Sequence[str]) -> ShippingPlan:
    """Complete sets from the oldest one the standby still needs: the set after the least advanced
    standby database, or the newest complete full set when that is older (a database to seed)."""
    full = newest_complete_full(sets)
    if full is None:
        return ShippingPlan((), (), "no complete full backup set yet: the standby is seeded from one")
    restored = [r for db in databases if (r := state.of(db).last_restored_set) is not None]
    start = min([full.set_id, *(r + 1 for r in restored)])
    wanted = [s for s in sets if s.set_id >= start]
    return ShippingPlan(tuple(s for s in wanted if s.complete), tuple(s for s in wanted if not s.complete),
                        start_set_id=start)


# ---------------------------------------------------------------------------------------------- catalog
@dataclass(frozen=True)
class CatalogEntry:
    """What the primary's msdb says a backup file holds."""

    path: str
    database_name: str
    backup_type: Literal["FULL", "DIFF", "LOG"]
    first_lsn: int
    last_lsn: int


_CATALOG_TYPES: dict[str, Literal["FULL", "DIFF", "LOG"]] = {"D": "FULL", "I": "DIFF", "L": "LOG"}


def catalog_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, CatalogEntry]:
    """msdb's rows (``tsql.backup_catalog``) by the path SQL Server wrote each file to; other backup types left out."""
    entries = {}
    for row in rows:
        kind = _CATALOG_TYPES.get(str(row["type"]).strip().upper())
        if kind is not None:
            entries[str(row["path"])] = CatalogEntry(str(row["path"]), str(row["database_name"]), kind,
                                                     int(row["first_lsn"]), int(row["last_lsn"]))
    return entries


# ---------------------------------------------------------------------------------------------- check one landed file
def landed_mismatch(header: BackupSetHeader, row: HistoryRow, entry: CatalogEntry | None,
                    previous: Manifest | None) -> tuple[str, bool]:
    """(why the landed file is not what the catalog says it is, whether that is a gap in the chain); empty
    when it is."""
    kind = "FULL" if row.backup_type == "db" else "LOG"
    if header.database_name.lower() != row.database_name.lower() or header.backup_type != kind:
        return (f"it holds a {header.backup_type} backup of {header.database_name}, not the {kind} backup of "
                f"{row.database_name} that adm_BackupHistory records"), False
    if entry is not None and (header.first_lsn, header.last_lsn) != (entry.first_lsn, entry.last_lsn):
        return (f"its LSN range {header.first_lsn}-{header.last_lsn} differs from msdb's "
                f"{entry.first_lsn}-{entry.last_lsn}"), False
    if kind == "LOG" and previous is not None and previous.last_lsn is not None \
            and header.first_lsn != previous.last_lsn:
        return (f"it starts at LSN {header.first_lsn} but the previous log backup of {row.database_name} "
                f"({previous.file_name}, set {previous.set_id}) ends at LSN {previous.last_lsn}: the chain has a gap"), True
    return "", False


# ---------------------------------------------------------------------------------------------- restore plan
@dataclass(frozen=True)
class StandbyStep:
    set_id: int
    mark_name: str
    backup_time: dt.datetime
    database: str
    file_name: str
    action: Literal["seed", "log"]

    def as_json(self) -> dict[str, Any]:
        return {"set_id": self.set_id, "mark": self.mark_name, "database": self.database,
                "file": self.file_name, "action": self.action}


@dataclass(frozen=True)
class StandbyPlan:
    steps: tuple[StandbyStep, ...]
    notes: tuple[str, ...]  # what waits, and why
    blocked: str = ""  # why the standby cannot go on without a re-seed; empty when it can


def _hold_last_log(ready: list[BackupSet], waiting: BackupSet, notes: list[str]) -> None:
    """Restores stop before ``waiting``, a set not shipped and verified yet (it may complete between this run's
    shipping and its restore): the last log set before it holds the newest mark a failover can reach until it
    arrives, so it is held back too, as before a partial set (restoring it would pass that mark, leaving none)."""
    if ready and ready[-1].kind == "log":
        kept = ready.pop()
        notes.append(f"set {kept.set_id} ({kept.mark_name}) is held back as well: set {waiting.set_id} is not at "
                     "the standby yet, so its mark is the newest one a failover can reach")


def plan_standby_restores(sets: Sequence[BackupSet], state: StandbyState, databases: Sequence[str],
                          shipped: Callable[[HistoryRow], bool],
                          source_failed: Callable[[HistoryRow], bool] = lambda row: False) -> StandbyPlan:
    """The restores that bring every standby database to the set before the newest complete one, set by
    set. Only sets whose every file is shipped and verified count, and restores stop before a set that is
    not (a set is never skipped) and before a partial set (its successful backups moved the log chains on,
    so no later log set applies: the standby needs a re-seed from a later full set). A set with a file that
    failed its read-back at the source (``source_failed``) is as broken as a partial set: it is never shipped."""
    complete = [s for s in sets if s.complete]
    if not complete:
        return StandbyPlan((), ("no complete backup set yet",))
    # the newest complete set whose every file passed its read-back at the source: a damaged newest set must not
    # make the standby restore the set before it (that set's mark would then be passed, with none left to reach)
    hold = next((s for s in reversed(complete) if not any(source_failed(r) for r in s.rows)), complete[-1])
    notes = [f"set {hold.set_id} ({hold.mark_name}) is held back: the newest complete set is applied at "
             "failover, to its mark"]
    first = plan_shipping(sets, state, databases).start_set_id or hold.set_id
    ready: list[BackupSet] = []
    blocked = ""
    for bset in sets:
        if bset.set_id < first or bset.set_id >= hold.set_id:
            continue
        bad_source = [r.database_name for r in bset.rows if source_failed(r)] if bset.complete else []
        if not bset.complete or bad_source:
            later_full = next((s for s in complete if s.set_id > bset.set_id and s.kind == "full"), None)
            what = "is partial" if not bad_source else (f"has a file that failed its read-back at the source "
                                                        f"({', '.join(bad_source)})")
            notes.append(f"set {bset.set_id} ({bset.mark_name}) {what}: restores stop before it")
            if later_full is not None:
                blocked = (f"set {bset.set_id} ({bset.mark_name}) {what}, so no later log set applies to the "
                           f"standby; full set {later_full.set_id} ({later_full.mark_name}) was taken since")
            else:
                notes.append(f"waiting for the full backup set requested when set {bset.set_id} failed")
            # no log after this set applies: restoring the last log set before it would pass the newest mark a
            # failover can still reach (issue 15): it is held back too
            if ready and ready[-1].kind == "log":
                kept = ready.pop()
                notes.append(f"set {kept.set_id} ({kept.mark_name}) is held back as well: with set {bset.set_id} "
                             "broken after it, its mark is the newest one a failover can reach")
            break
        if not all(shipped(r) for r in bset.rows):
            notes.append(f"set {bset.set_id} ({bset.mark_name}) is not shipped and verified yet: restores stop "
                         "before it")
            _hold_last_log(ready, bset, notes)
            break
        ready.append(bset)
    else:
        if not all(shipped(r) for r in hold.rows):  # completed after this run shipped: not at the standby yet
            _hold_last_log(ready, hold, notes)
    steps: list[StandbyStep] = []
    for database in databases:
        current = state.of(database).last_restored_set
        base = None
        if current is None:
            base = newest_complete_full(ready)
            if base is None:
                notes.append(f"{database}: no shipped full set before the held-back set to seed it from yet")
                continue
        for bset in ready:
            row = bset.row_for(database)
            if row is None:
                continue
            if base is not None and bset.set_id == base.set_id:
                steps.append(StandbyStep(bset.set_id, bset.mark_name, bset.backup_time, database, row.base_name, "seed"))
            elif bset.kind == "log" and bset.set_id > (base.set_id if base is not None else current or 0):
                steps.append(StandbyStep(bset.set_id, bset.mark_name, bset.backup_time, database, row.base_name, "log"))
    order = {name: i for i, name in enumerate(databases)}
    steps.sort(key=lambda s: (s.set_id, order[s.database]))
    return StandbyPlan(tuple(steps), tuple(notes), blocked)
