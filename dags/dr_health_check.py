"""
# dr_health_check — can biztalk-dr reach every SQL instance of the group?

Run it after changing connections or the group's configuration, and before a drill. For each SQL
instance in the configuration (primary, standby, validation) it connects with the instance's Airflow
connection and reports:

- whether the instance answers, and whether `@@SERVERNAME` is the server the configuration names;
- the state of each of the group's databases there: on the **primary** every database must exist in
  FULL recovery (BizTalk's log backups need it); on the **standby** every seeded database must be
  RESTORING (ready for the next log); databases not seeded yet are listed as such.

Each instance is its own task, so one unreachable instance shows as one red box.

**check_backup_schedules** finds missed backups from what was actually written: the newest complete
log set must be younger than two log intervals, the newest complete full set younger than its
frequency plus six hours. A paused DAG, a stopped scheduler or runs that fail before writing a set
all show here, where no deadline alert can fire (there is no late run, only no backup).

After a failover (the DR roles record says the standby site is primary) the standby site's instances are
checked as the primary, and there is no standby to check until the old primary is re-seeded as one; while
`dr_failover` holds the backup schedule, check_backup_schedules says so, and alerts once the hold is older than
two log intervals (an abandoned failover must not silence missed backups: `biztalk-dr resume-backups`).

**check_standby_can_deliver** is `biztalk-dr status` as a task: the mark every standby database can reach now
(from the standby as it is: states, restore history, verified files) and the data-loss window; CRITICAL fails
with the reasons (a database recovered by hand or missing, a quarantined file, an unreadable standby state...),
WARN alerts.

**A new group is not an incident**: until its first full set has had time to be taken, shipped and restored
(`rpo.first_full_set_grace_minutes`, 6 h by default, from when biztalk-dr first saw the group),
check_backup_schedules and check_standby_can_deliver skip with "waiting for the first full set" and what is
missing; past the grace with still nothing there, they fail and alert as usual.

**check_group_file** fails while the group's configuration file does not validate (the DAGs then run on its last
valid version): each problem with its file:line, alerted through the channels that do not depend on that file
(`BIZTALK_DR_ALERT_CONN_ID`, the last valid version's targets, the task log), until the file is fixed
(`biztalk-dr config check FILE` shows the same lines).

The task logs have the details; nothing is changed on any server. Every failure alerts.
"""

from __future__ import annotations

from airflow.sdk import task

from biztalk_dr.edge.alerts import DrAlertNotifier
from biztalk_dr.edge.groups import build_group_dags
from biztalk_dr.edge.task_skips import skip_when_shipping_stood_down, skip_while_first_full_set_pending
from biztalk_dr.ops.config_files import load_config
from biztalk_dr.ops.site_roles import load_acting_config


def dr_health_check():
    @task
    def list_instances() -> list[dict]:
        """Every SQL instance named in the group's configuration."""
        from dataclasses import asdict

        from biztalk_dr.ops.health import instance_targets

        return [asdict(t) for t in instance_targets(load_acting_config())]

    @task(map_index_template="{{ task.op_kwargs['target']['site'] }} {{ task.op_kwargs['target']['conn_id'] }}")
    def check_instance(target: dict) -> str:
        """Connect and compare what the instance says with the configuration; fails on any problem."""
        from biztalk_dr.ops import health
        from biztalk_dr.ops.sqlserver import SqlServer

        target["databases"] = tuple(target["databases"])
        result = health.check_instance(health.InstanceTarget(**target), SqlServer(target["conn_id"]))
        print(result.summary())
        if result.problems:
            raise RuntimeError(result.summary())
        return result.summary()

    @task
    def check_backup_schedules() -> list[str]:
        """The newest complete full and log backup sets in adm_BackupHistory are as recent as their schedules
        promise; fails naming the late kind, its newest set and its age. While a failover holds the backup
        schedule, says so instead."""
        from biztalk_dr.ops.health import backup_schedules

        report = backup_schedules(load_acting_config())
        for line in report.lines:
            print(line)
        with skip_while_first_full_set_pending():  # a new group: its first full set is not due yet
            return report.verdict()

    @task(on_failure_callback=DrAlertNotifier())
    def check_standby_can_deliver(**context) -> dict:
        """What the standby can deliver now, from the standby as it is (`biztalk-dr status`): the mark every
        database can reach and the data-loss window. Fails on CRITICAL (a database recovered, missing, a file
        quarantined past its chain...), alerts on WARN, each with the reason. Skipped after a failover."""
        from biztalk_dr.edge.alerts import warning_sender
        from biztalk_dr.ops import shipping_jobs

        cfg = load_config()
        skip_when_shipping_stood_down(cfg)
        with skip_while_first_full_set_pending():
            report = shipping_jobs.check_data_loss_window(cfg, send_warning=warning_sender(cfg, context),
                                                         run=f"{context['ti'].dag_id}/{context['run_id']}")
        print(f"{report['health'].upper()}: {report['data_loss']}")
        return {"health": report["health"], "reasons": report["reasons"]}

    @task
    def check_group_file() -> str:
        """The group's configuration file validates. While it does not, the DAGs run on its last valid version
        and this fails (red, alerted through `BIZTALK_DR_ALERT_CONN_ID`, the last valid targets and the task
        log) with each problem's file:line, every hour until the file is fixed."""
        from biztalk_dr.edge.config_alerts import check_group_file as check

        said = check()
        print(said)
        return said

    check_group_file()
    check_backup_schedules()
    check_standby_can_deliver()
    # expand() does not copy the docstring into doc_md as a plain @task call does
    check_instance.override(doc_md=check_instance.function.__doc__).expand(target=list_instances())


build_group_dags(globals(), "dr_health_check", "health", dr_health_check, schedule="@hourly")
