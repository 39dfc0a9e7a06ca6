"""Alerts while the group's configuration file is broken (the DAGs then run on its last valid version).

A listener, so every biztalk-dr DAG run alerts without its DAG file wiring anything: at the start of each
task it asks ``biztalk_dr.edge.config_alerts`` whether the group's file validates, and the first task of a run
alerts with the file's problems (file:line). A listener's failure is logged by Airflow, never fails the task.
"""

from __future__ import annotations

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin


class ConfigWatch:
    @hookimpl
    def on_task_instance_running(self, previous_state, task_instance) -> None:  # noqa: ANN001 - Airflow's hookspec
        from biztalk_dr.edge.config_alerts import on_task_start

        on_task_start(task_instance)


class BizTalkDrConfigWatchPlugin(AirflowPlugin):
    name = "biztalk_dr_config_watch"
    listeners = [ConfigWatch()]
