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

import datetime as dt

from airflow.sdk import Param, dag, task

from biztalk_dr.alerts import DrAlertNotifier
from biztalk_dr.config import load_config
from biztalk_dr.groups import broken_groups_dag, dag_groups
from biztalk_dr.pools import standby_pool


def dr_standby_reseed():
    @task
    def check_request(params: dict) -> bool:
        """Validate the form before any server is touched: a real run needs the group's name typed exactly."""
        from biztalk_dr.advice import advice
        from biztalk_dr.errors import PreflightError

        cfg = load_config()
        dry_run = bool(params["dry_run"])
        if not dry_run and params["confirm_group"] != cfg.group.name:
            raise PreflightError([f"confirm_group is {params['confirm_group']!r}, not the group's name"],
                                 advice=advice("reseed_confirm_group", group=cfg.group.name))
        return dry_run

    @task(pool=standby_pool(CONFIG))  # one restore at a time on the standby (biztalk_dr.pools)
    def reseed_standby(dry_run: bool) -> dict:
        """Restore the newest shipped and verified full set WITH REPLACE, NORECOVERY on every standby database,
        then every later set but the newest, set by set (or, in a dry run, list those restores)."""
        from biztalk_dr import shipping_jobs

        result = shipping_jobs.reseed_standby(load_config(), dry_run=dry_run)
        for line in result.get("restored", []) or [str(s) for s in result.get("steps", [])]:
            print(line)
        return result

    reseed_standby(check_request())


GROUPS, BROKEN = dag_groups()
for GROUP, CONFIG in GROUPS:  # one dr_standby_reseed per BizTalk group (biztalk_dr.groups), built with its CONFIG
    dag(
        dag_id=GROUP.dag_id("dr_standby_reseed"),
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        doc_md=__doc__,
        tags=["biztalk-dr", "log-shipping", CONFIG.group.name],
        default_args={"owner": "biztalk-ops", "retries": 0, "on_failure_callback": DrAlertNotifier()},
        params={
            "dry_run": Param(True, type="boolean", title="Dry run",
                             description="Show what would be restored, change nothing."),
            "confirm_group": Param("", type="string", title="Group name (real runs only)",
                                   description="Type the BizTalk group's name to replace the standby databases."),
        },
    )(dr_standby_reseed)()
BROKEN_GROUPS = broken_groups_dag("dr_standby_reseed", BROKEN)  # their file:line is this file's import error
