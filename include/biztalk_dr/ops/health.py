"""Is every SQL instance of the group reachable, is it the server the config says, and in what state
are the group's databases there? The first thing an operator asks, before any DR step."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from biztalk_dr.domain import tsql
from biztalk_dr.domain.config import GroupConfig
from biztalk_dr.domain.errors import BackupScheduleMissed, FirstFullSetPending, SqlServerError
from biztalk_dr.ops.sqlserver import SqlServer

__all__ = ["InstanceTarget", "InstanceHealth", "instance_targets", "check_instance", "BackupSchedules",
           "backup_schedules"]


@dataclass(frozen=True)
class InstanceTarget:
    site: Literal["primary", "standby", "validation"]
    instance: str
    conn_id: str
    server_name: str
    databases: tuple[str, ...]  # the group's databases expected there (none on the validation instance)


@dataclass
class InstanceHealth:
    target: InstanceTarget
    reachable: bool
    server_name: str | None = None
    version: str | None = None
    databases: dict[str, str] = field(default_factory=dict)  # name -> state_desc (recovery model)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        t = self.target
        head = f"{t.site} instance {t.instance!r} ({t.conn_id} -> {t.server_name})"
        if not self.reachable:
            return f"{head}: UNREACHABLE: {'; '.join(self.problems)}"
        states = ", ".join(f"{k} {v}" for k, v in sorted(self.databases.items())) or "no group databases"
        verdict = "OK" if not self.problems else "PROBLEM: " + "; ".join(self.problems)
        return f"{head}: {verdict}; {states}"


def instance_targets(cfg: GroupConfig) -> list[InstanceTarget]:
    targets = []
    for site in ("primary", "standby"):
        for key, inst in getattr(cfg.sites, site).instances.items():
            dbs = tuple(d.name for d in cfg.databases if cfg.instance_of(d, site) == key)
            targets.append(InstanceTarget(site, key, inst.conn_id, inst.server_name, dbs))
    if cfg.sites.validation:
        v = cfg.sites.validation
        targets.append(InstanceTarget("validation", "validation", v.conn_id, v.server_name, ()))
    return targets


def check_instance(target: InstanceTarget, server: SqlServer) -> InstanceHealth:
    """Reach the instance and compare what it says with the config; never raises for SQL errors."""
    health = InstanceHealth(target, reachable=False)
    try:
        [row] = server.query(tsql.server_identity())
        health.reachable = True
        health.server_name, health.version = row["server_name"], row["version"]
        if (row["server_name"] or "").lower() != target.server_name.lower():
            health.problems.append(f"@@SERVERNAME is {row['server_name']!r}, the config says {target.server_name!r}")
        if target.databases:
            rows = server.query(tsql.database_recovery_states(list(target.databases)))
            health.databases = {r["name"]: f"{r['state_desc']} ({r['recovery_model_desc']})" for r in rows}
            for name in target.databases:
                found = next((r for r in rows if r["name"].lower() == name.lower()), None)
                if found is None:
                    if target.site == "primary":
                        health.problems.append(f"{name} does not exist")
                    else:
                        health.databases[name] = "not seeded yet"
                elif target.site == "primary" and found["recovery_model_desc"] != "FULL":
                    health.problems.append(f"{name} is in {found['recovery_model_desc']} recovery; BizTalk's "
                                           "backups need FULL")
                elif target.site == "standby" and found["state_desc"] != "RESTORING":
                    health.problems.append(f"{name} is {found['state_desc']}, a standby database must be "
                                           "RESTORING to take more logs")
    except SqlServerError as exc:
        health.problems.append(str(exc))
    finally:
        server.close()
    return health


@dataclass(frozen=True)
class BackupSchedules:
    """dr_health_check's check_backup_schedules: what to log, what is missed (fails), what is waiting for a new
    group's first full set (skips)."""
    lines: tuple[str, ...]
    missed: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()

    def verdict(self) -> list[str]:
        """The lines when every schedule keeps its promise; BackupScheduleMissed naming each missed kind, else
        FirstFullSetPending (the signal every check of a new group raises: its task skips) for the kinds waiting."""
        if self.missed:
            raise BackupScheduleMissed(list(self.missed))
        if self.waiting:
            raise FirstFullSetPending("; ".join(self.waiting))
        return list(self.lines)


def backup_schedules(cfg: GroupConfig) -> BackupSchedules:
    """The newest complete full and log sets in adm_BackupHistory against their schedules' promise. While a
    failover holds the backup schedule, that (it explains a gap, never hides one: a hold older than two log
    intervals is missed); within a new group's grace, a kind with no set yet is waiting."""
    from biztalk_dr.ops import backup_jobs, first_full_set
    from biztalk_dr.ops.backup_freshness import check_backup_schedules
    from biztalk_dr.ops.site_roles import backups_held, held_for

    if held := backups_held(cfg):
        if held_for(cfg) > dt.timedelta(minutes=2 * cfg.schedules.log_backup_minutes):
            return BackupSchedules(lines=(), missed=(held,))
        return BackupSchedules(lines=(held,))
    with backup_jobs.management_server(cfg) as server:
        sets, now = backup_jobs.read_sets(cfg, server), backup_jobs.history_clock_now(cfg, server)
    left = first_full_set.grace_left(cfg, sets, now=now, seen=first_full_set.first_seen(cfg.sites.standby.landing_dir))
    checks = check_backup_schedules(cfg, sets, now=now, grace_left=left)
    return BackupSchedules(lines=tuple(c.text() for c in checks), missed=tuple(c.text() for c in checks if c.missed),
                           waiting=tuple(c.text() for c in checks if c.waiting))
