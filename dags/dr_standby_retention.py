"""
# dr_standby_retention — delete the shipped files at the standby site that nothing needs any more

Hourly. The landing folder (`sites.standby.landing_dir`) gets every backup file of the group; without this
DAG it grows until its disk is full and shipping stops. **apply_standby_retention** decides for every file,
and logs each decision with its reason. A file is kept when any of these holds:

- it is not shipped and verified (no verified manifest: being shipped, quarantined, left by hand);
- the standby still has to restore it (after its database's last restored set, or its database has none yet);
- it is in one of the newest `retention.standby.keep_full_chains` (2) complete full chains — the newest is the
  newest restorable chain a re-seed or a failover uses — or fewer complete full chains than that exist;
- it is in the newest validated chain (the newest passed `dr_restore_validation` report);
- it is younger than `retention.standby.keep_days` (7).

**Dry run by default**: with `retention.standby.delete: false` (the default, so an upgrade deletes nothing)
the task logs what it would delete; set it to true once the decisions read right. A deletion moves the file's
manifest to `.biztalk-dr/retired/` first (nothing trusts the file from then on), then deletes the file; a run
that stopped in between is finished by the next one. It runs under the standby lock, so never while a restore,
a re-seed or a failover reads the landing folder; a busy standby skips the run (the next one goes on).

Quarantined files (`quarantine/`) and the DR records (`.biztalk-dr/`) are never touched. Each run also says how
much space the landing folder has left, and warns when it is less than two full sets of the group need (the
next full set, and one more while the older chain is still kept): a full landing disk stops shipping.
"""

from __future__ import annotations

from airflow.sdk import task

from biztalk_dr.edge.groups import build_group_dags
from biztalk_dr.ops.config_files import load_config


def dr_standby_retention():
    @task
    def apply_standby_retention(**context) -> dict:
        """Every file of the landing folder decided (kept with its reason, or deleted — in a dry run: would be),
        under the standby lock; a deletion interrupted by a crash is finished first. Warns when the landing folder
        has less free space than two full sets of the group need."""
        from airflow.sdk.exceptions import AirflowSkipException

        from biztalk_dr.domain.advice import advice
        from biztalk_dr.domain.errors import StandbyBusy
        from biztalk_dr.edge.alerts import warning_sender
        from biztalk_dr.ops.standby_retention import retain_landing_folder, space_warning

        cfg = load_config()
        try:
            result = retain_landing_folder(cfg)
        except StandbyBusy as busy:
            raise AirflowSkipException(str(busy)) from None
        gone = result.get("deleted", result.get("would_delete", []))
        print(f"{'dry run: would delete' if result['dry_run'] else 'deleted'} {len(gone)} file(s), kept "
              f"{result['kept']}" + ("" if result["dry_run"] else f", {result['bytes_freed']} bytes freed")
              + f"; {result['free_bytes'] / 1024**3:.1f} GB free")
        if warning := space_warning(result, cfg.sites.standby.landing_dir):
            warning_sender(cfg, context)(warning, advice("landing_space_low", path=cfg.sites.standby.landing_dir))
        return result

    apply_standby_retention()


build_group_dags(globals(), "dr_standby_retention", "retention", dr_standby_retention, schedule="@hourly")
