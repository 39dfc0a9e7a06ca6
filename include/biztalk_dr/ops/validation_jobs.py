"""The restore-validation DAG's steps with their servers and files: each function is one task's work."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from biztalk_dr.backup_files import BackupSetHeader, read_backup_file
from biztalk_dr.domain import log_shipping, restore_validation, tsql
from biztalk_dr.domain.advice import advice
from biztalk_dr.domain.backup_sets import BackupSet
from biztalk_dr.domain.config import GroupConfig
from biztalk_dr.domain.errors import (
    BackupMediaDamaged,
    FirstFullSetPending,
    PreflightError,
    ShippedFileDamaged,
    SqlServerError,
    ValidationFailed,
)
from biztalk_dr.domain.paths import plain_file_name, sql_join
from biztalk_dr.domain.restore_validation import DatabaseResult
from biztalk_dr.ops import backup_jobs, first_full_set, shipped_files, shipping_jobs, standby_restore
from biztalk_dr.ops.atomic_files import READABLE, write_json_atomically, write_text_atomically
from biztalk_dr.ops.manifest import check_content, read_manifest, shipped_header
from biztalk_dr.ops.sqlserver import CallKind, SqlServer
from biztalk_dr.ops.standby_state import run_records_dir

__all__ = ["plan_database", "plan_validation", "restore_database", "check_database", "write_report", "drop_validation_databases"]

log = logging.getLogger("biztalk_dr.validation")


def _validation(cfg: GroupConfig):
    if cfg.sites.validation is None:
        raise PreflightError(["the configuration has no sites.validation instance"],
                             advice=advice("validation_no_site"))
    return cfg.sites.validation


def _run_dir(cfg: GroupConfig, run_id: str) -> Path:
    return run_records_dir(cfg.sites.standby.landing_dir, "validation", run_id)


def plan_database(cfg: GroupConfig, database: str, chosen: BackupSet, full: BackupSet, sets: Sequence[BackupSet],
                  landing_dir: str | Path) -> restore_validation.DatabasePlan:
    """``restore_validation.plan_database`` over the headers of the shipped files in ``landing_dir`` (each
    manifest's copy of its file's header: no file read again; the file itself for an older manifest)."""
    headers: list[BackupSetHeader] = []
    for name in restore_validation.chain_files(database, chosen, full, sets):
        path = Path(landing_dir) / name
        shipped = shipped_header(landing_dir, name)
        if shipped is not None:
            headers.append(shipped)
        elif path.is_file():
            headers.extend(read_backup_file(path))
    sizes = {h.path: Path(h.path).stat().st_size for h in headers}
    return restore_validation.plan_database(cfg, database, chosen, headers, sizes, landing_dir)


def plan_validation(cfg: GroupConfig, run_id: str, set_id: int | None, *,
                    send_warning: Callable[[str, str], None] | None = None) -> list[dict[str, Any]]:
    """Pick the set, hash every shipped file it restores against its manifest (``verify_copies``), plan every
    database from the shipped copies, and refuse early: a gap in the shipped files, validation databases left
    from another run, or too little free space — with the numbers."""
    val = _validation(cfg)
    landing = cfg.sites.standby.landing_dir
    with backup_jobs.management_server(cfg) as mgmt:
        sets, now = backup_jobs.read_sets(cfg, mgmt), backup_jobs.history_clock_now(cfg, mgmt)

    try:
        chosen, full = restore_validation.choose_set(sets, lambda r: shipped_files.row_shipped(cfg, r), set_id)
    except PreflightError:
        if set_id is None:
            _wait_for_first_full_set(cfg, run_id, sets, now)
        raise
    replaced = verify_copies(cfg, sets, chosen, full)
    if replaced and send_warning is not None:
        send_warning("WARNING: shipped file(s) this validation restores no longer matched their manifests: "
                     "quarantined and copied again from the source before anything was restored:"
                     + "".join(f"\n- {r}" for r in replaced),
                     advice("shipped_copy_recopied", quarantine=Path(landing) / shipped_files.QUARANTINE_DIR))
    plans = [plan_database(cfg, d.name, chosen, full, sets, landing) for d in cfg.databases]
    with SqlServer(val.conn_id) as server:
        existing = {str(r["name"]).lower() for r in server.query(tsql.database_names())}
        leftovers = sorted(p.restored_as for p in plans if p.restored_as.lower() in existing)
        if leftovers:
            raise PreflightError([f"{val.server_name} already has {', '.join(leftovers)}: another validation run is "
                                  "active, or an earlier one could not clean up"],
                                 advice=advice("validation_leftovers"))
        need = sum(_restored_size(server, val.landing_path, p) for p in plans)
        [volume] = server.query(tsql.free_bytes_of_master_volume())
        free = int(volume["available_bytes"])
    keep = val.min_free_space_gb * 1024**3
    if free - need < keep:
        raise PreflightError([f"{val.server_name} has {free / 1024**3:.2f} GB free; the planned restore needs "
                              f"{need / 1024**3:.2f} GB and sites.validation.min_free_space_gb keeps "
                              f"{val.min_free_space_gb} GB free"],
                             advice=advice("validation_no_space"))
    folder = _run_dir(cfg, run_id)
    summary = {"set_id": chosen.set_id, "mark": chosen.mark_name, "set_time": chosen.backup_time.isoformat(),
               "full_set_id": full.set_id, "bytes_needed": need, "free_bytes": free,
               "planned_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    write_json_atomically(folder / "plan.json", {**summary, "databases": [p.as_json() for p in plans]},
                          mode=READABLE)
    log.info("proving set %s (mark %s) from full set %s: %d database(s), %.1f MB to restore, %.1f GB free",
             chosen.set_id, chosen.mark_name, full.set_id, len(plans), need / 1024**2, free / 1024**3)
    return [{"run_id": run_id, **p.as_json()} for p in plans]


_WAITING_FILE = "waiting.txt"


def _wait_for_first_full_set(cfg: GroupConfig, run_id: str, sets: Sequence[BackupSet], now: dt.datetime) -> None:
    """Nothing provable yet on a new group within its grace: the reason is recorded for the run's report and
    raised as FirstFullSetPending (the task skips); past the grace, returns (the refusal stands)."""
    left = first_full_set.grace_left(cfg, sets, now=now, seen=first_full_set.first_seen(cfg.sites.standby.landing_dir))
    if left is None:
        return
    reason = first_full_set.waiting_text("no complete log set is shipped and verified at the standby site yet with "
                                         "its full set (restore validation proves one)", left, cfg)
    (_run_dir(cfg, run_id) / _WAITING_FILE).write_text(reason + "\n", encoding="utf-8")
    raise FirstFullSetPending(reason)


def verify_copies(cfg: GroupConfig, sets: Sequence[BackupSet], chosen: BackupSet, full: BackupSet) -> list[str]:
    """Every shipped file from ``full`` to ``chosen`` hashed again against its manifest before anything is restored:
    a copy that changed since shipping is quarantined (as log shipping does) and copied once more from the source.
    Returns what was replaced; raises ShippedFileDamaged (saying what was done) when it cannot be, PreflightError
    for a file there without a verified manifest. A file that is missing is left to the planner, which names the
    LSN gap."""
    landing = Path(cfg.sites.standby.landing_dir)
    recopy = shipping_jobs.recopier(cfg, sets)
    replaced = []
    for bset in sets:
        if not (full.set_id <= bset.set_id <= chosen.set_id and bset.complete):
            continue
        for row in bset.rows:
            check = check_content(landing, plain_file_name(row.base_name))
            if check.outcome == "no_manifest" and (landing / plain_file_name(row.base_name)).is_file():
                # a file nothing vouches for (its deletion by dr_standby_retention begun, or put there by hand)
                raise PreflightError([f"{row.base_name} (set {bset.set_id}) is in the landing folder without a verified "
                                      "manifest: it is not shipped and verified, so it is never restored"],
                                     advice=advice("validation_set_not_shipped"))
            if check.outcome not in ("size", "digest"):
                continue
            step = log_shipping.StandbyStep(bset.set_id, bset.mark_name, bset.backup_time, row.database_name,
                                            row.base_name, "seed" if bset.kind == "full" else "log")
            _replace(cfg, step, recopy, f"dr_restore_validation: content check before restore failed: {check.detail}",
                     "hash")
            replaced.append(f"set {bset.set_id} ({bset.mark_name}), {row.database_name}, {check.file_name}: "
                            f"{check.detail}")
    return replaced


def _replace(cfg: GroupConfig, step: log_shipping.StandbyStep, recopy: standby_restore.Recopy, reason: str,
             found_by) -> None:
    """``standby_restore.replace_damaged`` for a validation: when the source is damaged too a full backup is requested
    (and the alert says so); when it cannot be copied again now, the alert says where the damaged copy is."""
    try:
        standby_restore.replace_damaged(cfg, step, recopy, reason, found_by=found_by)
    except ShippedFileDamaged as exc:
        if exc.source_bad:
            raise shipping_jobs.source_damaged(cfg, exc) from exc
        raise ShippedFileDamaged(exc.problems, number=exc.number, file_name=exc.file_name,
                                 quarantined=exc.quarantined,
                                 advice=advice("validation_copy_damaged", quarantine=exc.quarantined)) from exc


def _restored_size(server: SqlServer, landing_path: str, plan: restore_validation.DatabasePlan) -> int:
    """The bytes the data and log files take once restored: FILELISTONLY's Size of the full backup."""
    full = plan.steps[0]
    rows = server.query(tsql.restore_filelistonly([sql_join(landing_path, n) for n in full.file_names]))
    return sum(int(r.get("Size") or 0) for r in rows)


def restore_database(cfg: GroupConfig, plan: dict[str, Any], *,
                     send_warning: Callable[[str, str], None] | None = None) -> dict[str, Any]:
    """Run one database's restore steps, timing each; the result is recorded for the report whatever happens. A
    file SQL Server finds damaged is quarantined, copied again and restored once more, with a warning."""
    val = _validation(cfg)
    result = DatabaseResult(plan["database"], plan["restored_as"])
    try:
        with SqlServer(val.conn_id) as server:
            for step in plan["steps"]:
                started = time.perf_counter()
                try:
                    server.run(step["statement"], kind=CallKind.RESTORE)
                except BackupMediaDamaged as exc:
                    _replace_step_files(cfg, plan["database"], step, exc)
                    server.run(step["statement"], kind=CallKind.RESTORE)  # the fresh copy; damaged again: raised
                    if send_warning is not None:
                        send_warning(f"WARNING: {plan['database']}: SQL Server error {exc.number} on restoring "
                                     f"{', '.join(step['file_names'])}: quarantined, copied again from the source and "
                                     "restored from the new copy",
                                     advice("shipped_copy_recopied",
                                            quarantine=Path(cfg.sites.standby.landing_dir) / shipped_files.QUARANTINE_DIR))
                result.steps.append({"type": step["backup_type"], "files": list(step["file_names"]),
                                     "bytes": step["bytes"], "seconds": round(time.perf_counter() - started, 3)})
    except BackupMediaDamaged as exc:  # the fresh copy is damaged too: the source is
        damaged = ShippedFileDamaged([f"{plan['database']}: SQL Server error {exc.number} again on a fresh copy of "
                                      f"{', '.join(step['file_names'])}: {exc.text}"], number=exc.number,
                                     file_name=step["file_names"][0],
                                     quarantined=_quarantine_all(cfg, step, f"SQL Server error {exc.number} again on "
                                                                            f"a fresh copy: {exc.text}"),
                                     source_bad=True)
        result.error = f"restore failed at step {len(result.steps) + 1}: {damaged}"
        raise shipping_jobs.source_damaged(cfg, damaged) from exc
    except (SqlServerError, ShippedFileDamaged) as exc:
        result.error = f"restore failed at step {len(result.steps) + 1}: {exc}"
        raise
    finally:
        _save_result(cfg, plan["run_id"], result)
    return {"run_id": plan["run_id"], "database": result.database, "restored_as": result.restored_as,
            "mark": plan["mark"]}


def _replace_step_files(cfg: GroupConfig, database: str, step: dict[str, Any], exc: BackupMediaDamaged) -> None:
    """SQL Server found a shipped file of this step damaged (3183, 3189, 3203, 3241, 3242) although its content
    matched the manifest when planned: each of the step's files is quarantined and copied once more from the
    source, as log shipping does; the caller restores the step once more."""
    landing = Path(cfg.sites.standby.landing_dir)
    recopy = shipping_jobs.recopier(cfg)
    for name in step["file_names"]:
        manifest = read_manifest(landing, name)
        if manifest is None:
            continue
        done = log_shipping.StandbyStep(manifest.set_id, manifest.mark_name, dt.datetime.min, database, name,
                                        "seed" if manifest.backup_type == "db" else "log")
        _replace(cfg, done, recopy, f"dr_restore_validation: SQL Server error {exc.number} on restore: {exc.text}",
                 "sql")


def _quarantine_all(cfg: GroupConfig, step: dict[str, Any], reason: str) -> str:
    landing = Path(cfg.sites.standby.landing_dir)
    kept = [str(shipped_files.quarantine(landing, landing / name, reason)) for name in step["file_names"]
            if (landing / name).is_file()]
    return ", ".join(kept) or "(the files were gone)"


def check_database(cfg: GroupConfig, restored: dict[str, Any]) -> dict[str, Any]:
    """DBCC CHECKDB clean, ONLINE, stopped at the mark, and the role's sanity query — every check runs and is
    recorded; the task fails if any failed."""
    val = _validation(cfg)
    result = _load_result(cfg, restored["run_id"], restored["database"])
    name = restored["restored_as"]
    checks: list[dict[str, Any]] = []
    with SqlServer(val.conn_id) as server:
        def check(label: str, fn) -> None:
            try:
                ok, detail = fn()
            except SqlServerError as exc:
                ok, detail = False, str(exc)
            checks.append({"name": label, "ok": ok, "detail": detail})

        def checkdb():
            started = time.perf_counter()
            server.run(tsql.dbcc_checkdb(name), kind=CallKind.CHECK)
            return True, f"no errors ({time.perf_counter() - started:.2f} s)"

        def online():
            [row] = server.query(tsql.database_state(name))
            return row["state_desc"] == "ONLINE", f"state {row['state_desc']}"

        def at_mark():
            rows = server.query(tsql.last_stop_at_mark(name))
            found = rows[0]["stop_at_mark_name"] if rows else None
            return found == restored["mark"], f"stop_at_mark_name {found!r}, expected {restored['mark']!r}"

        def sanity():
            sql, proves = restore_validation.sanity_query(cfg, restored["database"])
            [row] = server.query(sql)
            return int(row["n"]) > 0, proves

        check("DBCC CHECKDB WITH NO_INFOMSGS", checkdb)
        check("ONLINE", online)
        check("restored to the mark", at_mark)
        check("BizTalk sanity query", sanity)
    result.checks = checks
    _save_result(cfg, restored["run_id"], result)
    failed = [c for c in checks if not c["ok"]]
    if failed:
        raise ValidationFailed(f"{restored['database']} (restored as {name}): "
                               + "; ".join(f"{c['name']}: {c['detail']}" for c in failed),
                               advice=advice("validation_unusable_database"))
    return {"database": restored["database"], "checks": checks}


def _save_result(cfg: GroupConfig, run_id: str, result: DatabaseResult) -> None:
    path = _run_dir(cfg, run_id) / f"{result.database}.json"
    write_json_atomically(path, asdict(result), mode=READABLE)


def _load_result(cfg: GroupConfig, run_id: str, database: str) -> DatabaseResult:
    path = _run_dir(cfg, run_id) / f"{database}.json"
    if not path.exists():  # the database's restore never started
        return DatabaseResult(database, "")
    return DatabaseResult(**json.loads(path.read_text()))


def write_report(cfg: GroupConfig, run_id: str, *, send_warning) -> dict[str, Any]:
    """The run's Markdown and JSON report (per database: bytes, each step's time, checks; the group's restore
    time; the proved mark and its age); fails when any database failed, warns over the restore objective. A run
    that waited for a new group's first full set writes no report and raises FirstFullSetPending again."""
    val = _validation(cfg)
    folder = _run_dir(cfg, run_id)
    if (waiting := folder / _WAITING_FILE).exists():  # a new group: nothing to prove yet, nothing restored
        raise FirstFullSetPending(waiting.read_text(encoding="utf-8").strip())
    plan_file = folder / "plan.json"
    plan = json.loads(plan_file.read_text()) if plan_file.exists() else {}
    results = [_load_result(cfg, run_id, d.name) for d in cfg.databases]
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    set_time = dt.datetime.fromisoformat(plan["set_time"]) if plan else None
    group_seconds = round(sum(r.seconds for r in results), 3)  # the restores run one after the other
    report = {
        "group": cfg.group.name, "run_id": run_id, "instance": val.server_name,
        "set_id": plan.get("set_id"), "mark": plan.get("mark"), "set_time": plan.get("set_time"),
        "mark_age_minutes": restore_validation.minutes_between(now, set_time) if set_time else None,
        "group_restore_seconds": group_seconds, "objective_minutes": val.restore_objective_minutes,
        "objective_exceeded": group_seconds > val.restore_objective_minutes * 60,
        "databases": [{"database": r.database, "restored_as": r.restored_as, "bytes": r.bytes, "seconds": r.seconds,
                       "steps": r.steps, "checks": r.checks, "error": r.error, "ok": r.ok} for r in results],
    }
    failed = [r for r in results if not r.ok]
    report["passed"] = bool(plan) and not failed
    if not plan:
        report["problem"] = "the run stopped before any restore (see the plan_validation task)"
    write_text_atomically(folder / "report.json", restore_validation.report_json(report), mode=READABLE)
    (folder / "report.md").write_text(restore_validation.render_markdown(report))
    log.info("report: %s and %s", folder / "report.md", folder / "report.json")
    summary = (f"set {report['set_id']} mark {report['mark']}: group restore time {group_seconds} s "
               f"(objective {val.restore_objective_minutes} min); report {folder / 'report.md'}")
    if failed or not plan:
        names = ", ".join(f"{r.database} ({r.error or 'checks failed'})" for r in failed) or "no database restored"
        raise ValidationFailed(f"restore validation FAILED: {names}; {summary}",
                               advice=advice("validation_failed"))
    if report["objective_exceeded"]:
        send_warning(f"restore validation passed but took longer than the objective: {summary}",
                     advice("validation_slow"))
    return {"report": str(folder / "report.md"), "passed": True, "group_restore_seconds": group_seconds}


def drop_validation_databases(cfg: GroupConfig) -> list[str]:
    """Always, also after a failure: drop every database with the validation prefix that belongs to the group."""
    val = _validation(cfg)
    names = [restore_validation.validation_name(cfg, d.name) for d in cfg.databases]
    dropped = []
    with SqlServer(val.conn_id) as server:
        existing = {str(r["name"]).lower(): str(r["name"]) for r in server.query(tsql.database_names())}
        for name in names:
            actual = existing.get(name.lower())
            if actual is None:
                continue
            assert actual.startswith(val.database_prefix)
            server.run(tsql.drop_database(actual), kind=CallKind.PROCEDURE)
            dropped.append(actual)
    return dropped
