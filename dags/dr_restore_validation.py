"""
# dr_restore_validation — prove the standby site's backups restore, to the mark, and time it

Scheduled from the configuration (`schedules.restore_validation_cron`, default Sundays 03:00); trigger it by
hand to prove a particular set (`set_id`). Microsoft asks for a tested restore at least monthly; this does it
every week without anyone's time.

1. **plan_validation** — the newest complete log set whose files (and those of its full set) are shipped and
   verified **at the standby site**; every file it restores hashed again against its manifest first (a copy
   that changed since shipping is quarantined — `quarantine/` in the landing folder, with the reason — and
   copied once more from the source, with a warning; if it cannot be, the run stops here saying so); each
   database planned by the restore planner from those shipped copies (a missing copy fails here, naming the
   LSN gap, before anything is restored). Refuses when the
   validation instance lacks free space for the planned restore (with the numbers) or still has validation
   databases of another run.
2. **restore_validation_database** — one box per database: restored under the prefix
   (`sites.validation.database_prefix`), files moved to the validation instance's paths, logs WITH NORECOVERY,
   the last WITH `STOPATMARK = N'<mark>', RECOVERY` — the same mark for every database. Each step timed. A
   file SQL Server finds damaged (3183, 3189, 3203, 3241, 3242) is quarantined and copied once more from the
   source, and the step restored once more; damaged again, the source is: a full backup is requested at the
   source and the alert says so. Never retried as it is.
3. **check_validation_database** — one box per database: `DBCC CHECKDB ... WITH NO_INFOMSGS` clean, ONLINE,
   `restorehistory.stop_at_mark_name` = the mark, and a BizTalk sanity query for its role.
4. **write_validation_report** — Markdown and JSON report (per database: bytes, each step's time, checks; the
   group's restore time, the proved mark and its age), path in the task log. Fails, with a summary in the
   alert, when any database failed; warns when the restore time is over `restore_objective_minutes`.
5. **drop_validation_databases** — teardown: always drops the validation databases, also after a failure.

A new group with nothing provable yet skips the run ("waiting for the first full set", in plan_validation and
the report) for `rpo.first_full_set_grace_minutes`; past that, "nothing shipped" fails and alerts.
"""

from __future__ import annotations

from airflow.sdk import Param, TriggerRule, task

from biztalk_dr.edge.groups import build_group_dags
from biztalk_dr.edge.schedules import cron_timetable
from biztalk_dr.ops.config_files import load_config
from biztalk_dr.ops.site_roles import load_acting_config


def dr_restore_validation():
    @task
    def plan_validation(params: dict, run_id: str, **context) -> list[dict]:
        """Pick the set, hash every file it restores against its manifest (a changed copy is quarantined and
        copied again, with a warning), and plan each database's restore from the standby site's verified copies;
        refuse early on a gap, on leftovers of another run, or on too little free space (with the numbers)."""
        from biztalk_dr.edge.alerts import warning_sender
        from biztalk_dr.edge.task_skips import skip_while_first_full_set_pending
        from biztalk_dr.ops import validation_jobs

        cfg = load_acting_config()  # after a failover: the new primary's history, its files copied again
        with skip_while_first_full_set_pending():  # a new group: nothing shipped to prove yet
            plans = validation_jobs.plan_validation(cfg, run_id, params.get("set_id"),
                                                    send_warning=warning_sender(cfg, context))
        print(f"proving mark {plans[0]['mark']} with {len(plans)} database(s)")
        return plans

    @task(map_index_template="{{ task.op_kwargs['plan']['database'] }}")
    def restore_validation_database(plan: dict, **context) -> dict:
        """Restore this database under the validation prefix to the mark: full (files moved), logs WITH
        NORECOVERY, the last WITH STOPATMARK and RECOVERY. Every step is timed for the report. A file SQL Server
        finds damaged is quarantined, copied again and restored once more (with a warning)."""
        from biztalk_dr.edge.alerts import warning_sender
        from biztalk_dr.ops import validation_jobs

        cfg = load_acting_config()
        return validation_jobs.restore_database(cfg, plan, send_warning=warning_sender(cfg, context))

    @task(map_index_template="{{ task.op_kwargs['restored']['database'] }}")
    def check_validation_database(restored: dict) -> dict:
        """DBCC CHECKDB clean, ONLINE, stopped at the mark (restorehistory), and the role's sanity query."""
        from biztalk_dr.ops import validation_jobs

        return validation_jobs.check_database(load_config(), restored)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def write_validation_report(run_id: str, **context) -> dict:
        """Markdown and JSON report of the run; fails (alert with the summary) when any database failed."""
        from biztalk_dr.edge.alerts import warning_sender
        from biztalk_dr.edge.task_skips import skip_while_first_full_set_pending
        from biztalk_dr.ops import validation_jobs

        cfg = load_config()
        with skip_while_first_full_set_pending():  # a new group: nothing was proved, no report
            result = validation_jobs.write_report(cfg, run_id, send_warning=warning_sender(cfg, context))
        print(f"report: {result['report']}")
        return result

    @task
    def drop_validation_databases() -> list[str]:
        """Drop the validation databases of the group (only names with the validation prefix), whatever happened."""
        from biztalk_dr.ops import validation_jobs

        dropped = validation_jobs.drop_validation_databases(load_config())
        print(f"dropped: {', '.join(dropped) or 'nothing to drop'}")
        return dropped

    plans = plan_validation()
    restored = restore_validation_database.override(doc_md=restore_validation_database.function.__doc__).expand(
        plan=plans)
    checked = check_validation_database.override(doc_md=check_validation_database.function.__doc__).expand(
        restored=restored)
    report = write_validation_report()
    cleanup = drop_validation_databases().as_teardown(setups=plans)
    checked >> report >> cleanup


build_group_dags(
    globals(), "dr_restore_validation", "restore-validation", dr_restore_validation,
    schedule=lambda group, cfg: cron_timetable(cfg.schedules.restore_validation_cron, cfg),
    params={"set_id": Param(None, type=["null", "integer"], minimum=1, title="Backup set to prove",
                            description="BackupSetId of a complete log set; empty: the newest shipped one.")},
)
