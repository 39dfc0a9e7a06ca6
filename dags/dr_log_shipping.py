"""
# dr_log_shipping — ship every backup set to the standby site, prove it, restore it WITH NORECOVERY

Runs on every backup set the backup DAGs publish, and every few minutes anyway
(`schedules.log_shipping_minutes`) so that nothing waits on a lost event. Runs never overlap.

1. **find_sets_to_ship** — complete sets from `adm_BackupHistory` on the primary, from the oldest one
   the standby still needs. Partial sets (`SetComplete = 0`) are never shipped; they are reported.
2. **ship_database_files** — one box per database: each file is copied to the landing folder
   (`sites.standby.landing_dir`) under a temporary name with its BLAKE3 hash computed in the same pass (and
   the written file read back and hashed beside it), fsynced, checked at the destination and renamed; then
   read with biztalk-dr's backup-file reader: database, type and LSN range must match msdb on the primary
   and continue the previous log. A manifest beside each file records it. A bad copy is quarantined and
   copied once more; a second failure requests a full backup at the source and alerts. A file whose
   read-back failed when it was taken (`dr_log_backup`/`dr_full_backup`) is never shipped: the full backup
   that failure requested is what the standby waits for. Files already shipped and verified are not copied
   again; one gone from the landing folder is shipped again, with a warning.
3. **restore_standby_set_by_set** — on the standby instance(s), every set except the newest complete
   one, in set order, `WITH NORECOVERY`; all databases advance together. Before each restore the shipped
   file is hashed again against its manifest: a copy that changed, or that SQL Server finds damaged
   (3183, 3189, 3203, 3241, 3242), is quarantined (`quarantine/` in the landing folder, with the reason) and
   copied once more from the source, with a warning; never retried as it is. If the source is damaged too,
   a full backup is requested and the alert says so. A database missing on the standby is seeded from the
   newest shipped full set, its files moved (`WITH MOVE`) to the standby's `data_path`/`log_path`. SQL
   Server errors: 4326 already applied (recorded); 4305 gap and 3117 a database recovered by hand stop and
   ask for `dr_standby_reseed`; 3201 and 3101 are retried, then alerted. The newest complete set is held
   back: failover applies it, to its mark. **When a set after it is partial, or has a file whose read-back
   failed at the source, the last log set before that broken set is held back too**: no later log applies,
   so its mark is the newest one a failover can still reach, and restoring it WITH NORECOVERY would pass it.
4. **check_data_loss_window** — what the standby can deliver now (`biztalk-dr status`: the mark every
   standby database can reach, from the standby as it is — states, restore history, verified files) and
   the data-loss window, written to the standby's status file; alerts on WARN (the window over
   `rpo.warn_minutes`, a quarantined file, a stuck restore...), fails on CRITICAL (over
   `rpo.critical_minutes`, a database recovered by hand or missing, the standby unreachable), with the
   reasons. A new group, nothing restored on the standby yet, skips it with "waiting for the first full
   set" for `rpo.first_full_set_grace_minutes` (then it alerts as usual).

After `dr_failover` has promoted the standby (its roles record), every task here skips with the reason:
shipping into the new primary would destroy it.

State kept at the standby site (it must survive the primary): the shipped files, a manifest beside each,
and `.biztalk-dr/standby-state.json` (the last set restored per database) in the landing folder.
`biztalk-dr status` shows it from a terminal.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, TriggerRule, task

from biztalk_dr.domain.pools import standby_pool
from biztalk_dr.edge.assets import backup_sets, standby_restored
from biztalk_dr.edge.groups import build_group_dags, current_group
from biztalk_dr.edge.schedules import every_minutes_timetable
from biztalk_dr.edge.task_skips import skip_when_shipping_stood_down, skip_while_first_full_set_pending
from biztalk_dr.ops.config_files import load_config

# the group whose DAG is being built, and its Assets: build_group_dags sets them for each group in turn
CONFIG = BACKUP_SETS = STANDBY_RESTORED = None


def dr_log_shipping():
    @task
    def find_sets_to_ship() -> list[dict]:
        """Complete backup sets on the primary that the standby still needs, oldest first; partial sets
        are reported in the log and never shipped. One entry per database for the shipping boxes."""
        from biztalk_dr.ops import shipping_jobs

        skip_when_shipping_stood_down(load_config())  # the standby was promoted by dr_failover
        plan = shipping_jobs.find_sets_to_ship(load_config())
        print(f"sets to ship: {plan['sets'] or 'none'}; partial (never shipped): {plan['partial'] or 'none'}"
              + (f"; {plan['waiting']}" if plan["waiting"] else ""))
        return plan["to_ship"]

    @task(map_index_template="{{ task.op_kwargs['database'] }}")
    def ship_database_files(database: str, set_ids: list[int], **context) -> list[str]:
        """Copy this database's file of each set to the landing folder (BLAKE3 in the same pass, fsync, atomic
        rename, checked at the destination), read it with the backup-file reader (database, type, LSN range as
        msdb says, continuing the previous log) and write its manifest. A bad copy is quarantined and copied
        once more; if that fails too, a full backup is requested at the source and the task fails. A file whose
        read-back failed at the source is never shipped; a file gone from the landing folder is shipped again,
        with a warning."""
        from biztalk_dr.edge.alerts import warning_sender
        from biztalk_dr.ops import shipping_jobs

        cfg = load_config()
        done = shipping_jobs.ship_files_of_database(cfg, database, set_ids, send_warning=warning_sender(cfg, context))
        print("\n".join(done))
        return done

    @task(trigger_rule=TriggerRule.ALL_DONE, outlets=[STANDBY_RESTORED], pool=standby_pool(CONFIG))
    def restore_standby_set_by_set(*, outlet_events=None, **context) -> dict:
        """Restore, set by set, every shipped and verified set except the newest complete one on the standby
        WITH NORECOVERY (seeding missing databases WITH MOVE), each file hashed against its manifest first.
        Runs even when a shipping box failed: sets fully shipped before it are still applied. Stops at the first
        restore that fails, with the reason; a damaged file is quarantined and copied again (with a warning)."""
        from biztalk_dr.edge.alerts import warning_sender
        from biztalk_dr.ops import shipping_jobs

        cfg = load_config()
        skip_when_shipping_stood_down(cfg)
        result = shipping_jobs.restore_standby(cfg, send_warning=warning_sender(cfg, context))
        print("\n".join(result["restored"]) or "nothing new to restore")
        print("\n".join(result["notes"]))
        # this group's Asset by its DAG's id, not the module's STANDBY_RESTORED: a process that built every group's DAGs
        # (dag.test(), a DagBag) holds the last group's there
        outlet_events[standby_restored(current_group().key)].extra = {"positions": result["positions"]}
        return result

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def check_data_loss_window(**context) -> dict:
        """The data-loss window (now − the newest set shipped and verified: what a failover could recover to)
        and the restore lag, written to the standby's status file. Over `rpo.warn_minutes` it alerts; over
        `rpo.critical_minutes` it fails and alerts."""
        from biztalk_dr.edge.alerts import warning_sender
        from biztalk_dr.ops import shipping_jobs

        cfg = load_config()
        skip_when_shipping_stood_down(cfg)
        with skip_while_first_full_set_pending():  # a new group: its first full set is on its way
            report = shipping_jobs.check_data_loss_window(cfg, send_warning=warning_sender(cfg, context),
                                                         run=f"{context['ti'].dag_id}/{context['run_id']}")
        print(f"{report['health'].upper()}: {report['data_loss']}")
        return report

    @task(trigger_rule=TriggerRule.ONE_FAILED, on_failure_callback=[])  # the failed step has alerted already
    def fail_if_any_step_failed() -> None:
        """Marks the run failed when any step above failed (the steps after a failed one still run, so that
        what can be shipped and restored is); skipped when all went well."""
        raise RuntimeError("a step of this run failed: see the red task above for its alert and reason")

    shipped = ship_database_files.override(doc_md=ship_database_files.function.__doc__).expand_kwargs(
        find_sets_to_ship())
    restored = restore_standby_set_by_set()
    checked = check_data_loss_window()
    shipped >> restored >> checked
    [shipped, restored, checked] >> fail_if_any_step_failed()


build_group_dags(
    globals(), "dr_log_shipping", "log-shipping", dr_log_shipping,
    # the group's own Assets: the schedule listens to the first, restore_standby updates the second
    values=lambda group, cfg: {"BACKUP_SETS": backup_sets(group.key), "STANDBY_RESTORED": standby_restored(group.key)},
    schedule=lambda group, cfg: AssetOrTimeSchedule(
        timetable=every_minutes_timetable(cfg.schedules.log_shipping_minutes, cfg), assets=backup_sets(group.key)),
)
