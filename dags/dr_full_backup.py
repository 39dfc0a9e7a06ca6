"""
# dr_full_backup — full backup set of every BizTalk database, verified, with chain-aware retention

Scheduled from the group's configuration (`schedules.full_backup`, default daily at 01:00 in the
group's time zone). Airflow takes over the *scheduling* of the "Backup BizTalk Server" SQL Agent
job; the backups are still taken by BizTalk's own, supported procedures in the management database.

1. **check_preconditions** — every database ONLINE in FULL recovery; the SQL Agent backup job
   disabled (two schedulers must not both back up); SQL Server sees the backup folder; free space
   in the backup folder above `backup.min_free_space_gb`.
2. **register_custom_databases** — the config's custom databases in `adm_OtherBackupDatabases`.
3. **set_backup_compression** — `sp_SetBackupCompression` per `backup.compression`.
4. **take_full_backup_set** — `sp_ForceFullBackup`, then `sp_BackupAllFull_Schedule`.
5. **verify_backup_set** — `check_set_complete`: complete, one backup per database, every file
   present; `read_back_backup_file`, one box per database: SQL Server reads the file back
   (VERIFYONLY, HEADERONLY); `publish_backup_set`: an Asset event that starts `dr_log_shipping`.
6. **delete_old_history** — `sp_DeleteBackupHistory` (history rows only, never files).
7. **apply_file_retention** — deletes a backup file only when it is older than `retention.file_days`,
   not needed by the newest restorable chain, and has a verified copy at the standby site. Every
   decision is logged with its reason. Trigger with `retention_dry_run` to see what would be deleted (it
   only holds back deletions: the backup set is still taken; a run conf of before, with `dry_run`, means the same).

While `dr_failover` holds the backup schedule, runs are skipped with the reason; after a failover they back
up the standby site, which is the primary then (the DR roles record says so).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, chain, task
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

from biztalk_dr.domain.config import GroupConfig
from biztalk_dr.edge.alerts import missed_deadline_alert
from biztalk_dr.edge.groups import GroupFile, build_group_dags
from biztalk_dr.edge.schedules import full_backup_timetable
from biztalk_dr.edge.task_groups import verify_backup_set
from biztalk_dr.ops.site_roles import backups_held, load_acting_config


def dr_full_backup():
    @task(retries=2, retry_delay=dt.timedelta(minutes=2))
    def check_preconditions() -> list[str]:
        """Databases ONLINE in FULL recovery, SQL Agent backup job disabled, backup folder reachable from SQL
        Server, enough free space. Fails listing every problem with what to do; only a connection problem
        is retried, because the others need a person. Skipped while a failover holds the backup schedule."""
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from biztalk_dr.domain.errors import PreflightError
        from biztalk_dr.ops import backup_jobs

        cfg = load_acting_config()
        if held := backups_held(cfg):
            raise AirflowSkipException(held)
        try:
            report = backup_jobs.preflight(cfg, backup_jobs.primary_servers(cfg))
        except PreflightError as exc:
            raise AirflowFailException(str(exc)) from exc
        print("\n".join(report.lines))
        return report.lines

    @task
    def register_custom_databases() -> list[str]:
        """Make sure BizTalk backs up the config's custom databases (adm_OtherBackupDatabases); idempotent."""
        from biztalk_dr.ops import backup_jobs

        added = backup_jobs.on_management_server(backup_jobs.register_custom_databases)
        print(f"registered: {', '.join(added)}" if added else "all custom databases already registered")
        return added

    @task
    def set_backup_compression() -> bool:
        """`sp_SetBackupCompression` per backup.compression (SSODB is never compressed by BizTalk)."""
        from biztalk_dr.ops import backup_jobs

        return backup_jobs.on_management_server(backup_jobs.set_compression)

    @task
    def take_full_backup_set() -> int:
        """`sp_ForceFullBackup` then `sp_BackupAllFull_Schedule`: a full backup of every database. On an error
        a full backup stays requested, so clearing this task (or the next run) takes the whole set again."""
        from biztalk_dr.ops import backup_jobs

        cfg = load_acting_config()
        with backup_jobs.management_server(cfg) as server, backup_jobs.full_backup_requested_on_failure(cfg, server):
            bset = backup_jobs.take_full_backup_set(cfg, server)
        print(f"full backup set {bset.set_id} ({bset.mark_name}): {len(bset.rows)} database(s)")
        return bset.set_id

    @task
    def delete_old_history() -> int:
        """`sp_DeleteBackupHistory @DaysToKeep` (retention.history_days): rows only, never files."""
        from biztalk_dr.ops import backup_jobs

        return backup_jobs.on_management_server(backup_jobs.delete_history)

    @task
    def apply_file_retention(params=None) -> dict:
        """Delete old backup files that the newest restorable chain does not need and that have a verified
        copy at the standby site; log every decision. With retention_dry_run, only log."""
        from biztalk_dr.ops import backup_jobs

        dry_run = backup_jobs.retention_dry_run(params)
        result = backup_jobs.on_management_server(lambda cfg, server: backup_jobs.apply_retention(cfg, server,
                                                                                                  dry_run=dry_run))
        print(result.summary())
        return result.as_xcom()

    taken = take_full_backup_set()
    chain(check_preconditions(), register_custom_databases(), set_backup_compression(), taken)
    chain(verify_backup_set(taken), delete_old_history(), apply_file_retention())


def _arguments(group: GroupFile, cfg: GroupConfig) -> dict:
    return {
        "params": {"retention_dry_run": Param(cfg.retention.dry_run, type="boolean", title="Retention dry run",
                                              description="Only log which backup files retention would delete (the "
                                                          "backup set is still taken).")},
        "deadline": DeadlineAlert(
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=dt.timedelta(hours=6),
            callback=AsyncCallback(missed_deadline_alert, kwargs={
                "dag_id": group.dag_id("dr_full_backup"), "expectation": "the full backup set within 6 hours of its start"}),
        ),
    }


build_group_dags(globals(), "dr_full_backup", "backup", dr_full_backup, arguments=_arguments,
                 schedule=lambda group, cfg: full_backup_timetable(cfg))
