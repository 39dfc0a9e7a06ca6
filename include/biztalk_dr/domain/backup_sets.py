"""BizTalk's backup history as backup sets, and what makes a set usable for recovery.

``adm_BackupHistory`` has one row per database per backup; rows sharing a ``BackupSetId`` form a
set. A set is restorable only when it is complete (``SetComplete = 1``: every database backed up,
biztalk-dr.md section 2) and holds exactly the group's databases: a database missing from a set
cannot reach that set's mark, and a database in a set but not in the configuration would be left
behind at failover.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from biztalk_dr.domain.paths import is_windows_path, sql_join

__all__ = [
    "HistoryRow",
    "BackupSet",
    "history_rows",
    "group_sets",
    "set_problems",
    "newest_complete_full",
    "newest_restorable_chain",
]

@dataclass(frozen=True)
class HistoryRow:
    backup_id: int
    backup_set_id: int
    mark_name: str
    database_name: str
    server_name: str
    file_name: str  # BackupFileName: the file name (older scripts may store a full path)
    file_location: str  # BackupFileLocation: the folder SQL Server wrote to (@BackupPath)
    backup_type: Literal["db", "lg"]
    backup_time: dt.datetime
    set_complete: bool

    @property
    def sql_path(self) -> str:
        """The file as SQL Server knows it."""
        if is_windows_path(self.file_name) or self.file_name.startswith("/"):
            return self.file_name
        return sql_join(self.file_location, self.file_name)

    @property
    def base_name(self) -> str:
        return self.sql_path.replace("\\", "/").rsplit("/", 1)[-1]

    @classmethod
    def from_db(cls, row: dict[str, Any]) -> HistoryRow:
        kind = str(row["BackupType"]).strip().lower()
        if kind not in ("db", "lg"):
            raise ValueError(f"adm_BackupHistory row {row['BackupId']}: unknown BackupType {row['BackupType']!r}")
        return cls(
            backup_id=int(row["BackupId"]),
            backup_set_id=int(row["BackupSetId"]),
            mark_name=str(row["MarkName"]),
            database_name=str(row["DatabaseName"]),
            server_name=str(row["ServerName"]),
            file_name=str(row["BackupFileName"]),
            file_location=str(row["BackupFileLocation"] or ""),
            backup_type=kind,  # type: ignore[arg-type]
            backup_time=row["BackupDateTime"],
            set_complete=bool(row["SetComplete"]),
        )


@dataclass(frozen=True)
class BackupSet:
    set_id: int
    mark_name: str
    kind: Literal["full", "log"]
    backup_time: dt.datetime  # the newest row's time
    complete: bool
    rows: tuple[HistoryRow, ...]

    @property
    def databases(self) -> tuple[str, ...]:
        return tuple(r.database_name for r in self.rows)

    def row_for(self, database: str) -> HistoryRow | None:
        return next((r for r in self.rows if r.database_name.lower() == database.lower()), None)

    def as_event(self) -> dict[str, Any]:
        """What an Asset event carries, for the shipping DAG."""
        return {
            "set_id": self.set_id,
            "mark": self.mark_name,
            "kind": self.kind,
            "complete": self.complete,
            "backup_time": self.backup_time.isoformat(),
            "databases": list(self.databases),
            "files": [r.sql_path for r in self.rows],
        }


def history_rows(rows: Iterable[dict[str, Any]]) -> list[HistoryRow]:
    return [HistoryRow.from_db(r) for r in rows]


def group_sets(rows: Iterable[HistoryRow]) -> list[BackupSet]:
    """Rows grouped by BackupSetId, oldest set first."""
    by_set: dict[int, list[HistoryRow]] = {}
    for row in rows:
        by_set.setdefault(row.backup_set_id, []).append(row)
    sets = []
    for set_id in sorted(by_set):
        members = tuple(sorted(by_set[set_id], key=lambda r: r.backup_id))
        kinds = {r.backup_type for r in members}
        kind: Literal["full", "log"] = "full" if kinds == {"db"} else "log"
        if len(kinds) > 1:
            kind = "log"  # never happens with BizTalk's procedures; set_problems() reports it
        sets.append(BackupSet(
            set_id=set_id,
            mark_name=members[0].mark_name,
            kind=kind,
            backup_time=max(r.backup_time for r in members),
            complete=all(r.set_complete for r in members),
            rows=members,
        ))
    return sets


def set_problems(bset: BackupSet, group_databases: Sequence[str],
                 file_exists: Callable[[HistoryRow], bool] | None = None) -> list[str]:
    """Why this set cannot be used for recovery; empty when it can."""
    problems = []
    if not bset.complete:
        problems.append(f"set {bset.set_id} ({bset.mark_name}) is partial (SetComplete = 0): BizTalk did not back "
                        "up every database; it cannot be restored")
    if len({r.backup_type for r in bset.rows}) > 1:
        problems.append(f"set {bset.set_id} mixes full and log backups")
    if len({r.mark_name for r in bset.rows}) > 1:
        problems.append(f"set {bset.set_id} has several mark names: {sorted({r.mark_name for r in bset.rows})}")
    wanted = {d.lower(): d for d in group_databases}
    seen: dict[str, int] = {}
    for row in bset.rows:
        seen[row.database_name.lower()] = seen.get(row.database_name.lower(), 0) + 1
    for key, name in wanted.items():
        if key not in seen:
            problems.append(f"set {bset.set_id} has no backup of {name}")
        elif seen[key] > 1:
            problems.append(f"set {bset.set_id} has {seen[key]} backups of {name}, expected one")
    for row in bset.rows:
        if row.database_name.lower() not in wanted:
            problems.append(f"set {bset.set_id} backs up {row.database_name}, which the configuration does not list: "
                            "add it to databases (role: custom) or it is left behind at failover")
    if file_exists is not None:
        for row in bset.rows:
            if not file_exists(row):
                problems.append(f"set {bset.set_id}: the backup file of {row.database_name} is missing: {row.sql_path}")
    return problems


def newest_complete_full(sets: Sequence[BackupSet]) -> BackupSet | None:
    return next((s for s in reversed(sets) if s.kind == "full" and s.complete), None)


def newest_restorable_chain(sets: Sequence[BackupSet]) -> list[BackupSet]:
    """The newest complete full set and every set after it (oldest first); empty without a complete full.

    Later partial sets stay in the chain on purpose: retention must keep them (they are evidence,
    and a later complete full is what makes them obsolete), even though recovery stops before them.
    """
    full = newest_complete_full(sets)
    if full is None:
        return []
    return [s for s in sets if s.set_id >= full.set_id]
