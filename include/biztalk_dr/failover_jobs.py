"""The failover DAG's steps with their servers and files. Every step first looks whether its effect is
already there and then only says so, so that clearing any task and running it again is harmless; in a dry
run every step says what it would do and changes nothing."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from biztalk_dr import failover, log_shipping, shipping_jobs, tsql
from biztalk_dr.config import GroupConfig
from biztalk_dr.errors import BizTalkDrError, PreflightError, SqlConnectionError
from biztalk_dr.failover_request import FailoverRequest
from biztalk_dr.paths import sql_join
from biztalk_dr.sqlserver import CallKind, SqlServer
from biztalk_dr.standby_state import locked_state, read_state, run_records_dir
from biztalk_dr.update_info import update_info_xml

__all__ = ["assess", "recover_databases", "verify_database", "write_update_info", "record_new_roles", "run_folder",
           "timed_step", "write_timeline"]

log = logging.getLogger("biztalk_dr.failover")


def assess(cfg: GroupConfig, request: FailoverRequest) -> dict[str, Any]:
    """Standby instances reachable, every standby database RESTORING (or already recovered at the mark by an
    earlier run), the mark reachable by every database from shipped and verified files, the data loss, and
    whether the source answers. Raises with every problem; returns the plan the approval shows."""
    try:
        sets, now = shipping_jobs.primary_sets_and_clock(cfg)
        source = "reachable"
    except (SqlConnectionError, BizTalkDrError) as exc:
        sets, now, source = shipping_jobs.sets_from_manifests(cfg), dt.datetime.now(dt.UTC).replace(tzinfo=None), \
            f"NOT reachable ({exc})"
    if request.mode == "planned" and source != "reachable":
        raise PreflightError([f"mode is planned but the source is {source}"],
                             advice="Use mode disaster when the primary site is lost.")
    assessment = failover.assess_failover(sets, read_state(cfg.sites.standby.landing_dir),
                                          [d.name for d in cfg.databases], lambda r: log_shipping.row_shipped(cfg, r),
                                          request.target_mark)
    states = _standby_states(cfg)
    problems = list(assessment.problems)
    already = []
    for d in cfg.databases:
        state = states.get(d.name.lower())
        if state is None:
            problems.append(f"{d.name}: not on the standby instance")
        elif state == "ONLINE":
            already.append(d.name)
        elif state != "RESTORING":
            problems.append(f"{d.name}: {state} on the standby, expected RESTORING")
    if already and assessment.mark is None:
        problems.append(f"{', '.join(already)} already ONLINE on the standby: recovered by an earlier run or by hand")
    if problems and not (already and len(already) == len(cfg.databases)):
        raise PreflightError(problems, advice="Nothing was changed. Fix the named databases (dr_log_shipping, "
                                              "dr_standby_reseed) or pick another target_mark, then trigger again.")
    minutes = assessment.data_loss_minutes(now)
    plan = {
        "mode": request.mode, "dry_run": request.dry_run, "mark": assessment.mark, "set_id": assessment.set_id,
        "set_time": assessment.set_time.isoformat() if assessment.set_time else None,
        "data_loss_minutes": minutes, "source": source, "already_online": already,
        "databases": [{"database": r.database, "restored_set": r.restored_set,
                       "steps": [s.as_json() for s in r.steps]} for r in assessment.databases],
    }
    plan["summary"] = (f"{request.describe()}. Every database of {cfg.group.name} is restored to mark "
                       f"{assessment.mark} (set {assessment.set_id}, taken {plan['set_time']}). Work after that "
                       f"mark is lost: about {minutes} minute(s). Source: {source}.")
    return plan


def _standby_states(cfg: GroupConfig) -> dict[str, str]:
    states: dict[str, str] = {}
    for inst in cfg.sites.standby.instances.values():
        with SqlServer(inst.conn_id) as server:
            for row in server.query("SELECT name, state_desc FROM sys.databases"):
                states[str(row["name"]).lower()] = str(row["state_desc"])
    return states


def recover_databases(cfg: GroupConfig, plan: dict[str, Any]) -> list[str]:
    """Restore every remaining log WITH NORECOVERY, then each database's last log WITH STOPATMARK = N'<mark>',
    RECOVERY — the same mark for all. A database already ONLINE at the mark is left as it is."""
    mark = plan["mark"]
    done = []
    states = _standby_states(cfg)
    with locked_state(cfg.sites.standby.landing_dir, purpose="dr_failover recovery") as session:
        for db in plan["databases"]:
            name = db["database"]
            if states.get(name.lower()) == "ONLINE":
                done.append(f"{name}: already ONLINE ({_stopped_at(cfg, name) or 'no mark'}): nothing to do")
                continue
            steps = [log_shipping.StandbyStep(s["set_id"], s["mark"], dt.datetime.min, name, s["file"], "log")
                     for s in db["steps"]]
            remaining = [s for s in steps if s.set_id > (session.state.of(name).last_restored_set or 0)]
            if plan["dry_run"]:
                done.append(f"{name}: would restore {len(remaining)} log(s), the last "
                            f"({remaining[-1].file_name if remaining else '-'}) WITH STOPATMARK = N'{mark}', RECOVERY")
                continue
            if remaining[:-1]:
                log_shipping.restore_on_standby(cfg, remaining[:-1], session)
            last = remaining[-1] if remaining else None
            if last is not None:
                _restore_last(cfg, name, last.file_name, mark)
            done.append(f"{name}: {len(remaining)} log(s) restored, recovered at mark {mark}")
    return done


def _standby_server(cfg: GroupConfig, name: str) -> SqlServer:
    database = next(d for d in cfg.databases if d.name == name)
    return SqlServer(cfg.sites.standby.instances[cfg.instance_of(database, "standby")].conn_id)


def _restore_last(cfg: GroupConfig, name: str, file_name: str, mark: str) -> None:
    statement = tsql.restore_log(name, sql_join(cfg.sites.standby.landing_path, file_name),
                                 recovery=tsql.Recovery.RECOVERY, stop_at_mark=mark)
    with _standby_server(cfg, name) as server:
        server.run(statement, kind=CallKind.RESTORE)


def _stopped_at(cfg: GroupConfig, name: str) -> str | None:
    with _standby_server(cfg, name) as server:
        rows = server.query("SELECT TOP (1) stop_at_mark_name FROM msdb.dbo.restorehistory WHERE "
                            f"destination_database_name = {tsql.literal(name)} ORDER BY restore_history_id DESC")
    return rows[0]["stop_at_mark_name"] if rows else None


def verify_database(cfg: GroupConfig, name: str, mark: str, dry_run: bool) -> str:
    """ONLINE and stopped at the mark (msdb.restorehistory)."""
    if dry_run:
        return f"{name}: would check ONLINE and stop_at_mark_name = {mark}"
    with _standby_server(cfg, name) as server:
        [row] = server.query(f"SELECT state_desc FROM sys.databases WHERE name = {tsql.literal(name)}")
    stopped = _stopped_at(cfg, name)
    if row["state_desc"] != "ONLINE" or stopped != mark:
        raise PreflightError([f"{name}: {row['state_desc']}, stopped at mark {stopped!r}, expected ONLINE at {mark!r}"],
                             advice="Clear recover_databases to run it again; it continues from where it stopped.")
    return f"{name}: ONLINE at mark {mark}"


def write_update_info(cfg: GroupConfig, folder: Path, dry_run: bool) -> str:
    """SampleUpdateInfo.xml for UpdateDatabase.vbs and UpdateRegistry.vbs, written beside the run's records."""
    path = folder / "SampleUpdateInfo.xml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(update_info_xml(cfg), encoding="utf-8")
    return str(path) + (" (dry run: written for review only)" if dry_run else "")


def record_new_roles(cfg: GroupConfig, plan: dict[str, Any], dry_run: bool) -> dict[str, Any]:
    """The standby site is the primary now: recorded at the standby site, where it survives the old primary."""
    roles = {"primary_site": "standby", "failed_over_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
             "mark": plan["mark"], "set_id": plan["set_id"], "set_time": plan["set_time"], "mode": plan["mode"],
             "old_primary": "to be re-seeded as the new standby"}
    if dry_run:
        return {"would_record": roles}
    current = failover.read_roles(cfg.sites.standby.landing_dir)
    if current.get("primary_site") == "standby" and current.get("mark") == plan["mark"]:
        return {"already": current}
    failover.write_roles(cfg.sites.standby.landing_dir, roles)
    return roles


# ---------------------------------------------------------------------------------------------- timeline
def run_folder(cfg: GroupConfig, run_id: str) -> Path:
    return run_records_dir(cfg.sites.standby.landing_dir, "failover", run_id)


class timed_step:  # noqa: N801 - used as a context manager, reads as a phrase
    """Records one step's start, end and outcome in the run's timeline (the measured recovery time)."""

    def __init__(self, cfg: GroupConfig, run_id: str, step: str) -> None:
        self.path = run_folder(cfg, run_id) / "timeline.jsonl"
        self.step = step

    def __enter__(self) -> timed_step:
        self.start = dt.datetime.now(dt.UTC)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        import json

        entry = {"step": self.step, "start": self.start.isoformat(timespec="milliseconds"),
                 "end": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                 "outcome": "ok" if exc is None else f"failed: {exc}"}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")


def write_timeline(cfg: GroupConfig, run_id: str, approvals: dict[str, Any]) -> dict[str, Any]:
    """The run's timeline report (Markdown and JSON): each step's start, end and outcome, who approved what and
    when, and the measured recovery time (first step's start to last step's end)."""
    import json

    folder = run_folder(cfg, run_id)
    path = folder / "timeline.jsonl"
    steps = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    starts = [dt.datetime.fromisoformat(s["start"]) for s in steps]
    ends = [dt.datetime.fromisoformat(s["end"]) for s in steps]
    total = round((max(ends) - min(starts)).total_seconds(), 3) if steps else None
    report = {"run_id": run_id, "group": cfg.group.name, "recovery_seconds": total, "steps": steps,
              "approvals": approvals}
    (folder / "timeline.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    lines = [f"# Failover timeline of {cfg.group.name}", "", f"- run: `{run_id}`",
             f"- measured recovery time (first step to last): **{total} s**", "", "| step | start (UTC) | end (UTC) | "
             "outcome |", "|---|---|---|---|"]
    lines += [f"| {s['step']} | {s['start']} | {s['end']} | {s['outcome']} |" for s in steps]
    lines += ["", "## Approvals", ""]
    lines += [f"- {task}: {a}" for task, a in approvals.items()] or ["- none recorded"]
    (folder / "timeline.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"timeline": str(folder / "timeline.md"), "recovery_seconds": total}
