"""The steps of the scheduled backups, through the procedures Microsoft supports.

Airflow replaces only the *scheduling* of the "Backup BizTalk Server" SQL Agent job; the backups
themselves are BizTalk's own procedures in the management database (biztalk-dr.md section 2):
``sp_SetBackupCompression``, ``sp_ForceFullBackup``, ``sp_BackupAllFull_Schedule``, ``sp_MarkAll``,
``sp_DeleteBackupHistory``. Any other backup of these databases would break BizTalk's log chain.

Each function takes its SQL Server objects (and file system root) as arguments, so the DAG
tasks stay wiring and the steps can be run from tests against the stand-in or a real server.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from biztalk_dr.backup_files import BackupSetHeader, read_backup_file
from biztalk_dr.domain import tsql
from biztalk_dr.domain.advice import advice
from biztalk_dr.domain.backup_sets import (
    BackupSet,
    HistoryRow,
    group_sets,
    history_rows,
    newest_complete_full,
    set_problems,
)
from biztalk_dr.domain.config import GroupConfig
from biztalk_dr.domain.errors import (
    BackupFileError,
    BackupSetProblem,
    PathOutsideRootError,
    PreflightError,
    SqlServerError,
)
from biztalk_dr.domain.paths import worker_path_for
from biztalk_dr.ops.sqlserver import CallKind, SqlServer

__all__ = [
    "backup_job_name",
    "PreflightReport",
    "preflight",
    "register_custom_databases",
    "on_management_server",
    "set_compression",
    "read_sets",
    "take_full_backup_set",
    "take_log_backup_set",
    "verify_set",
    "read_back_file",
    "check_new_set",
    "read_back_new_file",
    "request_full_backup",
    "full_backup_requested_on_failure",
    "delete_history",
    "retention_dry_run",
    "apply_retention",
]

log = logging.getLogger("biztalk_dr.backup")


def backup_job_name(cfg: GroupConfig) -> str:
    """The SQL Agent job BizTalk's setup creates, named after the management database."""
    return f"Backup BizTalk Server ({cfg.management_database.name})"


def _proc(cfg: GroupConfig, name: str) -> tuple[str, str, str]:
    return (cfg.management_database.name, "dbo", name)


@dataclass
class PreflightReport:
    checks: list[str] = field(default_factory=list)  # what was checked and found right, for the log
    actions: list[str] = field(default_factory=list)  # what was changed (the Agent job disabled)

    @property
    def lines(self) -> list[str]:
        """For the task log: what was changed first, then what was checked."""
        return self.actions + self.checks


def preflight(cfg: GroupConfig, primaries: Mapping[str, SqlServer], *,
              disk_usage: Callable[[str], tuple[int, int, int]] = shutil.disk_usage) -> PreflightReport:
    """Everything that must hold before BizTalk's backup procedures are called; raises PreflightError
    listing every problem at once, with what to do."""
    report = PreflightReport()
    problems: list[str] = []
    mgmt = cfg.management_database
    mgmt_server = primaries[cfg.instance_of(mgmt, "primary")]

    # 1. every database of the group exists, is online, in FULL recovery (log backups need it)
    for key, server in primaries.items():
        names = [d.name for d in cfg.databases if cfg.instance_of(d, "primary") == key]
        rows = server.query(tsql.database_recovery_states(names))
        found = {r["name"].lower(): r for r in rows}
        for name in names:
            row = found.get(name.lower())
            if row is None:
                problems.append(f"{name} does not exist on {server.conn_id}")
            elif row["state_desc"] != "ONLINE":
                problems.append(f"{name} is {row['state_desc']} on {server.conn_id}, not ONLINE")
            elif row["recovery_model_desc"] != "FULL":
                problems.append(f"{name} uses the {row['recovery_model_desc']} recovery model; BizTalk's log backups "
                                f"need FULL: ALTER DATABASE {tsql.quote_name(name)} SET RECOVERY FULL, then take a full backup")
        if names:
            report.checks.append(f"{len(names)} database(s) on {server.conn_id} ONLINE in FULL recovery")

    # 2. the SQL Agent job must not back up too: two schedulers would interleave sets
    job = backup_job_name(cfg)
    rows = mgmt_server.query(tsql.sql_agent_job(job))
    disable_job = tsql.exec_procedure(("msdb", "dbo", "sp_update_job"), {"job_name": job, "enabled": 0})
    if rows and rows[0]["enabled"]:
        if cfg.backup.disable_sql_agent_job:
            mgmt_server.run(disable_job)
            report.actions.append(f"disabled the SQL Agent job {job!r} (backup.disable_sql_agent_job is true)")
        else:
            problems.append(
                f"the SQL Agent job {job!r} is enabled on {mgmt_server.conn_id}: it would take backups besides "
                f"biztalk-dr. Disable it (SQL Server Agent > Jobs > right-click > Disable, or {disable_job}), "
                "or set backup.disable_sql_agent_job: true to let biztalk-dr do it")
    else:
        report.checks.append(f"SQL Agent job {job!r} {'disabled' if rows else 'not present'}")

    # 3. SQL Server can reach the backup folder (its own view of the path)
    path = cfg.sites.primary.backup_path
    rows = mgmt_server.query(tsql.folder_seen_by_server(path))
    if not rows or not rows[0]["file_is_a_directory"]:
        problems.append(f"SQL Server on {mgmt_server.conn_id} cannot see the backup folder {path!r} "
                        "(sites.primary.backup_path): create it or give the SQL Server service account access")
    else:
        report.checks.append(f"SQL Server sees the backup folder {path}")

    # 4. room for the next backups, measured where the files land
    folder = cfg.sites.primary.backup_dir
    try:
        free = disk_usage(folder)[2]
    except OSError as exc:
        problems.append(f"the backup folder {folder!r} (sites.primary.backup_dir) cannot be read by the Airflow "
                        f"worker: {exc.strerror}")
    else:
        need = cfg.backup.min_free_space_gb * 1024**3
        if free < need:
            problems.append(f"only {free / 1024**3:.1f} GB free in {folder}; backup.min_free_space_gb asks for "
                            f"{cfg.backup.min_free_space_gb} GB: free space or lower the threshold")
        else:
            report.checks.append(f"{free / 1024**3:.1f} GB free in {folder} (threshold {cfg.backup.min_free_space_gb} GB)")
    if problems:
        raise PreflightError(problems)
    return report


def register_custom_databases(cfg: GroupConfig, mgmt_server: SqlServer) -> list[str]:
    """Custom databases of the config in ``adm_OtherBackupDatabases`` (BizTalk backs up only what is
    registered there), on the instance that holds them now. Idempotent; returns the databases added or moved."""
    mgmt = cfg.management_database.name
    rows = mgmt_server.query(tsql.registered_custom_databases(mgmt))
    registered = {r["DatabaseName"].lower(): r["ServerName"] for r in rows}
    added = []
    for db in cfg.databases_with_role("custom"):
        server_name = cfg.sites.primary.instances[cfg.instance_of(db, "primary")].server_name
        current = registered.get(db.name.lower())
        if current is not None and current.lower() == server_name.lower():
            continue
        if current is not None:  # after a failover: the database now lives on the new primary's instance
            mgmt_server.run(tsql.move_custom_database(mgmt, db.name, server_name))
            added.append(f"{db.name} (moved from {current} to {server_name})")
            continue
        mgmt_server.run(tsql.register_custom_database(mgmt, db.name, server_name))
        added.append(db.name)
    return added


def set_compression(cfg: GroupConfig, mgmt_server: SqlServer) -> bool:
    """``sp_SetBackupCompression`` per backup.compression; returns the value set."""
    mgmt_server.run(tsql.exec_procedure(_proc(cfg, "sp_SetBackupCompression"),
                                        {"bCompression": cfg.backup.compression}))
    return cfg.backup.compression


def read_sets(cfg: GroupConfig, mgmt_server: SqlServer, *, limit: int = 5000) -> list[BackupSet]:
    return group_sets(history_rows(mgmt_server.query(tsql.backup_history(cfg.management_database.name, limit=limit))))


def _new_sets(cfg: GroupConfig, mgmt_server: SqlServer, after_set_id: int) -> list[BackupSet]:
    return [s for s in read_sets(cfg, mgmt_server, limit=500) if s.set_id > after_set_id]


def _newest_set_id(cfg: GroupConfig, mgmt_server: SqlServer) -> int:
    sets = read_sets(cfg, mgmt_server, limit=200)
    return sets[-1].set_id if sets else 0


def take_full_backup_set(cfg: GroupConfig, mgmt_server: SqlServer) -> BackupSet:
    """Force and take a full backup set now (Airflow's schedule decides when; the frequency passed to
    BizTalk only matters if someone runs the procedure outside biztalk-dr)."""
    before = _newest_set_id(cfg, mgmt_server)
    mgmt_server.run(tsql.exec_procedure(_proc(cfg, "sp_ForceFullBackup")))
    mgmt_server.run(tsql.exec_procedure(_proc(cfg, "sp_BackupAllFull_Schedule"), {
        "Frequency": cfg.schedules.full_backup.frequency,
        "MarkName": cfg.backup.mark_prefix,
        "BackupPath": cfg.sites.primary.backup_path,
        "ForceFullBackupAfterPartialSetFailure": cfg.backup.force_full_after_partial_set,
        "BackupHour": cfg.schedules.full_backup.hour,
        "UseLocalTime": cfg.backup.use_local_time,
    }), kind=CallKind.BACKUP)
    new = [s for s in _new_sets(cfg, mgmt_server, before) if s.kind == "full"]
    if not new:
        raise BackupSetProblem(None, ["sp_BackupAllFull_Schedule wrote no full backup set although one was forced"],
                               advice=advice("backup_set_not_written"))
    return new[-1]


def take_log_backup_set(cfg: GroupConfig, mgmt_server: SqlServer) -> BackupSet:
    """One marked log backup set: the same mark in every database (biztalk-dr.md section 3)."""
    before = _newest_set_id(cfg, mgmt_server)
    mgmt_server.run(tsql.exec_procedure(_proc(cfg, "sp_MarkAll"), {
        "MarkName": cfg.backup.mark_prefix,
        "BackupPath": cfg.sites.primary.backup_path,
        "UseLocalTime": cfg.backup.use_local_time,
    }), kind=CallKind.BACKUP)
    new = [s for s in _new_sets(cfg, mgmt_server, before) if s.kind == "log"]
    if not new:
        raise BackupSetProblem(None, ["sp_MarkAll wrote no log backup set"],
                               advice=advice("backup_set_not_written"))
    return new[-1]


def worker_file(cfg: GroupConfig, row: HistoryRow) -> Path:
    """Where the Airflow worker finds the file of a history row (inside sites.primary.backup_dir)."""
    return worker_path_for(row.sql_path, sql_folder=cfg.sites.primary.backup_path,
                           worker_folder=cfg.sites.primary.backup_dir)


def verify_set(cfg: GroupConfig, bset: BackupSet) -> list[str]:
    """Complete, exactly the group's databases, and every file where the history says (as the worker
    sees it). Returns what was verified; raises BackupSetProblem with every problem."""

    def exists(row: HistoryRow) -> bool:
        try:
            return worker_file(cfg, row).is_file()
        except PathOutsideRootError:
            return False

    problems = set_problems(bset, [d.name for d in cfg.databases], file_exists=exists)
    for row in bset.rows:
        try:
            worker_file(cfg, row)
        except PathOutsideRootError:
            problems.append(f"set {bset.set_id}: {row.sql_path} is not in the configured backup folder "
                            f"{cfg.sites.primary.backup_path!r}: was @BackupPath changed outside biztalk-dr?")
    if problems:
        raise BackupSetProblem(bset.set_id, problems)
    return [f"set {bset.set_id} {bset.kind} {bset.mark_name}: complete, {len(bset.rows)} databases, all files present"]


_HEADER_TYPES = {"db": 1, "lg": 2}  # RESTORE HEADERONLY BackupType: 1 database, 2 log


def read_back_file(cfg: GroupConfig, row: HistoryRow) -> str:
    """One database's file read back by the SQL Server that wrote it: readable to the end (RESTORE
    VERIFYONLY) and holding what the history says (HEADERONLY: database and type). SQL Server can report
    success for a backup whose file a network share damaged (biztalk-dr.md section 2); only reading it
    back shows that."""
    by_server = {inst.server_name.lower(): inst.conn_id for inst in cfg.sites.primary.instances.values()}
    conn_id = by_server.get(row.server_name.lower())
    if conn_id is None:
        raise BackupSetProblem(row.backup_set_id, [f"{row.database_name}: written by {row.server_name}, which is not a "
                                            "primary instance of the config"])
    with SqlServer(conn_id) as server:
        try:
            headers = server.query(tsql.restore_headeronly(row.sql_path))
            server.run(tsql.restore_verifyonly(row.sql_path), kind=CallKind.RESTORE)
        except SqlServerError as exc:
            raise BackupSetProblem(row.backup_set_id, [f"{row.database_name}: {row.sql_path} cannot be read back: {exc}"],
                                   number=exc.number) from exc
    newest = headers[-1] if headers else {}
    if str(newest.get("DatabaseName", "")).lower() != row.database_name.lower() \
            or newest.get("BackupType") != _HEADER_TYPES[row.backup_type]:
        raise BackupSetProblem(row.backup_set_id, [
            f"{row.database_name}: {row.sql_path} holds a backup of {newest.get('DatabaseName')!r} (type "
            f"{newest.get('BackupType')}), not the {row.backup_type} backup adm_BackupHistory records"])
    on_worker = _read_on_worker(cfg, row, newest)
    return (f"{row.database_name}: {row.sql_path} read back by {row.server_name} (RESTORE VERIFYONLY) and by the "
            f"worker from {on_worker.path} (LSN {on_worker.first_lsn} to {on_worker.last_lsn})")


def _read_on_worker(cfg: GroupConfig, row: HistoryRow, server_header: dict[str, Any]) -> BackupSetHeader:
    """The same file read by the worker, without SQL Server: the copy the worker (and log shipping) sees
    must be the one SQL Server wrote, with the LSNs SQL Server reports."""
    path = worker_file(cfg, row)
    try:
        header = read_backup_file(path)[-1]
    except BackupFileError as exc:
        raise BackupSetProblem(row.backup_set_id, [f"{row.database_name}: the worker cannot read {exc}"]) from exc
    expected = ("FULL" if row.backup_type == "db" else "LOG", int(server_header.get("FirstLSN") or 0),
                int(server_header.get("LastLSN") or 0))
    if header.database_name.lower() != row.database_name.lower() \
            or (header.backup_type, header.first_lsn, header.last_lsn) != expected:
        raise BackupSetProblem(row.backup_set_id, [
            f"{row.database_name}: {path} as the worker reads it holds {header.backup_type} {header.database_name} "
            f"LSN {header.first_lsn}-{header.last_lsn}, not what {row.server_name} reports ({expected[0]} "
            f"{row.database_name} LSN {expected[1]}-{expected[2]}): is the worker's backup_dir the same share?"])
    return header


def has_complete_full_set(cfg: GroupConfig, mgmt_server: SqlServer) -> bool:
    """Whether a log backup has a chain to continue (without a full, SQL Server refuses it: 4214)."""
    return newest_complete_full(read_sets(cfg, mgmt_server, limit=5000)) is not None


def request_full_backup(cfg: GroupConfig, mgmt_server: SqlServer) -> None:
    """After a partial set or a backup error the chain is broken until the next full set (section 2)."""
    mgmt_server.run(tsql.exec_procedure(_proc(cfg, "sp_ForceFullBackup")))


def delete_history(cfg: GroupConfig, mgmt_server: SqlServer) -> int:
    """History rows only: BizTalk's procedure never deletes files (retention does, chain-aware). Returns the days kept."""
    mgmt_server.run(tsql.exec_procedure(_proc(cfg, "sp_DeleteBackupHistory"),
                                        {"DaysToKeep": cfg.retention.history_days}))
    return cfg.retention.history_days


def history_clock_now(cfg: GroupConfig, mgmt_server: SqlServer) -> dt.datetime:
    """``now`` in the clock BizTalk writes BackupDateTime with (UTC unless @UseLocalTime = 1)."""
    [row] = mgmt_server.query(tsql.clock_now(local_time=cfg.backup.use_local_time))
    return row["now"]


def primary_servers(cfg: GroupConfig) -> dict[str, SqlServer]:
    """One SqlServer per primary instance key; the management database's instance runs the procedures."""
    return {key: SqlServer(inst.conn_id) for key, inst in cfg.sites.primary.instances.items()}


def management_server(cfg: GroupConfig) -> SqlServer:
    inst = cfg.sites.primary.instances[cfg.instance_of(cfg.management_database, "primary")]
    return SqlServer(inst.conn_id)


_T = TypeVar("_T")


def on_management_server(work: Callable[[GroupConfig, SqlServer], _T]) -> _T:
    """``work`` on the acting configuration (``site_roles``: the new primary after a failover) and a connection to
    its management database, closed after: what a backup DAG's management-database task does."""
    from biztalk_dr.ops.site_roles import load_acting_config

    cfg = load_acting_config()
    with management_server(cfg) as server:
        return work(cfg, server)


def find_set(cfg: GroupConfig, mgmt_server: SqlServer, set_id: int) -> BackupSet:
    for bset in read_sets(cfg, mgmt_server, limit=2000):
        if bset.set_id == set_id:
            return bset
    raise BackupSetProblem(set_id, [f"backup set {set_id} is not in adm_BackupHistory (deleted by history cleanup?)"])


@dataclass
class RetentionResult:
    dry_run: bool = False
    deleted: list[str] = field(default_factory=list)
    would_delete: list[str] = field(default_factory=list)
    kept: int = 0
    bytes_freed: int = 0

    @property
    def files(self) -> list[str]:
        """The files deleted, or in a dry run the files that would be."""
        return self.would_delete if self.dry_run else self.deleted

    def summary(self) -> str:
        return (f"{'would delete' if self.dry_run else 'deleted'} {len(self.files)} file(s), "
                f"{self.bytes_freed / 1024**2:.1f} MB; kept {self.kept}")

    def as_xcom(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "files": self.files, "kept": self.kept, "bytes": self.bytes_freed}


def retention_dry_run(params: Mapping[str, Any]) -> bool:
    """dr_full_backup's ``retention_dry_run`` switch: only log what retention would delete. A run conf written
    before it had its own name says ``dry_run`` (which elsewhere means "change nothing"); it still counts here."""
    return bool(params["dry_run"] if "dry_run" in params else params["retention_dry_run"])


def apply_retention(cfg: GroupConfig, mgmt_server: SqlServer, *, dry_run: bool,
                    now: dt.datetime | None = None) -> RetentionResult:
    """Delete, from the primary's backup folder, the files the chain-aware plan allows; log every decision."""
    from biztalk_dr.domain.retention import plan_retention
    from biztalk_dr.ops.manifest import is_shipped_and_verified, was_retired

    sets = read_sets(cfg, mgmt_server, limit=100_000)
    clock = now or history_clock_now(cfg, mgmt_server)
    landing = cfg.sites.standby.landing_dir
    result = RetentionResult(dry_run=dry_run)
    for decision in plan_retention(sets, now=clock, keep_days=cfg.retention.file_days,
                                   # or shipped, verified and since deleted by the standby's own retention
                                   shipped_and_verified=lambda r: is_shipped_and_verified(landing, r.base_name)
                                   or was_retired(landing, r.base_name)):
        if not decision.delete:
            result.kept += 1
            log.debug("%s", decision)
            continue
        try:
            path = worker_file(cfg, decision.row)
        except PathOutsideRootError as exc:
            log.warning("not deleting %s: %s", decision.row.sql_path, exc)
            continue
        if not path.exists():
            continue  # already gone: nothing to free, nothing to report
        size = path.stat().st_size
        if dry_run:
            result.would_delete.append(str(path))
            log.info("dry run: would %s", decision)
        else:
            path.unlink()
            result.deleted.append(str(path))
            log.info("%s", decision)
        result.bytes_freed += size
    return result


@contextmanager
def full_backup_requested_on_failure(cfg: GroupConfig, mgmt_server: SqlServer | None = None) -> Iterator[None]:
    """A bad set, or an error while taking one, breaks the chain until the next full set (biztalk-dr.md
    section 2): request the full backup before the error goes on, so clearing the task or the next scheduled
    run takes the whole set again. The rule of every backup DAG, here once. ``mgmt_server``: the connection
    the set is taken on (else one is opened for the request)."""
    try:
        yield
    except Exception as exc:
        if mgmt_server is not None:
            request_full_backup(cfg, mgmt_server)
        else:
            with management_server(cfg) as server:
                request_full_backup(cfg, server)
        if isinstance(exc, BackupSetProblem) and not exc.advice:
            exc.advice = advice("backup_set_bad")  # true now: the full backup was requested
        raise


def check_new_set(cfg: GroupConfig, set_id: int) -> BackupSet:
    """The set-level checks of a set just taken (complete, exactly the group's databases, files present)."""
    with full_backup_requested_on_failure(cfg):
        with management_server(cfg) as server:
            bset = find_set(cfg, server, set_id)
        for line in verify_set(cfg, bset):
            log.info("%s", line)
    return bset


def read_back_new_file(cfg: GroupConfig, set_id: int, database: str) -> str:
    """``read_back_file`` for one database of a set just taken."""
    with full_backup_requested_on_failure(cfg):
        with management_server(cfg) as server:
            row = find_set(cfg, server, set_id).row_for(database)
        if row is None:
            raise BackupSetProblem(set_id, [f"set {set_id} has no backup of {database}"])
        from biztalk_dr.ops import (
            source_checks,  # issue 15: a file that failed its read-back is never shipped
        )

        landing = cfg.sites.standby.landing_dir
        try:
            line = read_back_file(cfg, row)
        except BackupSetProblem as exc:
            source_checks.record_read_back_failure(landing, row.base_name, str(exc))
            raise
        source_checks.clear_read_back_failure(landing, row.base_name)
        log.info("%s", line)
    return line
