"""Restore validation, the pure part: which set to prove, each database's restore to its mark on the validation
instance, the checks that prove the result, and the report. The effects (reading the shipped files' headers,
the restores, the checks, the report's files) are ``validation_jobs``'.

The point is to prove the **standby site's** copies: plans are made from the shipped files themselves
(read with the backup-file reader) by the restore planner, so a missing or broken copy fails the plan,
naming the LSN gap, before anything is restored.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from biztalk_dr.backup_files.headers import BackupSetHeader
from biztalk_dr.domain import tsql
from biztalk_dr.domain.advice import advice
from biztalk_dr.domain.backup_sets import BackupSet, HistoryRow, newest_complete_full
from biztalk_dr.domain.errors import PreflightError, RestorePlanError
from biztalk_dr.domain.paths import plain_file_name, sql_join
from biztalk_dr.domain.restore_planner import LogMark, Target, plan_restore

if TYPE_CHECKING:  # the type only: config reads files
    from biztalk_dr.domain.config import GroupConfig

__all__ = ["ValidationStep", "DatabasePlan", "chain_files", "choose_set", "plan_database", "sanity_query",
           "validation_name", "render_markdown", "DatabaseResult", "report_json", "minutes_between"]


def validation_name(cfg: GroupConfig, database: str) -> str:
    assert cfg.sites.validation is not None
    return cfg.sites.validation.database_prefix + database


def choose_set(sets: Sequence[BackupSet], shipped: Callable[[HistoryRow], bool],
               set_id: int | None = None) -> tuple[BackupSet, BackupSet]:
    """(the log set to prove, the full set its restore starts from): the newest complete log set whose files,
    and those of every set back to a complete full set, are all shipped and verified — or the one asked for."""
    def usable(bset: BackupSet) -> BackupSet | None:
        if not bset.complete or bset.kind != "log" or not all(shipped(r) for r in bset.rows):
            return None
        full = newest_complete_full([s for s in sets if s.set_id < bset.set_id])
        return full if full is not None and all(shipped(r) for r in full.rows) else None

    if set_id is not None:
        bset = next((s for s in sets if s.set_id == set_id), None)
        if bset is None:
            raise PreflightError([f"backup set {set_id} is not in adm_BackupHistory"],
                                 advice=advice("validation_unknown_set"))
        full = usable(bset)
        if full is None:
            raise PreflightError([f"backup set {set_id} ({bset.mark_name}) is not a complete log set whose files and "
                                  "those of its full set are all shipped and verified at the standby site"],
                                 advice=advice("validation_set_not_shipped"))
        return bset, full
    for bset in reversed(sets):
        full = usable(bset)
        if full is not None:
            return bset, full
    raise PreflightError(["no complete log set is shipped and verified at the standby site yet"],
                         advice=advice("validation_nothing_shipped"))


@dataclass(frozen=True)
class ValidationStep:
    backup_type: str
    file_names: tuple[str, ...]
    bytes: int
    statement: str


@dataclass(frozen=True)
class DatabasePlan:
    database: str
    restored_as: str
    mark: str
    steps: tuple[ValidationStep, ...]
    backup_bytes: int  # the shipped backup files the restore reads (the space it needs comes from FILELISTONLY)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def chain_files(database: str, chosen: BackupSet, full: BackupSet, sets: Sequence[BackupSet]) -> list[str]:
    """The landing folder's names of ``database``'s backup files from ``full`` to ``chosen`` (complete sets only):
    the files whose headers ``plan_database`` plans with."""
    chain = [s for s in sets if full.set_id <= s.set_id <= chosen.set_id and s.complete]
    return [plain_file_name(row.base_name) for bset in chain if (row := bset.row_for(database)) is not None]


def plan_database(cfg: GroupConfig, database: str, chosen: BackupSet, headers: Sequence[BackupSetHeader],
                  sizes: Mapping[str, int], landing_dir: str | Path) -> DatabasePlan:
    """Restore ``database`` from the shipped copies to ``chosen``'s mark; RestorePlanError (the gap named) if
    the shipped files cannot reach it. ``headers`` are those of ``chain_files`` found in ``landing_dir`` (a
    missing file has none), ``sizes`` each header's file size by path.

    The plan is the restore planner's, from the files' own headers, so its rules are the ones the failover
    assessment uses: the database is matched by FamilyGUID, a landing folder holding the old and the new
    primary's backups after a failover is followed along one recovery branch (the mark's), and the mark is
    reached in the log backup that holds it (the one named after it in the set)."""
    assert cfg.sites.validation is not None
    val = cfg.sites.validation
    mark_row = chosen.row_for(database)
    if mark_row is None:
        raise RestorePlanError(database, [f"set {chosen.set_id} has no backup of {database}"])
    mark_file = Path(landing_dir) / plain_file_name(mark_row.base_name)
    holder = next((h for h in headers if Path(h.path) == mark_file), None)
    if holder is None:
        raise RestorePlanError(database, [f"the log backup holding mark {chosen.mark_name} ({mark_row.base_name}) is "
                                          f"not in {landing_dir}"])
    plan = plan_restore(headers, database, Target(mark=chosen.mark_name), marks=[LogMark.held_by(chosen.mark_name, holder)])
    restored_as = validation_name(cfg, database)
    steps = []
    for n, step in enumerate(plan.steps):
        names = tuple(Path(p).name for p in step.backup.paths)
        sql_paths = [sql_join(val.landing_path, name) for name in names]
        size = sum(sizes[p] for p in step.backup.paths)
        if n == 0:
            moves = tsql.move_files(step.backup.header.files, data_folder=val.data_path, log_folder=val.log_path,
                                    restored_as=restored_as)
            statement = step.statement(restored_as, sql_paths, moves=moves, replace=True)
        else:
            statement = step.statement(restored_as, sql_paths)
        steps.append(ValidationStep(step.backup.backup_type, names, size, statement))
    if not steps or steps[-1].backup_type != "LOG" or plan.steps[-1].stop_at_mark != chosen.mark_name:
        raise RestorePlanError(database, [f"the plan does not end with the log backup holding mark {chosen.mark_name}"])
    return DatabasePlan(database, restored_as, chosen.mark_name, tuple(steps), sum(s.bytes for s in steps))


def sanity_query(cfg: GroupConfig, database: str) -> tuple[str, str]:
    """(a query that must return one row with a positive ``n``, what it proves) for the database's role."""
    role = next(d.role for d in cfg.databases if d.name == database)
    name = validation_name(cfg, database)
    if role == "management":
        return tsql.management_group_rows(name), "the management database holds its group row"
    if role == "messagebox":
        return tsql.spool_readable(name), "the MessageBox's core table (Spool) is readable"
    return tsql.catalog_readable(name), "the database's catalog is readable"


@dataclass
class DatabaseResult:
    database: str
    restored_as: str
    steps: list[dict[str, Any]] = field(default_factory=list)  # type, files, bytes, seconds
    checks: list[dict[str, Any]] = field(default_factory=list)  # name, ok, detail
    error: str | None = None

    @property
    def seconds(self) -> float:
        return round(sum(s["seconds"] for s in self.steps), 3)

    @property
    def bytes(self) -> int:
        return sum(s["bytes"] for s in self.steps)

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.checks) and all(c["ok"] for c in self.checks)


def render_markdown(report: dict[str, Any]) -> str:
    """The report as an operator reads it."""
    lines = [f"# Restore validation of {report['group']} — {'PASSED' if report['passed'] else 'FAILED'}", "",
             f"- run: `{report['run_id']}`",
             f"- proved mark: **{report['mark']}** (set {report['set_id']}, taken {report['set_time']}; "
             f"age at validation: {report['mark_age_minutes']} min — the data-loss window this proves)",
             f"- validation instance: {report['instance']}",
             f"- group restore time (SQL part of the recovery time): **{report['group_restore_seconds']} s**"
             f" (objective: {report['objective_minutes']} min"
             f"{', EXCEEDED' if report['objective_exceeded'] else ''})", ""]
    if report.get("problem"):
        lines += [f"**Problem:** {report['problem']}", ""]
    lines += ["| database | restored as | steps | bytes | seconds | checks |", "|---|---|---|---|---|---|"]
    for db in report["databases"]:
        checks = "; ".join(f"{'ok' if c['ok'] else 'FAILED'}: {c['name']}" for c in db["checks"]) or "-"
        if db.get("error"):
            checks = f"ERROR: {db['error']}"
        lines.append(f"| {db['database']} | {db['restored_as']} | {len(db['steps'])} | {db['bytes']} | "
                     f"{db['seconds']} | {checks} |")
    lines += ["", "## Steps", ""]
    for db in report["databases"]:
        for step in db["steps"]:
            lines.append(f"- {db['database']}: {step['type']} {', '.join(step['files'])} — {step['bytes']} bytes, "
                         f"{step['seconds']} s")
    return "\n".join(lines) + "\n"


def report_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, default=str)


def minutes_between(later: dt.datetime, earlier: dt.datetime) -> float:
    return round((later - earlier).total_seconds() / 60, 1)
