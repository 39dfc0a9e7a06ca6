"""Task groups that several DAGs wire the same way, defined once.

``verify_backup_set`` is the second half of both backup DAGs: BizTalk's procedures took a set, now
prove it is usable before anyone relies on it. Each database's file is its own mapped task, so one
damaged file shows as one red box named after its database.
"""

from __future__ import annotations

from airflow.sdk import task, task_group

from biztalk_dr.edge.assets import BACKUP_SETS, backup_sets
from biztalk_dr.edge.groups import current_group
from biztalk_dr.ops.site_roles import load_acting_config

__all__ = ["verify_backup_set"]


@task
def check_set_complete(set_id: int) -> list[dict]:
    """The set is complete (`SetComplete = 1`), holds exactly one backup of every database of the group,
    and every file is in the backup folder where `adm_BackupHistory` says. A bad set requests a full
    backup (`sp_ForceFullBackup`: the chain is broken until the next full set) and fails the run."""
    from biztalk_dr.ops import backup_jobs

    bset = backup_jobs.check_new_set(load_acting_config(), set_id)
    return [{"set_id": set_id, "database": name} for name in bset.databases]


@task(map_index_template="{{ task.op_kwargs['database'] }}")
def read_back_backup_file(set_id: int, database: str) -> dict:
    """The SQL Server that wrote this database's file reads it back to the end (`RESTORE VERIFYONLY`) and
    its header names this database and backup type (`RESTORE HEADERONLY`). SQL Server can report success
    for a file a network share damaged; only reading it back shows that. A bad file requests a full backup
    and fails the run."""
    from biztalk_dr.ops import backup_jobs

    return {"set_id": set_id, "database": database,
            "verified": backup_jobs.read_back_new_file(load_acting_config(), set_id, database)}


@task(outlets=[BACKUP_SETS])  # the group's own Asset in verify_backup_set
def publish_backup_set(read_back: list[dict], *, outlet_events=None) -> dict:
    """Publish the verified set (set id, mark, databases, files) as an event of the backup-sets Asset, which
    starts `dr_log_shipping`."""
    from biztalk_dr.ops import backup_jobs

    [set_id] = {r["set_id"] for r in read_back}
    cfg = load_acting_config()
    with backup_jobs.management_server(cfg) as server:
        event = backup_jobs.find_set(cfg, server, set_id).as_event()
    outlet_events[backup_sets(current_group().key)].extra = event  # this group's Asset (its DAG's id says which)
    return event


@task_group(group_id="verify_backup_set")
def verify_backup_set(set_id):
    """Prove the new set is complete and every file readable, then publish it for log shipping."""
    # expand() does not copy the docstring into doc_md as a plain @task call does
    read_back = read_back_backup_file.override(doc_md=read_back_backup_file.function.__doc__).expand_kwargs(
        check_set_complete(set_id))
    # the outlet is the Asset of the group whose DAG is being built
    return publish_backup_set.override(outlets=[backup_sets(current_group().key)])(read_back)
