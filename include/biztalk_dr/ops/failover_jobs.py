"""The failover DAG's steps with their servers and files. Every step first looks whether its effect is
already there and then only says so, so that clearing any task and running it again is harmless; in a dry
run every step says what it would do and changes nothing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from biztalk_dr.domain import tsql
from biztalk_dr.domain.advice import advice
from biztalk_dr.domain.config import GroupConfig
from biztalk_dr.domain.errors import BizTalkDrError, FailoverRefused, PreflightError, SqlConnectionError
from biztalk_dr.domain.failover_request import FailoverRequest
from biztalk_dr.domain.paths import sql_join, sql_path_for
from biztalk_dr.domain.update_info import update_info_xml
from biztalk_dr.ops import backup_jobs, failover, shipped_files, shipping_jobs, site_roles, standby_restore
from biztalk_dr.ops.atomic_files import READABLE, write_json_atomically
from biztalk_dr.ops.config_files import load_config
from biztalk_dr.ops.failover_plan import FailoverPlan, FinalLogSet, PlannedDatabase
from biztalk_dr.ops.sqlserver import CallKind, SqlServer
from biztalk_dr.ops.standby_state import locked_state, read_state, run_records_dir

__all__ = ["assess", "hold_backup_schedule", "check_no_biztalk_sessions", "take_final_log_set", "ship_final_log_set",
           "plan_recovery", "recover_databases", "verify_database", "fix_orphaned_users", "write_update_info", "record_new_roles",
           "check_group_repointed", "force_full_backup_on_new_primary", "resume_backup_schedule", "run_folder",
           "run_step", "timed_step", "answers_of", "write_timeline", "describe_answer"]

log = logging.getLogger("biztalk_dr.ops.failover")


def assess(cfg: GroupConfig, request: FailoverRequest) -> dict[str, Any]:
    """Every standby database classified (RESTORING at which set, ONLINE at the mark or without it, missing,
    another state), the one target mark every database can reach from shipped and verified files, the data loss,
    and whether the source answers. Raises FailoverRefused with every problem (nothing is changed); returns the
    plan the approval shows, each database's state in it."""
    try:
        sets, now = shipping_jobs.primary_sets_and_clock(cfg)
        source, source_reachable = "reachable", True
    except (SqlConnectionError, BizTalkDrError) as exc:
        sets, now, source = shipping_jobs.sets_from_manifests(cfg), dt.datetime.now(dt.UTC).replace(tzinfo=None), \
            f"NOT reachable ({exc})"
        source_reachable = False
    if request.mode == "planned" and not source_reachable:
        raise PreflightError([f"mode is planned but the source is {source}"],
                             advice=advice("failover_planned_needs_source"))
    assessment = _assessment(cfg, sets, request.target_mark, request.leave_out)
    if not assessment.ok:
        raise FailoverRefused(list(assessment.problems) + [f"the standby now: {s.describe()}"
                                                           for s in assessment.standings if s.can_reach],
                              advice=advice("failover_refused"))
    minutes = assessment.data_loss_minutes(now)
    set_time = assessment.set_time.isoformat() if assessment.set_time else None
    standby = [s.describe() for s in assessment.standings]
    notes = list(assessment.notes)
    positions = {r.database: r.restored_set for r in assessment.databases}
    if len(set(positions.values())) > 1:  # BizTalk's own log shipping cannot do this; here each one catches up
        where = ", ".join(f"{d}: set {p}" for d, p in positions.items())
        notes.append(f"the standby databases are on different sets ({where}); each is brought to the same mark")
    if request.mode == "planned" and request.target_mark is None:
        summary = (f"{request.describe()}. BizTalk is stopped on the source, one final marked log set is "
                   f"taken and shipped, and every database of {cfg.group.name} is restored to that mark: "
                   f"nothing is lost. The standby can reach mark {assessment.mark} (set "
                   f"{assessment.set_id}) already. Source: {source}.")
    else:
        summary = (f"{request.describe()}. Every database of {cfg.group.name} is restored to mark "
                   f"{assessment.mark} (set {assessment.set_id}, taken {set_time}). Work after that "
                   f"mark is lost: about {minutes} minute(s). Source: {source}.")
    if assessment.left_out:
        summary += (f" WARNING: {', '.join(assessment.left_out)} NOT RECOVERED (left out by the operator): they stay "
                    "as they are on the standby, inconsistent with the others.")
    for note in notes:
        summary += f" Note: {note}."
    return FailoverPlan(
        mode=request.mode, dry_run=request.dry_run, mark=assessment.mark, set_id=assessment.set_id, set_time=set_time,
        data_loss_minutes=minutes, source=source, source_reachable=source_reachable,
        already_online=tuple(s.database for s in assessment.standings if s.kind == "online_at_mark"),
        left_out=assessment.left_out, standby=tuple(standby), failed_over=_completed_failover(cfg),
        databases=tuple(PlannedDatabase(r.database, r.restored_set, r.steps) for r in assessment.databases),
        notes=tuple(notes),
        summary=summary + "\n\nEach standby database now:\n" + "\n".join(f"- {line}" for line in standby),
    ).to_json()


def _assessment(cfg: GroupConfig, sets, target_mark: str | None, leave_out) -> failover.FailoverAssessment:
    """The pure assessment over what the standby instance says now."""
    return failover.assess_failover(
        sets, read_state(cfg.sites.standby.landing_dir), [d.name for d in cfg.databases],
        lambda r: shipped_files.row_shipped(cfg, r), target_mark, observed=observe_standby(cfg),
        leave_out=leave_out, required=[cfg.management_database.name],
        headers=lambda r: shipped_files.row_header(cfg, r))


def _completed_failover(cfg: GroupConfig) -> site_roles.SiteRoles | None:
    """The roles record when an earlier run already made the standby the primary (this run is a re-run)."""
    roles = site_roles.read_roles(cfg.sites.standby.landing_dir)
    return roles if roles.standby_is_primary else None


def observe_standby(cfg: GroupConfig) -> dict[str, failover.StandbyObservation]:
    """What each standby instance says of the group's databases now. An unreachable instance refuses the
    failover (nothing can be known, nothing is changed)."""
    try:
        return shipping_jobs.observe_standby(cfg)
    except SqlConnectionError as exc:
        raise FailoverRefused([f"a standby instance cannot be reached: {exc}"],
                              advice=advice("standby_unreachable")) from exc


def _standby_states(cfg: GroupConfig) -> dict[str, str]:
    return {name.lower(): o.state for name, o in observe_standby(cfg).items() if o.state is not None}


def recover_databases(cfg: GroupConfig, plan: dict[str, Any]) -> list[str]:
    """Restore every remaining log WITH NORECOVERY, then each database's last log WITH STOPATMARK = N'<mark>',
    RECOVERY — the same mark for all. Never starts what it cannot finish: the standby is assessed again first
    (it may have changed since the approval), every database's logs before the mark are restored WITH NORECOVERY,
    every last file is hashed against its manifest, the standby is assessed once more, and only then does the
    first WITH RECOVERY run. A database already ONLINE at the mark is left as it is; a left-out one too."""
    approved = FailoverPlan.from_json(plan)
    mark = approved.mark
    left_out = set(approved.left_out)
    done = [f"{name}: LEFT OUT by the operator: NOT recovered, left as it is" for name in sorted(left_out)]
    sets = _sets_for_recovery(cfg)
    with locked_state(cfg.sites.standby.landing_dir, purpose="dr_failover recovery") as session:
        _check_still_reachable(cfg, sets, mark, left_out, "before any restore")
        todo = []
        for db in approved.databases:
            name = db.database
            remaining = [s for s in db.steps if s.set_id > (session.state.of(name).last_restored_set or 0)]
            todo.append((name, remaining))
        if approved.dry_run:
            return done + [f"{name}: would restore {len(remaining)} log(s), the last "
                           f"({remaining[-1].file_name if remaining else '-'}) WITH STOPATMARK = N'{mark}', RECOVERY"
                           for name, remaining in todo]
        for _name, remaining in todo:  # reversible: the databases stay RESTORING
            if remaining[:-1]:
                standby_restore.restore_on_standby(cfg, remaining[:-1], session)
        for _name, remaining in todo:
            if remaining:
                standby_restore.verified_copy(cfg, remaining[-1], None)
        _check_still_reachable(cfg, sets, mark, left_out, "right before the first WITH RECOVERY")
        states = _standby_states(cfg)
        for name, remaining in todo:
            if not remaining or states.get(name.lower()) == "ONLINE":
                done.append(f"{name}: already ONLINE ({_stopped_at(cfg, name) or 'no mark'}): nothing to do")
                continue
            _restore_last(cfg, name, remaining[-1].file_name, mark)
            done.append(f"{name}: {len(remaining)} log(s) restored, recovered at mark {mark}")
        for name in approved.already_online:
            done.append(f"{name}: already ONLINE at mark {mark} (an earlier run): nothing to do")
    return done


def _sets_for_recovery(cfg: GroupConfig):
    try:
        return shipping_jobs.primary_sets_and_clock(cfg)[0]
    except (SqlConnectionError, BizTalkDrError):
        return shipping_jobs.sets_from_manifests(cfg)


def _check_still_reachable(cfg: GroupConfig, sets, mark: str, left_out: set[str], when: str) -> None:
    """The approved mark is still reachable by every database not left out; else stop, nothing recovered."""
    again = _assessment(cfg, sets, mark, sorted(left_out))
    if not again.ok or set(again.left_out) != left_out:
        problems = list(again.problems) + [f"left out now: {', '.join(again.left_out) or 'none'}, approved: "
                                           f"{', '.join(sorted(left_out)) or 'none'}"] * (set(again.left_out) != left_out)
        raise FailoverRefused([f"{when}: the standby changed since the approval and cannot reach mark {mark}"]
                              + problems, advice=advice("failover_changed_since_approval"))


def _standby_server(cfg: GroupConfig, name: str) -> SqlServer:
    database = next(d for d in cfg.databases if d.name == name)
    return SqlServer(cfg.sites.standby.instances[cfg.instance_of(database, "standby")].conn_id)


def _restore_last(cfg: GroupConfig, name: str, file_name: str, mark: str) -> None:
    statement = tsql.restore_statement(name, sql_join(cfg.sites.standby.landing_path, file_name), log=True,
                                       recovery=tsql.Recovery.RECOVERY, stop_at_mark=mark)
    with _standby_server(cfg, name) as server:
        server.run(statement, kind=CallKind.RESTORE)


def _stopped_at(cfg: GroupConfig, name: str) -> str | None:
    with _standby_server(cfg, name) as server:
        rows = server.query(tsql.last_stop_at_mark(name))
    return rows[0]["stop_at_mark_name"] if rows else None


def verify_database(cfg: GroupConfig, name: str, mark: str, dry_run: bool) -> str:
    """ONLINE and stopped at the mark (msdb.restorehistory)."""
    if dry_run:
        return f"{name}: would check ONLINE and stop_at_mark_name = {mark}"
    with _standby_server(cfg, name) as server:
        [row] = server.query(tsql.database_state(name))
    stopped = _stopped_at(cfg, name)
    if row["state_desc"] != "ONLINE" or stopped != mark:
        raise PreflightError([f"{name}: {row['state_desc']}, stopped at mark {stopped!r}, expected ONLINE at {mark!r}"],
                             advice=advice("failover_verify"))
    return f"{name}: ONLINE at mark {mark}"


def fix_orphaned_users(cfg: GroupConfig, name: str, dry_run: bool) -> list[str]:
    """Database users of SQL logins whose SID no login of the new instance has (the login was created there
    with another SID) mapped to the login of the same name (ALTER USER ... WITH LOGIN); runbook step 7. A
    user without a login of its name cannot be mapped: the task fails naming it and what to do."""
    with _standby_server(cfg, name) as server:
        [state] = server.query(tsql.database_state(name))
        if dry_run and state["state_desc"] != "ONLINE":
            return [f"{name}: would map orphaned users to their logins once recovered (it is {state['state_desc']} now)"]
        orphans = [str(r["name"]) for r in server.query(tsql.orphaned_sql_users(name))]
        if not orphans:
            return [f"{name}: no orphaned users"]
        logins = {str(r["name"]).lower() for r in server.query(tsql.sql_login_names())}
        fixable = [u for u in orphans if u.lower() in logins]
        missing = [u for u in orphans if u.lower() not in logins]
        if dry_run:
            return [f"{name}: would map user {u} to login {u} (ALTER USER ... WITH LOGIN)" for u in fixable] + \
                   [f"{name}: user {u} has no login of that name on the standby instance" for u in missing]
        for user in fixable:
            server.run(tsql.map_user_to_login(name, user))
    if missing:
        mapped = [f"{name}: mapped {', '.join(fixable)} (fixed)"] if fixable else []
        raise PreflightError([f"{name}: user {u} has no login of that name on the new primary" for u in missing]
                             + mapped,
                             advice=advice("failover_orphaned_users"))
    return [f"{name}: user {u} mapped to login {u} (it was orphaned)" for u in fixable]


def write_update_info(cfg: GroupConfig, run_id: str) -> dict[str, str]:
    """SampleUpdateInfo.xml for UpdateDatabase.vbs and UpdateRegistry.vbs, written beside the run's records;
    returned as the workers see it and as the standby site's servers see it (through landing_path)."""
    folder = run_folder(cfg, run_id)
    path = folder / "SampleUpdateInfo.xml"
    path.write_text(update_info_xml(cfg), encoding="utf-8")
    server_path = sql_path_for(path, worker_folder=cfg.sites.standby.landing_dir,
                               sql_folder=cfg.sites.standby.landing_path)
    return {"worker_path": str(path), "server_path": server_path,
            "said": f"SampleUpdateInfo.xml: {path} (on the BizTalk servers: {server_path})"}


def record_new_roles(cfg: GroupConfig, plan: dict[str, Any], dry_run: bool) -> dict[str, Any]:
    """The standby site is the primary now: recorded at the standby site, where it survives the old primary.
    The backup schedule stays held until the new primary has its first full backup set."""
    assessed = FailoverPlan.from_json(plan)
    current = site_roles.read_roles(cfg.sites.standby.landing_dir)
    roles = dataclasses.replace(
        current, primary_site="standby", failed_over_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        mark=assessed.mark, set_id=assessed.set_id, set_time=assessed.set_time, mode=assessed.mode,
        old_primary=f"{_old_primary(cfg)}: to be re-seeded as the new standby (it is not restored to anything)")
    if dry_run:
        return {"would_record": roles.to_json()}
    if current.standby_is_primary and current.mark == assessed.mark:
        return {"already": current.to_json()}
    site_roles.write_roles(cfg.sites.standby.landing_dir, roles)
    return roles.to_json()


def _old_primary(cfg: GroupConfig) -> str:
    return ", ".join(i.server_name for i in cfg.sites.primary.instances.values())


# ---------------------------------------------------------------------------------------------- stop the source
def hold_backup_schedule(cfg: GroupConfig, run_id: str, dry_run: bool) -> str:
    """No backup set from the schedule while the failover runs (runbook step 2)."""
    if dry_run:
        return "would hold the backup schedule (dr_full_backup and dr_log_backup skip until it is resumed)"
    if site_roles.standby_is_primary(cfg) and not site_roles.backups_held(cfg):
        return "an earlier run completed this failover and resumed the backups: they stay as they are"
    return site_roles.hold_backups(cfg, run_id)


def check_no_biztalk_sessions(cfg: GroupConfig, plan: dict[str, Any]) -> str:
    """No session but this one uses a database of the group on the source (runbook step 4): BizTalk is
    stopped, so nothing writes after the final mark. A lost source cannot be checked: says so."""
    assessed = FailoverPlan.from_json(plan)
    if not assessed.source_reachable:
        return f"the source is {assessed.source}: no session can be checked there"
    problems, checked = [], 0
    names = {d.name.lower() for d in cfg.databases}
    for inst in cfg.sites.primary.instances.values():
        try:
            with SqlServer(inst.conn_id) as server:
                [me] = server.query(tsql.current_session_id())
                ids = {r["database_id"]: r["name"] for r in server.query(tsql.database_ids())
                       if str(r["name"]).lower() in names}
                rows = server.query(tsql.user_sessions())
        except SqlConnectionError as exc:
            if assessed.mode == "planned":
                raise
            return f"the source {inst.server_name} no longer answers ({exc}): no session can be checked there"
        checked += 1
        for r in rows:
            if r["session_id"] != me["spid"] and r["database_id"] in ids:
                problems.append(f"{inst.server_name}: session {r['session_id']} of {r['login_name']} from "
                                f"{r['host_name'] or '?'} ({r['program_name'] or '?'}) uses {ids[r['database_id']]}")
    if problems:
        raise PreflightError(problems, advice=advice("failover_source_busy"))
    return f"no session uses a database of the group on {checked} source instance(s)"


def _final_set_file(cfg: GroupConfig, run_id: str) -> Path:
    return run_folder(cfg, run_id) / "final_log_set.json"


def take_final_log_set(cfg: GroupConfig, plan: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Planned switchover: one last marked log set after BizTalk stopped, so it holds everything (runbook
    step 2), checked like every scheduled set. Taken once per run; a disaster takes none."""
    assessed = FailoverPlan.from_json(plan)
    if assessed.mode != "planned":
        return FinalLogSet(None, None, "disaster: no final log set (the source is lost); the target stays the "
                                       f"approved mark {assessed.mark}").to_json()
    if assessed.dry_run:
        return FinalLogSet(None, None, "would take a final marked log set (sp_MarkAll) and verify it").to_json()
    if assessed.failed_over:
        return FinalLogSet(None, None, "an earlier run already failed over to mark "
                                       f"{assessed.failed_over.mark}: no new log set is taken").to_json()
    path = _final_set_file(cfg, run_id)
    done = FinalLogSet.from_json(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else None
    if done is not None and done.verified:
        return replace(done, said=f"already taken and verified by this run: set {done.set_id} ({done.mark})").to_json()
    if done is None:  # recorded before it is verified: a re-run verifies this set instead of taking another
        with backup_jobs.management_server(cfg) as mgmt:
            bset = backup_jobs.take_log_backup_set(cfg, mgmt)
        done = FinalLogSet(bset.set_id, bset.mark_name, said="")
        write_json_atomically(path, done.record(), indent=None, mode=READABLE)
    checked = backup_jobs.check_new_set(cfg, done.set_id)
    for name in checked.databases:
        log.info("%s", backup_jobs.read_back_new_file(cfg, done.set_id, name))
    done = replace(done, verified=True)
    write_json_atomically(path, done.record(), indent=None, mode=READABLE)
    return replace(done, said=f"final log set {done.set_id} taken with mark {done.mark} and verified").to_json()


def ship_final_log_set(cfg: GroupConfig, final: dict[str, Any]) -> list[str]:
    """Every complete set not yet at the standby, the final one included, shipped and verified the way
    dr_log_shipping does it (files already shipped are left alone)."""
    last = FinalLogSet.from_json(final)
    if last.set_id is None:
        return ["nothing to ship: " + last.said]
    plan = shipping_jobs.find_sets_to_ship(cfg)
    done = []
    for entry in plan["to_ship"]:
        done += [f"{entry['database']}: {line}" for line in
                 shipping_jobs.ship_files_of_database(cfg, entry["database"], entry["set_ids"])]
    shipped = [r.database_name for s in shipping_jobs.sets_from_manifests(cfg) if s.set_id == last.set_id
               for r in s.rows]
    if len(shipped) != len(cfg.databases):
        raise PreflightError([f"the final log set {last.set_id} is shipped and verified for "
                              f"{len(shipped)} of {len(cfg.databases)} databases"],
                             advice=advice("failover_final_set_not_shipped"))
    return done


def plan_recovery(cfg: GroupConfig, approved: dict[str, Any], final: dict[str, Any]) -> dict[str, Any]:
    """The recovery the next phase runs: to the final log set's mark in a planned switchover (nothing is
    lost), else to the mark that was approved; assessed again, so nothing changed since is missed."""
    last = FinalLogSet.from_json(final)
    if last.set_id is None:
        return approved
    assessed = FailoverPlan.from_json(approved)
    return assess(cfg, FailoverRequest(mode=assessed.mode, target_mark=last.mark, dry_run=assessed.dry_run,  # type: ignore[arg-type]
                                       leave_out=assessed.left_out))


# ---------------------------------------------------------------------------------------------- new primary
def check_group_repointed(acting: GroupConfig) -> list[str]:
    """The management database on the new primary (``acting``: the configuration as ``site_roles.acting_config``
    gives it after a failover) names the new primary's servers for every database (UpdateDatabase.vbs ran);
    returns the problems."""
    mgmt = acting.management_database
    expected = {d.name.lower(): acting.sites.primary.instances[acting.instance_of(d, "primary")].server_name
                for d in acting.databases}
    with backup_jobs.management_server(acting) as server:
        rows = server.query(tsql.biztalk_database_servers(mgmt.name))
    return [f"{mgmt.name}.dbo.{r['t']} still names {r['server']} for {r['db']} (expected {expected[str(r['db']).lower()]})"
            for r in rows if str(r["db"]).lower() in expected
            and str(r["server"]).lower() != expected[str(r["db"]).lower()].lower()]


def force_full_backup_on_new_primary(cfg: GroupConfig, dry_run: bool) -> list[str]:
    """The first full backup set of the new primary, through BizTalk's procedures, checked like every set:
    its log chain starts here (runbook step 13). Already taken since the failover: says so."""
    if dry_run:
        return ["would check the group is repointed, then force and take a full backup set on the standby site"]
    acting = site_roles.acting_config(cfg)
    problems = check_group_repointed(acting)
    if problems:
        raise PreflightError(problems, advice=advice("failover_repoint_first"))
    new_servers = {i.server_name.lower() for i in acting.sites.primary.instances.values()}
    with backup_jobs.management_server(acting) as mgmt:
        taken = [s for s in backup_jobs.read_sets(acting, mgmt) if s.kind == "full" and s.complete
                 and all(r.server_name.lower() in new_servers for r in s.rows)]
    if taken:  # an earlier try took it: verify it (that try may have failed while verifying), take no other
        bset, lines = taken[-1], [f"already taken: full set {taken[-1].set_id} ({taken[-1].mark_name}) on the new "
                                  "primary; verified again"]
    else:
        report = backup_jobs.preflight(acting, backup_jobs.primary_servers(acting))
        with backup_jobs.management_server(acting) as mgmt:
            moved = backup_jobs.register_custom_databases(acting, mgmt)
            backup_jobs.set_compression(acting, mgmt)
            bset = backup_jobs.take_full_backup_set(acting, mgmt)
        lines = report.actions + report.checks + [f"custom database registered: {m}" for m in moved]
        lines.append(f"full set {bset.set_id} ({bset.mark_name}) taken on the new primary into "
                     f"{acting.sites.primary.backup_path}")
    backup_jobs.check_new_set(acting, bset.set_id)
    return lines + [backup_jobs.read_back_new_file(acting, bset.set_id, name) for name in bset.databases]


def resume_backup_schedule(cfg: GroupConfig, dry_run: bool) -> str:
    """The backup schedule back, against the new primary; and what is left to do: the old site is no standby."""
    left = " " + advice("failover_old_primary_next", old_primary=_old_primary(cfg))
    if dry_run:
        return "would resume the backup schedule against the new primary." + left
    return site_roles.release_backups(cfg) + "." + left


# ---------------------------------------------------------------------------------------------- timeline
def run_folder(cfg: GroupConfig, run_id: str) -> Path:
    return run_records_dir(cfg.sites.standby.landing_dir, "failover", run_id)


def run_step(run_id: str, step: str, work: Callable[[GroupConfig], Any]) -> Any:
    """One failover task's work with the group's configuration, timed into the run's timeline, and what it did
    printed to the task's log (the operator reads it there)."""
    cfg = load_config()
    with timed_step(cfg, run_id, step):
        result = work(cfg)
    print(_said(result))
    return result


def _said(result: Any) -> str:
    if isinstance(result, list):
        return "\n".join(map(str, result))
    if isinstance(result, dict) and ("said" in result or "summary" in result):
        return str(result.get("said") or result["summary"])
    return str(result)


class timed_step:  # noqa: N801 - used as a context manager, reads as a phrase
    """Records one step's start, end and outcome in the run's timeline (the measured recovery time)."""

    def __init__(self, cfg: GroupConfig, run_id: str, step: str) -> None:
        self.path = run_folder(cfg, run_id) / "timeline.jsonl"
        self.step = step

    def __enter__(self) -> timed_step:
        self.start = dt.datetime.now(dt.UTC)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        entry = {"step": self.step, "start": self.start.isoformat(timespec="milliseconds"),
                 "end": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                 "outcome": "ok" if exc is None else f"failed: {exc}"}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")


def record_answer(cfg: GroupConfig, run_id: str, step: str, outcome: str, who: Any, when: Any) -> None:
    """A human step's answer in the run's timeline the moment it is given (a rejection fails the task, so no
    XCom would carry it)."""
    name = who.get("name") if isinstance(who, dict) else who
    at = when.isoformat() if hasattr(when, "isoformat") else str(when or dt.datetime.now(dt.UTC).isoformat())
    entry = {"step": step, "start": at, "end": at, "outcome": f"{outcome} by {name or 'nobody'} at {_when(at)}",
             "answer": {"outcome": outcome, "responded_by_user": who, "responded_at": at}}
    with open(run_folder(cfg, run_id) / "timeline.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, default=str) + "\n")


def answers_of(output: Any) -> Any:
    """Who answered a human step and when, from its XCom; what ran instead for a WinRM or dry-run step."""
    if not isinstance(output, dict):
        return "no answer recorded (not reached, or marked done)"
    if output.get("ran_through") or output.get("dry_run"):
        return {k: output.get(k) for k in ("server", "ran_through", "dry_run") if k in output}
    return {k: output.get(k) for k in ("chosen_options", "responded_by_user", "responded_at")}


def _when(value: Any) -> str:
    """A time as a person reads it: ``2026-11-25 02:13:04 UTC``."""
    try:
        when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return f"{when:%Y-%m-%d %H:%M:%S} UTC"


def _who(user: Any) -> str:
    if isinstance(user, dict):
        return str(user.get("name") or user.get("id") or "an unnamed user")
    return str(user) if user else "nobody"


def describe_answer(step: str, answer: Any) -> str:
    """One human step's answer in words: who approved or rejected it and when; what ran instead of a person."""
    if not isinstance(answer, dict):
        return f"{step}: {answer}"
    if answer.get("dry_run"):
        return f"{step}: DRY RUN on {answer.get('server', '?')}: nobody was asked, nothing was run"
    if answer.get("ran_through"):
        return f"{step}: run through {str(answer['ran_through']).upper()} on {answer.get('server', '?')}"
    chosen = answer.get("outcome") or ", ".join(answer.get("chosen_options") or []) or "no answer"
    return f"{step}: {chosen} by {_who(answer.get('responded_by_user'))} at {_when(answer.get('responded_at'))}"


def write_timeline(cfg: GroupConfig, run_id: str, approvals: dict[str, Any],
                   left_out: list[str] | None = None, *, dry_run: bool | None = None, mode: str | None = None,
                   mark: str | None = None) -> dict[str, Any]:
    """The run's timeline report (Markdown and JSON): each step's start, end and outcome, who approved or
    rejected what and when, the databases left out (loudly), and the measured recovery time (first step's start
    to last step's end)."""
    folder = run_folder(cfg, run_id)
    path = folder / "timeline.jsonl"
    entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    steps = [e for e in entries if "answer" not in e]
    for entry in entries:  # answers recorded as given (a rejection has no XCom)
        if "answer" in entry and not isinstance(approvals.get(entry["step"]), dict):
            approvals[entry["step"]] = entry["answer"]
    starts = [dt.datetime.fromisoformat(s["start"]) for s in steps]
    ends = [dt.datetime.fromisoformat(s["end"]) for s in steps]
    total = round((max(ends) - min(starts)).total_seconds(), 3) if steps else None
    report = {"run_id": run_id, "group": cfg.group.name, "dry_run": dry_run, "mode": mode, "mark": mark,
              "recovery_seconds": total, "steps": steps, "approvals": approvals, "left_out": list(left_out or []),
              "approvals_in_words": [describe_answer(task, a) for task, a in approvals.items()]}
    write_json_atomically(folder / "timeline.json", report, default=str, mode=READABLE)
    kind = ("DRY RUN — nothing was changed: " if dry_run else "REAL FAILOVER — " if dry_run is False else "")
    lines = [f"# {kind}Failover timeline of {cfg.group.name}", ""]
    if dry_run:
        lines += ["**DRY RUN: every step below said what it would do; no server, database or file was changed.**",
                  ""]
    lines += [f"- run: `{run_id}`", f"- mode: {mode or 'unknown'}; mark: {mark or 'none reached'}",
              f"- measured recovery time (first step to last): **{total} s**", ""]
    if left_out:
        lines += [f"**WARNING: {', '.join(left_out)} NOT RECOVERED: left out by the operator (leave_out); they are not "
                  "at the mark of the others.**", ""]
    lines += ["| step | start (UTC) | end (UTC) | "
             "outcome |", "|---|---|---|---|"]
    lines += [f"| {s['step']} | {_when(s['start'])} | {_when(s['end'])} | {s['outcome']} |" for s in steps]
    lines += ["", "## Who approved what, and when", ""]
    lines += [f"- {line}" for line in report["approvals_in_words"]] or ["- none recorded"]
    (folder / "timeline.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"timeline": str(folder / "timeline.md"), "recovery_seconds": total}
