"""What crosses ``dr_failover``'s task boundaries, typed: the assessed plan and the final log set.

A task hands the next one JSON through XCom (the approval's body reads the plan's ``summary`` there, the
timeline its ``mark`` and ``left_out``); these frozen dataclasses are that JSON's one reading and one writing
(``to_json`` / ``from_json``), so a step reads ``plan.mark``, never ``plan["mark"]`` rebuilt by hand. The JSON
keeps the keys and values the tasks exchanged before they were typed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from biztalk_dr.domain.log_shipping import StandbyStep
from biztalk_dr.ops.site_roles import SiteRoles

__all__ = ["PlannedDatabase", "FailoverPlan", "FinalLogSet"]


@dataclass(frozen=True)
class PlannedDatabase:
    """One standby database to recover: the set it stands at and every remaining log, the last one to the mark."""
    database: str
    restored_set: int | None
    steps: tuple[StandbyStep, ...]

    def to_json(self) -> dict[str, Any]:
        return {"database": self.database, "restored_set": self.restored_set,
                "steps": [s.as_json() for s in self.steps]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlannedDatabase:
        # a step's backup time is not carried: the restore needs the set, the mark and the file
        return cls(data["database"], data["restored_set"], tuple(
            StandbyStep(set_id=s["set_id"], mark_name=s["mark"], backup_time=dt.datetime.min,
                        database=data["database"], file_name=s["file"], action=s["action"])
            for s in data["steps"]))


@dataclass(frozen=True)
class FailoverPlan:
    """The assessment a person approves and the recovery runs: the one mark, each database's logs to it."""
    mode: str  # planned | disaster
    dry_run: bool
    mark: str | None
    set_id: int | None
    set_time: str | None  # ISO, as the approval shows it
    data_loss_minutes: float | None
    source: str  # "reachable" or "NOT reachable (why)": for people; decisions read source_reachable
    source_reachable: bool
    already_online: tuple[str, ...]  # ONLINE at the mark already: left alone
    left_out: tuple[str, ...]  # named by the operator: NOT recovered
    standby: tuple[str, ...]  # each standby database's state, described
    failed_over: SiteRoles | None  # the roles record, when an earlier run already failed over
    databases: tuple[PlannedDatabase, ...]
    notes: tuple[str, ...]
    summary: str  # what the approval's body says

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "dry_run": self.dry_run, "mark": self.mark, "set_id": self.set_id,
                "set_time": self.set_time, "data_loss_minutes": self.data_loss_minutes, "source": self.source,
                "source_reachable": self.source_reachable, "already_online": list(self.already_online),
                "left_out": list(self.left_out), "standby": list(self.standby),
                "failed_over": None if self.failed_over is None else self.failed_over.to_json(),
                "databases": [d.to_json() for d in self.databases], "notes": list(self.notes),
                "summary": self.summary}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FailoverPlan:
        return cls(mode=data["mode"], dry_run=data["dry_run"], mark=data["mark"], set_id=data["set_id"],
                   set_time=data["set_time"], data_loss_minutes=data["data_loss_minutes"], source=data["source"],
                   source_reachable=data["source_reachable"], already_online=tuple(data["already_online"]),
                   left_out=tuple(data["left_out"]), standby=tuple(data["standby"]), failed_over=None if data["failed_over"] is None else SiteRoles.from_json(data["failed_over"]),
                   databases=tuple(PlannedDatabase.from_json(d) for d in data["databases"]),
                   notes=tuple(data["notes"]), summary=data["summary"])


@dataclass(frozen=True)
class FinalLogSet:
    """A planned switchover's last marked log set (none in a disaster: ``set_id`` None, ``said`` says why)."""
    set_id: int | None
    mark: str | None
    said: str
    verified: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"set_id": self.set_id, "mark": self.mark}
        if self.set_id is not None:
            data["verified"] = self.verified
        return {**data, "said": self.said}

    def record(self) -> dict[str, Any]:
        """What ``final_log_set.json`` keeps for the run (a re-run verifies this set instead of taking another)."""
        return {"set_id": self.set_id, "mark": self.mark, "verified": self.verified}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FinalLogSet:
        """The task's XCom, or the run's ``final_log_set.json`` record (which has no ``said``)."""
        return cls(set_id=data["set_id"], mark=data["mark"], said=data.get("said", ""),
                   verified=data.get("verified", False))
