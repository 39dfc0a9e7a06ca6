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

import datetime as dt

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param, TriggerRule, dag, task, task_group

from biztalk_dr.alerts import DrAlertNotifier
from biztalk_dr.config import load_config
from biztalk_dr.failover_approval import RecordedApprovalOperator
from biztalk_dr.groups import broken_groups_dag, dag_groups
from biztalk_dr.pools import standby_pool
from biztalk_dr.windows_step_operator import ANSWER_WITHIN, WindowsStepOperator
from biztalk_dr.windows_steps import servers_of

# every human step's form says DRY RUN first in a dry run (the approval's body does too: its summary starts with it)
DRY_RUN_PREFIX = "{{ 'DRY RUN: ' if params.dry_run else '' }}"
_UPDATE_INFO = "{{ ti.xcom_pull(task_ids='repoint_biztalk.generate_update_info')['server_path'] }}"


def dr_failover():
    @task_group(group_id="assess")
    def assess_phase():
        @task
        def check_request(params: dict) -> dict:
            """The trigger form, validated before any server is touched: mode, mark, dry run, confirmation."""
            from dataclasses import asdict

            from biztalk_dr.failover_request import parse_failover_request

            request = parse_failover_request(params, load_config())
            print(request.describe())
            return asdict(request)

        @task
        def assess_standby(request: dict, run_id: str) -> dict:
            """Standby reachable; every database RESTORING; the mark reachable by every database from verified
            files; the data loss; the source reachable or not. Stops, changing nothing, on any problem."""
            from biztalk_dr import failover_jobs
            from biztalk_dr.failover_request import FailoverRequest

            return failover_jobs.run_step(
                run_id, "assess.assess_standby",
                lambda cfg: failover_jobs.assess(cfg, FailoverRequest(**request)))

        plan = assess_standby(check_request())
        approve_failover = RecordedApprovalOperator(
            task_id="approve_failover", subject=DRY_RUN_PREFIX + "Approve the BizTalk failover?",
            body="{{ ti.xcom_pull(task_ids='assess.assess_standby')['summary'] }}",
            defaults="Reject", response_timeout=ANSWER_WITHIN, fail_on_reject=True,
            doc_md="A person reads the plan (mark, data loss, source, each standby database's state, any database "
                   "left out) and approves. No answer means no; a rejection is recorded (who, when) in the timeline.")
        plan >> approve_failover
        return plan, approve_failover

    @task_group(group_id="stop_source")
    def stop_source_phase(plan):
        @task
        def hold_backup_schedule(plan: dict, run_id: str) -> str:
            """dr_full_backup and dr_log_backup skip their runs from now on (the hold is in the DR roles record
            at the standby site) until protect_new_primary resumes them against the new primary."""
            from biztalk_dr import failover_jobs

            return failover_jobs.run_step(
                run_id, "stop_source.hold_backup_schedule",
                lambda cfg: failover_jobs.hold_backup_schedule(cfg, run_id, plan["dry_run"]))

        stop_biztalk = WindowsStepOperator.partial(
            task_id="stop_biztalk_processing", step="stop_biztalk", map_index_template="{{ task.server }}",
            doc_md="On each BizTalk server of the source site: receive locations disabled, host instances, the Rule "
                   "Engine Update Service and ENTSSO stopped and disabled. Through WinRM when the server has a WinRM "
                   "connection, otherwise a person does it and approves.").expand(server=SOURCE_SERVERS)

        @task
        def check_no_biztalk_sessions(plan: dict, run_id: str) -> str:
            """No session but this one uses a database of the group on the source: nothing writes after the
            final mark. Fails naming each session (login, host, program) while one remains."""
            from biztalk_dr import failover_jobs

            return failover_jobs.run_step(
                run_id, "stop_source.check_no_biztalk_sessions",
                lambda cfg: failover_jobs.check_no_biztalk_sessions(cfg, plan))

        @task
        def take_final_log_set(plan: dict, run_id: str) -> dict:
            """Planned switchover: one last marked log set (`sp_MarkAll`) now that BizTalk is stopped, verified
            like every set; its mark becomes the target, so nothing is lost. Disaster: none (says so)."""
            from biztalk_dr import failover_jobs

            return failover_jobs.run_step(
                run_id, "stop_source.take_final_log_set",
                lambda cfg: failover_jobs.take_final_log_set(cfg, plan, run_id))

        @task
        def ship_final_log_set(final: dict, run_id: str) -> list[str]:
            """Every set not yet at the standby, the final one included, shipped and verified as dr_log_shipping
            does it."""
            from biztalk_dr import failover_jobs

            return failover_jobs.run_step(
                run_id, "stop_source.ship_final_log_set",
                lambda cfg: failover_jobs.ship_final_log_set(cfg, final))

        hold = hold_backup_schedule(plan)
        sessions = check_no_biztalk_sessions(plan)
        hold >> stop_biztalk >> sessions
        final = take_final_log_set(plan)
        sessions >> final
        return hold, final, ship_final_log_set(final)

    @task_group(group_id="recover_databases")
    def recover_phase(approved, final):
        @task
        def plan_recovery(approved: dict, final: dict, run_id: str) -> dict:
            """The target: the final log set's mark in a planned switchover, else the approved mark, assessed
            again against the standby as it is now."""
            from biztalk_dr import failover_jobs

            return failover_jobs.run_step(
                run_id, "recover_databases.plan_recovery",
                lambda cfg: failover_jobs.plan_recovery(cfg, approved, final))

        @task(pool=standby_pool(CONFIG))  # one restore at a time on the standby (biztalk_dr.pools)
        def restore_to_mark(plan: dict, run_id: str) -> list[str]:
            """Every remaining log WITH NORECOVERY, then each database's last log WITH STOPATMARK = N'<mark>',
            RECOVERY (the same mark for all). Databases already ONLINE at the mark are left alone."""
            from biztalk_dr import failover_jobs

            failover_jobs.run_step(run_id, "recover_databases.restore_to_mark",
                                   lambda cfg: failover_jobs.recover_databases(cfg, plan))
            return [d.name for d in load_config().databases]

        @task(map_index_template="{{ task.op_kwargs['database'] }}")
        def verify_at_mark(database: str, plan: dict, run_id: str) -> str:
            """This database is ONLINE and stopped at the mark (msdb.restorehistory)."""
            from biztalk_dr import failover_jobs

            return failover_jobs.run_step(run_id, f"recover_databases.verify_at_mark[{database}]",
                                          lambda cfg: failover_jobs.verify_database(cfg, database, plan["mark"],
                                                                                    plan["dry_run"]))

        @task(map_index_template="{{ task.op_kwargs['database'] }}")
        def fix_orphaned_users(database: str, plan: dict, run_id: str) -> list[str]:
            """Users of SQL logins that the new instance knows under another SID mapped to the login of their
            name (ALTER USER ... WITH LOGIN). A user with no such login fails the box, named, with what to do."""
            from biztalk_dr import failover_jobs

            return failover_jobs.run_step(
                run_id, f"recover_databases.fix_orphaned_users[{database}]",
                lambda cfg: failover_jobs.fix_orphaned_users(cfg, database, plan["dry_run"]))

        plan = plan_recovery(approved, final)
        names = restore_to_mark(plan)
        verified = verify_at_mark.override(doc_md=verify_at_mark.function.__doc__).partial(plan=plan).expand(
            database=names)
        fixed = fix_orphaned_users.override(doc_md=fix_orphaned_users.function.__doc__).partial(plan=plan).expand(
            database=names)
        verified >> fixed
        return plan, fixed

    @task_group(group_id="repoint_biztalk")
    def repoint_phase():
        @task
        def generate_update_info(run_id: str) -> dict:
            """SampleUpdateInfo.xml from the configuration (source and destination servers, every database,
            the master MessageBox, custom databases), kept with the run's records."""
            from biztalk_dr import failover_jobs

            return failover_jobs.run_step(
                run_id, "repoint_biztalk.generate_update_info",
                lambda cfg: failover_jobs.write_update_info(cfg, run_id))

        generated = generate_update_info()
        update_database = WindowsStepOperator(
            task_id="update_database", step="update_database", server=STANDBY_SERVERS[0], update_info_path=_UPDATE_INFO,
            doc_md="On one BizTalk server of the standby site: UpdateDatabase.vbs SampleUpdateInfo.xml (the tables "
                   "of BizTalkMgmtDb that name the other databases' servers).")
        update_registry = WindowsStepOperator.partial(
            task_id="update_registry", step="update_registry", update_info_path=_UPDATE_INFO,
            map_index_template="{{ task.server }}",
            doc_md="On every BizTalk server of the standby site: UpdateRegistry.vbs SampleUpdateInfo.xml.",
        ).expand(server=STANDBY_SERVERS)
        restore_sso_secret = WindowsStepOperator(
            task_id="restore_sso_secret", step="restore_sso_secret", server=STANDBY_SERVERS[0],
            doc_md="Always a person: ssoconfig -restoreSecret asks for the secret backup's password, which never "
                   "passes through Airflow.")
        start_services = WindowsStepOperator.partial(
            task_id="start_biztalk_services", step="start_biztalk", map_index_template="{{ task.server }}",
            doc_md="On every BizTalk server of the standby site: ENTSSO, the Rule Engine Update Service and the host "
                   "instances set to Automatic and started; WMI restarted.").expand(server=STANDBY_SERVERS)
        generated >> update_database >> update_registry >> restore_sso_secret >> start_services
        return generated, start_services

    @task_group(group_id="enable_processing")
    def enable_phase():
        return ApprovalOperator(
            task_id="confirm_processing_enabled", subject=DRY_RUN_PREFIX + "Processing enabled in the BizTalk console?",
            body=(DRY_RUN_PREFIX + "In the BizTalk Administration console on the standby site: reconnect to the group (now on the "
                  "standby SQL Server), apply the DR bindings, enable the receive locations, start the send ports "
                  "and orchestrations, check the host instances run. Approve when messages flow."),
            defaults="Reject", response_timeout=ANSWER_WITHIN, fail_on_reject=True,
            doc_md="Only a person can do this in the BizTalk console: the checklist, then approve.")

    @task_group(group_id="protect_new_primary")
    def protect_phase(plan):
        @task
        def record_new_roles(plan: dict, run_id: str) -> dict:
            """The standby site is the primary now, recorded at the standby site; the old primary is to be
            re-seeded as the new standby. Already recorded for this mark: says so and does nothing."""
            from biztalk_dr import failover_jobs

            return failover_jobs.run_step(
                run_id, "protect_new_primary.record_new_roles",
                lambda cfg: failover_jobs.record_new_roles(cfg, plan, plan["dry_run"]))

        @task
        def force_full_backup(plan: dict, run_id: str) -> list[str]:
            """The group is repointed (BizTalkMgmtDb names the new servers), then a full backup set of the new
            primary through BizTalk's procedures into sites.standby.backup_path, verified: its chain starts here."""
            from biztalk_dr import failover_jobs

            return failover_jobs.run_step(
                run_id, "protect_new_primary.force_full_backup",
                lambda cfg: failover_jobs.force_full_backup_on_new_primary(cfg, plan["dry_run"]))

        @task
        def resume_backup_schedule(plan: dict, run_id: str) -> str:
            """dr_full_backup and dr_log_backup run again, against the new primary."""
            from biztalk_dr import failover_jobs

            return failover_jobs.run_step(
                run_id, "protect_new_primary.resume_backup_schedule",
                lambda cfg: failover_jobs.resume_backup_schedule(cfg, plan["dry_run"]))

        roles = record_new_roles(plan)
        full = force_full_backup(plan)
        resumed = resume_backup_schedule(plan)
        roles >> full >> resumed
        return roles, resumed

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def write_failover_timeline(run_id: str, ti=None, params=None) -> dict:
        """The run's timeline (each step's start, end and outcome; who approved what and when; the measured
        recovery time) as Markdown and JSON beside SampleUpdateInfo.xml. Runs whatever happened before."""
        from biztalk_dr import failover_jobs

        approvals = {}
        for task_id, servers in HUMAN_STEPS.items():
            for index, server in enumerate(servers or [None]):
                answer = ti.xcom_pull(task_ids=task_id, map_indexes=index if servers else None) if ti else None
                approvals[f"{task_id}[{server}]" if servers else task_id] = failover_jobs.answers_of(answer)
        plan = ti.xcom_pull(task_ids="assess.assess_standby") if ti else None
        result = failover_jobs.write_timeline(load_config(), run_id, approvals,
                                              left_out=(plan or {}).get("left_out"),
                                              dry_run=(params or {}).get("dry_run", True),
                                              mode=(params or {}).get("mode"), mark=(plan or {}).get("mark"))
        print(f"timeline: {result['timeline']} (recovery time {result['recovery_seconds']} s)")
        return result

    @task(trigger_rule=TriggerRule.ONE_FAILED, on_failure_callback=[])  # the failed step has alerted already
    def fail_if_any_step_failed() -> None:
        """Marks the run failed when any step failed or was refused (the timeline is written anyway)."""
        raise RuntimeError("a step of this failover failed or was refused: see the red task for its reason")

    approved, approval = assess_phase()
    held, final, shipped = stop_source_phase(approved)
    approval >> held  # nothing is stopped or changed before a person approves
    plan, verified = recover_phase(approved, final)
    generated, started = repoint_phase()
    confirmed = enable_phase()
    roles, resumed = protect_phase(plan)
    timeline = write_failover_timeline()
    shipped >> plan
    verified >> generated  # the runbook's order: the databases first (verified, users fixed), then BizTalk
    started >> confirmed >> roles
    resumed >> timeline
    [resumed, timeline] >> fail_if_any_step_failed()


GROUPS, BROKEN = dag_groups()
for GROUP, CONFIG in GROUPS:  # one dr_failover per BizTalk group (biztalk_dr.groups), built with its CONFIG
    SOURCE_SERVERS = servers_of(CONFIG, "primary")
    STANDBY_SERVERS = servers_of(CONFIG, "standby")  # the first one runs UpdateDatabase.vbs, holds the master secret
    # the human steps, whose answers (who, when) the timeline reports: task id -> the servers it is mapped over
    HUMAN_STEPS = {"assess.approve_failover": None, "stop_source.stop_biztalk_processing": SOURCE_SERVERS,
                   "repoint_biztalk.update_database": None, "repoint_biztalk.update_registry": STANDBY_SERVERS,
                   "repoint_biztalk.restore_sso_secret": None, "repoint_biztalk.start_biztalk_services": STANDBY_SERVERS,
                   "enable_processing.confirm_processing_enabled": None}
    dag(
        dag_id=GROUP.dag_id("dr_failover"),
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        doc_md=__doc__,
        tags=["biztalk-dr", "failover", CONFIG.group.name],
        default_args={"owner": "biztalk-ops", "retries": 0, "on_failure_callback": DrAlertNotifier()},
        access_control={"DR Operator": {"DAGs": {"can_read", "can_edit"}, "DAG Runs": {"can_read", "can_create"}}},
        params={
            "mode": Param("disaster", enum=["disaster", "planned"], title="Mode",
                          description="disaster: the primary site is lost. planned: a switchover, the source answers."),
            "target_mark": Param("", type="string", title="Target mark",
                                 description="Empty: the newest complete set shipped and verified at the standby."),
            "dry_run": Param(True, type="boolean", title="Dry run", description="Say what would be done; change nothing."),
            "confirm_group": Param("", type="string", title="Group name (real runs only)",
                                   description=f"Type {CONFIG.group.name} to run a real failover."),
            "leave_out": Param("", type="string", title="Leave out (databases NOT recovered)",
                               description="Empty: every database is recovered, or the run is refused. Only if you "
                                           "accept that a database stays as it is on the standby (e.g. recovered by "
                                           "hand), name it here (comma-separated); never the management database."),
        },
    )(dr_failover)()
BROKEN_GROUPS = broken_groups_dag("dr_failover", BROKEN)  # their file:line is this file's import error
