"""
# dr_log_backup — marked log backup set of every BizTalk database

Every few minutes (config `schedules.log_backup_minutes`, default 15) this DAG does what the
**MarkAndBackupLog** step of the "Backup BizTalk Server" job does: it calls BizTalk's
`sp_MarkAll` in the management database, which writes **one marked transaction with the same mark
name into every database of the group** and then backs up each database's log. That shared mark is
the only point to which all the databases can be restored consistently.

Then **verify_backup_set** proves the new set: complete (`SetComplete = 1`), one backup per database
of the group, every file present in the backup folder, and each database's file read back by SQL
Server (one box per database). A partial set or a backup error is never silent: the task
requests a full backup (`sp_ForceFullBackup`, the chain is broken until the next full set), fails,
and alerts. Each verified set is published as an Asset event; `dr_log_shipping` ships it.

Runs never overlap and never catch up: a missed interval is not taken afterwards (the next set
covers it). An alert is sent if a run has not finished within two intervals.

While `dr_failover` holds the backup schedule, runs are skipped with the reason; after a failover they back
up the standby site, which is the primary then (the DR roles record says so).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import task
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

from biztalk_dr.domain.config import GroupConfig
from biztalk_dr.edge.alerts import missed_deadline_alert
from biztalk_dr.edge.groups import GroupFile, build_group_dags
from biztalk_dr.edge.schedules import every_minutes_timetable
from biztalk_dr.edge.task_groups import verify_backup_set
from biztalk_dr.ops.site_roles import load_acting_config


def dr_log_backup():
    @task
    def take_log_backup_set() -> int:
        """Call `sp_MarkAll` (same mark in every database, then a log backup of each). On any error a full
        backup is requested before the task fails, because the log chain may be broken. Skipped, with a full
        backup requested, while the group has no complete full set yet (a new group)."""
        from airflow.sdk.exceptions import AirflowSkipException

        from biztalk_dr.ops import backup_jobs
        from biztalk_dr.ops.site_roles import backups_held

        cfg = load_acting_config()
        if held := backups_held(cfg):
            raise AirflowSkipException(held)
        with backup_jobs.management_server(cfg) as server:
            if not backup_jobs.has_complete_full_set(cfg, server):
                backup_jobs.request_full_backup(cfg, server)
                raise AirflowSkipException("no complete full backup set yet: a log backup cannot start a chain "
                                           "(SQL Server error 4214); a full backup has been requested and the next "
                                           "dr_full_backup run takes it")
            with backup_jobs.full_backup_requested_on_failure(cfg, server):
                bset = backup_jobs.take_log_backup_set(cfg, server)
        print(f"log backup set {bset.set_id} with mark {bset.mark_name}: {len(bset.rows)} database(s)")
        return bset.set_id

    verify_backup_set(take_log_backup_set())


def _arguments(group: GroupFile, cfg: GroupConfig) -> dict:
    interval = cfg.schedules.log_backup_minutes
    return {"deadline": DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=dt.timedelta(minutes=2 * interval),
        callback=AsyncCallback(missed_deadline_alert, kwargs={
            "dag_id": group.dag_id("dr_log_backup"), "expectation": f"a log backup set every {interval} minutes"}),
    )}


build_group_dags(globals(), "dr_log_backup", "backup", dr_log_backup, arguments=_arguments,
                 schedule=lambda group, cfg: every_minutes_timetable(cfg.schedules.log_backup_minutes, cfg))
