"""
# dr_health_check — can biztalk-dr reach every SQL instance of the group?

Run it after changing connections or the group's configuration, and before a drill. For each SQL
instance in the configuration (primary, standby, validation) it connects with the instance's Airflow
connection and reports:

- whether the instance answers, and whether `@@SERVERNAME` is the server the configuration names;
- the state of each of the group's databases there: on the **primary** every database must exist in
  FULL recovery (BizTalk's log backups need it); on the **standby** every seeded database must be
  RESTORING (ready for the next log); databases not seeded yet are listed as such.

Each instance is its own task, so one unreachable instance shows as one red box. The task log
has the details; nothing is changed on any server.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import dag, task

from biztalk_dr.config import load_config

CONFIG = load_config()


@dag(
    dag_id="dr_health_check",
    schedule="@hourly",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["biztalk-dr", "health", CONFIG.group.name],
    default_args={"owner": "biztalk-ops", "retries": 0},
)
def dr_health_check():
    @task
    def list_instances() -> list[dict]:
        """Every SQL instance named in the group's configuration."""
        from dataclasses import asdict

        from biztalk_dr.health import instance_targets

        return [asdict(t) for t in instance_targets(load_config())]

    @task(map_index_template="{{ task.op_kwargs['target']['site'] }} {{ task.op_kwargs['target']['conn_id'] }}")
    def check_instance(target: dict) -> str:
        """Connect and compare what the instance says with the configuration; fails on any problem."""
        from biztalk_dr import health
        from biztalk_dr.sqlserver import SqlServer

        target["databases"] = tuple(target["databases"])
        result = health.check_instance(health.InstanceTarget(**target), SqlServer(target["conn_id"]))
        print(result.summary())
        if result.problems:
            raise RuntimeError(result.summary())
        return result.summary()

    # expand() does not copy the docstring into doc_md as a plain @task call does
    check_instance.override(doc_md=check_instance.function.__doc__).expand(target=list_instances())


dr_health_check()
