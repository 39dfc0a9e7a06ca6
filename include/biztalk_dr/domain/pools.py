"""The Airflow pools biztalk-dr's tasks run in, defined once.

SQL Server refuses two restores of one database at once (error 3101, exclusive access could not be obtained)
and a restore sequence interleaved with another one breaks (4305, 4326). The tasks that RESTORE on the standby
(log shipping's set-by-set restore, the re-seed, the failover's restore to the mark) therefore share one pool
per standby instance with ONE slot: the scheduler, not luck, keeps them apart, whichever Celery worker on
whichever machine picks them up; the standby state's file lock (``standby_state.locked_state``) stays as the
second line of defence (a task outside the pool fails fast with StandbyBusy instead of corrupting anything).

A task waits in the pool (state ``scheduled``) instead of failing while another one restores.

Airflow does not schedule a task whose pool does not exist: the pools are created when Airflow is set up,
by ``biztalk-dr pools --airflow-json`` piped into ``airflow pools import`` (make run, make run-celery and
docker-compose's airflow-init do it), and a later run of the same command updates them.
"""

from __future__ import annotations

import json
import re

__all__ = ["standby_pool", "pools", "deployment_pools", "airflow_import_json"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _instance_pool(server_name: str) -> str:
    # SQLDR01\BIZTALK -> biztalk_dr_standby_SQLDR01_BIZTALK (a pool name is shown in the UI and in URLs)
    return "biztalk_dr_standby_" + _UNSAFE.sub("_", server_name).strip("_")


def standby_pool(cfg) -> str:  # noqa: ANN001 - GroupConfig
    """The pool of the tasks that restore on the group's standby instance(s). A standby site of several
    instances restores them all in one task (every database advances set by set together), so that task
    takes the pool named after all of them."""
    names = sorted(i.server_name for i in cfg.sites.standby.instances.values())
    return "+".join(_instance_pool(n) for n in names) if len(names) > 1 else _instance_pool(names[0])


def pools(cfg) -> dict[str, dict]:  # noqa: ANN001 - GroupConfig
    """name -> {slots, description} of every pool the group's DAGs use."""
    servers = ", ".join(sorted(i.server_name for i in cfg.sites.standby.instances.values()))
    return {standby_pool(cfg): {
        "slots": 1,
        "description": (f"RESTOREs on the standby {servers} of BizTalk group {cfg.group.name}: one at a time "
                        "(SQL Server refuses concurrent restores of a database, 3101)"),
        "include_deferred": False,
    }}


def deployment_pools(cfgs) -> dict[str, dict]:  # noqa: ANN001 - list of GroupConfig
    """The pools of several groups in one deployment. Each group's restores hold only the pool of its own standby
    instance(s), never one of the primary side's tasks: a long restore of one group cannot starve another
    group's log backups. Groups whose databases live on one standby instance share its pool (one restore at a
    time on that instance: safe, and what the instance's disks can sustain)."""
    merged: dict[str, dict] = {}
    for cfg in cfgs:
        for name, pool in pools(cfg).items():
            if name in merged:
                merged[name] = {**merged[name], "description": f"{merged[name]['description']}; {pool['description']}"}
            else:
                merged[name] = pool
    return merged


def airflow_import_json(cfg) -> str:  # noqa: ANN001 - GroupConfig, or a list of them (several groups)
    """The pools in the format of `airflow pools import FILE`."""
    return json.dumps(deployment_pools(cfg if isinstance(cfg, list) else [cfg]), indent=2)
