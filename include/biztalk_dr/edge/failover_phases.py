"""The phases of ``dr_failover`` — the BizTalk recovery runbook — as task-group builders, one per phase.

The DAG file wires them in the runbook's order (``dags/dr_failover.py``, whose doc says what each step does);
each builder makes its group's tasks with their ids as the UI, the timeline and the HITL answers know them
(``assess.check_request`` ... ``write_failover_timeline``). What a builder needs of the group's configuration
at parse time (its servers, the standby's pool) is passed in; the tasks load the configuration when they run.
"""

from __future__ import annotations

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import TriggerRule, task, task_group

from biztalk_dr.edge.failover_approval import RecordedApprovalOperator
from biztalk_dr.edge.windows_step_operator import ANSWER_WITHIN, WindowsStepOperator
from biztalk_dr.ops.config_files import load_config

__all__ = ["DRY_RUN_PREFIX", "human_steps", "assess_phase", "stop_source_phase", "recover_phase", "repoint_phase",
           "enable_phase", "protect_phase", "write_failover_timeline"]

# every human step's form says DRY RUN first in a dry run (the approval's body does too: its summary starts with it)
DRY_RUN_PREFIX = "{{ 'DRY RUN: ' if params.dry_run else '' }}"
_UPDATE_INFO = "{{ ti.xcom_pull(task_ids='repoint_biztalk.generate_update_info')['server_path'] }}"


def human_steps(source_servers: list[str], standby_servers: list[str]) -> dict[str, list[str] | None]:
    """The human steps, whose answers (who, when) the timeline reports: task id -> the servers it is mapped over."""
    return {"assess.approve_failover": None, "stop_source.stop_biztalk_processing": source_servers,
            "repoint_biztalk.update_database": None, "repoint_biztalk.update_registry": standby_servers,
            "repoint_biztalk.restore_sso_secret": None, "repoint_biztalk.start_biztalk_services": standby_servers,
            "enable_processing.confirm_processing_enabled": None}


@task_group(group_id="assess")
def assess_phase():
    """Runbook step 1: the form checked, the standby assessed, a person approves the plan."""

    @task
    def check_request(params: dict) -> dict:
        """The trigger form, validated before any server is touched: mode, mark, dry run, confirmation."""
        from biztalk_dr.domain.failover_request import parse_failover_request

        request = parse_failover_request(params, load_config())
        print(request.describe())
        return request.to_json()

    @task
    def assess_standby(request: dict, run_id: str) -> dict:
        """Standby reachable; every database RESTORING; the mark reachable by every database from verified
        files; the data loss; the source reachable or not. Stops, changing nothing, on any problem."""
        from biztalk_dr.domain.failover_request import FailoverRequest
        from biztalk_dr.ops import failover_jobs

        return failover_jobs.run_step(
            run_id, "assess.assess_standby",
            lambda cfg: failover_jobs.assess(cfg, FailoverRequest.from_json(request)))

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
def stop_source_phase(plan, source_servers: list[str]):
    """Runbook step 2: the backup schedule held, BizTalk stopped on each source server, no session left, the final
    log set (planned) taken and shipped. ``source_servers``: one box each."""

    @task
    def hold_backup_schedule(plan: dict, run_id: str) -> str:
        """dr_full_backup and dr_log_backup skip their runs from now on (the hold is in the DR roles record
        at the standby site) until protect_new_primary resumes them against the new primary."""
        from biztalk_dr.ops import failover_jobs
        from biztalk_dr.ops.failover_plan import FailoverPlan

        assessed = FailoverPlan.from_json(plan)
        return failover_jobs.run_step(
            run_id, "stop_source.hold_backup_schedule",
            lambda cfg: failover_jobs.hold_backup_schedule(cfg, run_id, assessed.dry_run))

    stop_biztalk = WindowsStepOperator.partial(
        task_id="stop_biztalk_processing", step="stop_biztalk", map_index_template="{{ task.server }}",
        doc_md="On each BizTalk server of the source site: receive locations disabled, host instances, the Rule "
               "Engine Update Service and ENTSSO stopped and disabled. Through WinRM when the server has a WinRM "
               "connection, otherwise a person does it and approves.").expand(server=source_servers)

    @task
    def check_no_biztalk_sessions(plan: dict, run_id: str) -> str:
        """No session but this one uses a database of the group on the source: nothing writes after the
        final mark. Fails naming each session (login, host, program) while one remains."""
        from biztalk_dr.ops import failover_jobs

        return failover_jobs.run_step(
            run_id, "stop_source.check_no_biztalk_sessions",
            lambda cfg: failover_jobs.check_no_biztalk_sessions(cfg, plan))

    @task
    def take_final_log_set(plan: dict, run_id: str) -> dict:
        """Planned switchover: one last marked log set (`sp_MarkAll`) now that BizTalk is stopped, verified
        like every set; its mark becomes the target, so nothing is lost. Disaster: none (says so)."""
        from biztalk_dr.ops import failover_jobs

        return failover_jobs.run_step(
            run_id, "stop_source.take_final_log_set",
            lambda cfg: failover_jobs.take_final_log_set(cfg, plan, run_id))

    @task
    def ship_final_log_set(final: dict, run_id: str) -> list[str]:
        """Every set not yet at the standby, the final one included, shipped and verified as dr_log_shipping
        does it."""
        from biztalk_dr.ops import failover_jobs

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
def recover_phase(approved, final, pool: str):
    """Runbook step 3: the databases to the same mark, each verified and its orphaned users mapped. ``pool``: the
    standby's restore pool (one restore at a time)."""

    @task
    def plan_recovery(approved: dict, final: dict, run_id: str) -> dict:
        """The target: the final log set's mark in a planned switchover, else the approved mark, assessed
        again against the standby as it is now."""
        from biztalk_dr.ops import failover_jobs

        return failover_jobs.run_step(
            run_id, "recover_databases.plan_recovery",
            lambda cfg: failover_jobs.plan_recovery(cfg, approved, final))

    @task(pool=pool)  # one restore at a time on the standby (biztalk_dr.domain.pools)
    def restore_to_mark(plan: dict, run_id: str) -> list[str]:
        """Every remaining log WITH NORECOVERY, then each database's last log WITH STOPATMARK = N'<mark>',
        RECOVERY (the same mark for all). Databases already ONLINE at the mark are left alone."""
        from biztalk_dr.ops import failover_jobs

        failover_jobs.run_step(run_id, "recover_databases.restore_to_mark",
                               lambda cfg: failover_jobs.recover_databases(cfg, plan))
        return [d.name for d in load_config().databases]

    @task(map_index_template="{{ task.op_kwargs['database'] }}")
    def verify_at_mark(database: str, plan: dict, run_id: str) -> str:
        """This database is ONLINE and stopped at the mark (msdb.restorehistory)."""
        from biztalk_dr.ops import failover_jobs
        from biztalk_dr.ops.failover_plan import FailoverPlan

        assessed = FailoverPlan.from_json(plan)
        return failover_jobs.run_step(run_id, f"recover_databases.verify_at_mark[{database}]",
                                      lambda cfg: failover_jobs.verify_database(cfg, database, assessed.mark,
                                                                                assessed.dry_run))

    @task(map_index_template="{{ task.op_kwargs['database'] }}")
    def fix_orphaned_users(database: str, plan: dict, run_id: str) -> list[str]:
        """Users of SQL logins that the new instance knows under another SID mapped to the login of their
        name (ALTER USER ... WITH LOGIN). A user with no such login fails the box, named, with what to do."""
        from biztalk_dr.ops import failover_jobs
        from biztalk_dr.ops.failover_plan import FailoverPlan

        assessed = FailoverPlan.from_json(plan)
        return failover_jobs.run_step(
            run_id, f"recover_databases.fix_orphaned_users[{database}]",
            lambda cfg: failover_jobs.fix_orphaned_users(cfg, database, assessed.dry_run))

    plan = plan_recovery(approved, final)
    names = restore_to_mark(plan)
    verified = verify_at_mark.override(doc_md=verify_at_mark.function.__doc__).partial(plan=plan).expand(
        database=names)
    fixed = fix_orphaned_users.override(doc_md=fix_orphaned_users.function.__doc__).partial(plan=plan).expand(
        database=names)
    verified >> fixed
    return plan, fixed


@task_group(group_id="repoint_biztalk")
def repoint_phase(standby_servers: list[str]):
    """Runbook step 4: SampleUpdateInfo.xml, UpdateDatabase.vbs on the first standby server (it holds the master
    secret too), UpdateRegistry.vbs and the services on each."""

    @task
    def generate_update_info(run_id: str) -> dict:
        """SampleUpdateInfo.xml from the configuration (source and destination servers, every database,
        the master MessageBox, custom databases), kept with the run's records."""
        from biztalk_dr.ops import failover_jobs

        return failover_jobs.run_step(
            run_id, "repoint_biztalk.generate_update_info",
            lambda cfg: failover_jobs.write_update_info(cfg, run_id))

    generated = generate_update_info()
    update_database = WindowsStepOperator(
        task_id="update_database", step="update_database", server=standby_servers[0], update_info_path=_UPDATE_INFO,
        doc_md="On one BizTalk server of the standby site: UpdateDatabase.vbs SampleUpdateInfo.xml (the tables "
               "of BizTalkMgmtDb that name the other databases' servers).")
    update_registry = WindowsStepOperator.partial(
        task_id="update_registry", step="update_registry", update_info_path=_UPDATE_INFO,
        map_index_template="{{ task.server }}",
        doc_md="On every BizTalk server of the standby site: UpdateRegistry.vbs SampleUpdateInfo.xml.",
    ).expand(server=standby_servers)
    restore_sso_secret = WindowsStepOperator(
        task_id="restore_sso_secret", step="restore_sso_secret", server=standby_servers[0],
        doc_md="Always a person: ssoconfig -restoreSecret asks for the secret backup's password, which never "
               "passes through Airflow.")
    start_services = WindowsStepOperator.partial(
        task_id="start_biztalk_services", step="start_biztalk", map_index_template="{{ task.server }}",
        doc_md="On every BizTalk server of the standby site: ENTSSO, the Rule Engine Update Service and the host "
               "instances set to Automatic and started; WMI restarted.").expand(server=standby_servers)
    generated >> update_database >> update_registry >> restore_sso_secret >> start_services
    return generated, start_services


@task_group(group_id="enable_processing")
def enable_phase():
    """Runbook step 5: the BizTalk console checklist, confirmed by the operator."""
    return ApprovalOperator(
        task_id="confirm_processing_enabled", subject=DRY_RUN_PREFIX + "Processing enabled in the BizTalk console?",
        body=(DRY_RUN_PREFIX + "In the BizTalk Administration console on the standby site: reconnect to the group (now on the "
              "standby SQL Server), apply the DR bindings, enable the receive locations, start the send ports "
              "and orchestrations, check the host instances run. Approve when messages flow."),
        defaults="Reject", response_timeout=ANSWER_WITHIN, fail_on_reject=True,
        doc_md="Only a person can do this in the BizTalk console: the checklist, then approve.")


@task_group(group_id="protect_new_primary")
def protect_phase(plan):
    """Runbook step 6: the new roles recorded, a full backup set of the new primary, the backup schedule resumed."""

    @task
    def record_new_roles(plan: dict, run_id: str) -> dict:
        """The standby site is the primary now, recorded at the standby site; the old primary is to be
        re-seeded as the new standby. Already recorded for this mark: says so and does nothing."""
        from biztalk_dr.ops import failover_jobs
        from biztalk_dr.ops.failover_plan import FailoverPlan

        assessed = FailoverPlan.from_json(plan)
        return failover_jobs.run_step(
            run_id, "protect_new_primary.record_new_roles",
            lambda cfg: failover_jobs.record_new_roles(cfg, plan, assessed.dry_run))

    @task
    def force_full_backup(plan: dict, run_id: str) -> list[str]:
        """The group is repointed (BizTalkMgmtDb names the new servers), then a full backup set of the new
        primary through BizTalk's procedures into sites.standby.backup_path, verified: its chain starts here."""
        from biztalk_dr.ops import failover_jobs
        from biztalk_dr.ops.failover_plan import FailoverPlan

        assessed = FailoverPlan.from_json(plan)
        return failover_jobs.run_step(
            run_id, "protect_new_primary.force_full_backup",
            lambda cfg: failover_jobs.force_full_backup_on_new_primary(cfg, assessed.dry_run))

    @task
    def resume_backup_schedule(plan: dict, run_id: str) -> str:
        """dr_full_backup and dr_log_backup run again, against the new primary."""
        from biztalk_dr.ops import failover_jobs
        from biztalk_dr.ops.failover_plan import FailoverPlan

        assessed = FailoverPlan.from_json(plan)
        return failover_jobs.run_step(
            run_id, "protect_new_primary.resume_backup_schedule",
            lambda cfg: failover_jobs.resume_backup_schedule(cfg, assessed.dry_run))

    roles = record_new_roles(plan)
    full = force_full_backup(plan)
    resumed = resume_backup_schedule(plan)
    roles >> full >> resumed
    return roles, resumed


def write_failover_timeline(source_servers: list[str], standby_servers: list[str]):
    """Runbook step 7, after whatever happened before: the timeline task, reading every human step's answers."""

    steps = human_steps(source_servers, standby_servers)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def write_failover_timeline(run_id: str, ti=None, params=None) -> dict:
        """The run's timeline (each step's start, end and outcome; who approved what and when; the measured
        recovery time) as Markdown and JSON beside SampleUpdateInfo.xml. Runs whatever happened before."""
        from biztalk_dr.ops import failover_jobs

        approvals = {}
        for task_id, servers in steps.items():
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

    return write_failover_timeline()
