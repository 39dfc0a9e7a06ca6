"""
# dr_standby_reseed — rebuild the standby databases from the newest complete full set

Trigger it when `dr_log_shipping` says the standby cannot continue: a gap in the log chain (4305), a
standby database recovered by hand (3117), standby databases biztalk-dr has no record of, or after a
partial set forced a new full backup.

It restores the newest complete full set that is shipped and verified at the standby site on every
standby database **WITH REPLACE, NORECOVERY** (files moved to the standby's `data_path`/`log_path`),
then every later set except the newest, set by set — the same end state log shipping keeps. It
refuses when any file of that full set is not shipped and verified, and while log shipping holds the
standby. `dry_run` (the default) shows the plan and changes nothing; a real run asks for the group's
name in `confirm_group`.
"""

from __future__ import annotations

from airflow.sdk import Param, task

from biztalk_dr.domain.pools import standby_pool
from biztalk_dr.edge.groups import build_group_dags
from biztalk_dr.ops.config_files import load_config

CONFIG = None  # the group whose DAG is being built: build_group_dags sets it for each group in turn


def dr_standby_reseed():
    @task
    def check_request(params: dict) -> bool:
        """Validate the form before any server is touched: a real run needs the group's name typed exactly."""
        from biztalk_dr.domain.advice import advice
        from biztalk_dr.domain.confirmation import confirmation_problem, real_run
        from biztalk_dr.domain.errors import PreflightError

        cfg = load_config()
        if unconfirmed := confirmation_problem(params, cfg, "re-seed"):
            raise PreflightError([unconfirmed], advice=advice("reseed_confirm_group", group=cfg.group.name))
        return not real_run(params)

    @task(pool=standby_pool(CONFIG))  # one restore at a time on the standby (biztalk_dr.domain.pools)
    def reseed_standby(dry_run: bool) -> dict:
        """Restore the newest shipped and verified full set WITH REPLACE, NORECOVERY on every standby database,
        then every later set but the newest, set by set (or, in a dry run, list those restores)."""
        from biztalk_dr.ops import shipping_jobs

        result = shipping_jobs.reseed_standby(load_config(), dry_run=dry_run)
        for line in result.get("restored", []) or [str(s) for s in result.get("steps", [])]:
            print(line)
        return result

    reseed_standby(check_request())


build_group_dags(
    globals(), "dr_standby_reseed", "log-shipping", dr_standby_reseed,
    schedule=None,
    params={
        "dry_run": Param(True, type="boolean", title="Dry run", description="Show what would be restored, change nothing."),
        "confirm_group": Param("", type="string", title="Group name (real runs only)",
                               description="Type the BizTalk group's name to replace the standby databases."),
    },
)
