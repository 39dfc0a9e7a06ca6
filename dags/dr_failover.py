"""
# dr_failover — the BizTalk recovery runbook as tasks, for the on-call engineer

Trigger it by hand when the primary site is lost (`mode = disaster`) or for a switchover (`mode = planned`).
The form is checked before any server is touched; **`dry_run` is on by default**: every task says what it
would do and changes nothing. A real run needs the group's name typed in `confirm_group`.

1. **assess** — standby reachable; every standby database classified (RESTORING at which set and LSN, ONLINE
   at the mark or without it, missing, another state); the target mark (default: the newest complete set
   shipped and verified at the standby) reachable by every database from verified files — each database's
   logs planned by the restore planner from where it stands (redo point and recovery branch), so an LSN gap or
   a log of another branch is found here — or the run is refused with nothing changed; the data loss in minutes; whether the source answers. A database ONLINE
   without the mark (recovered by hand) refuses the run: re-seed, or — only if you accept it is NOT recovered
   with the others — name it in `leave_out` (the plan, the approval and the timeline then say so loudly). Then
   **approve_failover**: a person reads the plan, each database's state in it, and approves (a timeout or a
   rejection stops here, nothing changed; who rejected and when is in the timeline).
2. **stop_source** — the backup schedule held (the backup DAGs skip); BizTalk stopped on each source server
   (one box per server); no session left on the source's databases; in a planned switchover one **final
   marked log set**, verified and shipped: its mark becomes the target and nothing is lost. In a disaster,
   whatever of the source is reachable, and no final set.
3. **recover_databases** — the standby assessed again (it may have changed since the approval); every
   remaining log WITH NORECOVERY, every file hashed against its manifest first; every last file hashed and the
   standby assessed once more right before the first `WITH RECOVERY` (any database that cannot reach the mark
   stops the step with nothing recovered); then every database's last log
   `WITH STOPATMARK = N'<mark>', RECOVERY` — the same mark for all; then, one box per database, ONLINE and
   `restorehistory.stop_at_mark_name` checked, and orphaned users (SQL logins with another SID on this
   instance) mapped back to their logins.
4. **repoint_biztalk** — `SampleUpdateInfo.xml` generated from the configuration; `UpdateDatabase.vbs` on one
   standby BizTalk server, `UpdateRegistry.vbs` on each, the SSO master secret restored, the services started
   (one box per server). Through WinRM where the configuration gives a server a WinRM connection; otherwise
   each box shows the exact commands for its server and waits for the operator to approve when done.
5. **enable_processing** — **confirm_processing_enabled**: the BizTalk console checklist (reconnect to the
   group, enable receive locations and send ports), confirmed by the operator.
6. **protect_new_primary** — the DR roles record at the standby site says the standby is primary now (the
   old primary is to be re-seeded as the new standby); a full backup set of the new primary, once
   BizTalkMgmtDb names the new servers; the backup schedule resumed, now against the new primary.
7. **write_failover_timeline** — each step's start and end, who approved what and when, and the measured
   recovery time, as Markdown and JSON beside `SampleUpdateInfo.xml` (`.biztalk-dr/failover/<run>/`).

Every task first checks whether its effect is already there (a database already ONLINE at the mark, the roles
already recorded, the new primary's full set taken) and then only says so: clear any task and run it again,
or trigger the DAG again with the same form.
"""

from __future__ import annotations

from airflow.sdk import Param, TriggerRule, task

from biztalk_dr.domain.pools import standby_pool
from biztalk_dr.domain.windows_steps import servers_of
from biztalk_dr.edge import failover_phases as phases
from biztalk_dr.edge.groups import build_group_dags

# the group whose DAG is being built, and its servers: build_group_dags sets them for each group in turn
CONFIG = SOURCE_SERVERS = STANDBY_SERVERS = None


def dr_failover():
    @task(trigger_rule=TriggerRule.ONE_FAILED, on_failure_callback=[])  # the failed step has alerted already
    def fail_if_any_step_failed() -> None:
        """Marks the run failed when any step failed or was refused (the timeline is written anyway)."""
        raise RuntimeError("a step of this failover failed or was refused: see the red task for its reason")

    approved, approval = phases.assess_phase()
    held, final, shipped = phases.stop_source_phase(approved, SOURCE_SERVERS)
    approval >> held  # nothing is stopped or changed before a person approves
    plan, verified = phases.recover_phase(approved, final, standby_pool(CONFIG))
    generated, started = phases.repoint_phase(STANDBY_SERVERS)
    confirmed = phases.enable_phase()
    roles, resumed = phases.protect_phase(plan)
    timeline = phases.write_failover_timeline(SOURCE_SERVERS, STANDBY_SERVERS)
    shipped >> plan
    verified >> generated  # the runbook's order: the databases first (verified, users fixed), then BizTalk
    started >> confirmed >> roles
    resumed >> timeline
    [resumed, timeline] >> fail_if_any_step_failed()


build_group_dags(
    globals(), "dr_failover", "failover", dr_failover,
    # the first standby server runs UpdateDatabase.vbs, holds the master secret
    values=lambda group, cfg: {"SOURCE_SERVERS": servers_of(cfg, "primary"), "STANDBY_SERVERS": servers_of(cfg, "standby")},
    arguments=lambda group, cfg: {"params": {
        "mode": Param("disaster", enum=["disaster", "planned"], title="Mode",
                      description="disaster: the primary site is lost. planned: a switchover, the source answers."),
        "target_mark": Param("", type="string", title="Target mark",
                             description="Empty: the newest complete set shipped and verified at the standby."),
        "dry_run": Param(True, type="boolean", title="Dry run", description="Say what would be done; change nothing."),
        "confirm_group": Param("", type="string", title="Group name (real runs only)",
                               description=f"Type {cfg.group.name} to run a real failover."),
        "leave_out": Param("", type="string", title="Leave out (databases NOT recovered)",
                           description="Empty: every database is recovered, or the run is refused. Only if you "
                                       "accept that a database stays as it is on the standby (e.g. recovered by "
                                       "hand), name it here (comma-separated); never the management database."),
    }},
    schedule=None,
    access_control={"DR Operator": {"DAGs": {"can_read", "can_edit"}, "DAG Runs": {"can_read", "can_create"}}},
)
