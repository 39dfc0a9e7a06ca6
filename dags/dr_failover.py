"""
# dr_failover — the BizTalk recovery runbook as tasks, for the on-call engineer

Trigger it by hand when the primary site is lost (`mode = disaster`) or for a switchover (`mode = planned`).
The form is checked before any server is touched; **`dry_run` is on by default**: every task says what it
would do and changes nothing. A real run needs the group's name typed in `confirm_group`.

1. **assess** — standby reachable; every standby database RESTORING; the target mark (default: the newest
   complete set shipped and verified at the standby) reachable by every database from verified files; the
   data loss in minutes; whether the source answers. Then **approve_failover**: a person reads the plan and
   approves (a timeout or a rejection stops here, nothing changed).
2. **recover_databases** — every remaining log WITH NORECOVERY, then every database's last log
   `WITH STOPATMARK = N'<mark>', RECOVERY` — the same mark for all; then, one box per database, ONLINE and
   `restorehistory.stop_at_mark_name` checked.
3. **repoint_biztalk** — `SampleUpdateInfo.xml` generated from the configuration; the commands to run on the
   standby site's BizTalk servers (UpdateDatabase.vbs once, UpdateRegistry.vbs on each, SSO master secret,
   services) shown in **confirm_biztalk_repointed**, which waits for the operator.
4. **enable_processing** — **confirm_processing_enabled**: the BizTalk console checklist (reconnect to the
   group, enable receive locations and send ports), confirmed by the operator.
5. **protect_new_primary** — the DR roles record at the standby site says the standby is primary now;
   the old primary is to be re-seeded as the new standby.
6. **write_failover_timeline** — each step's start and end, who approved what and when, and the measured
   recovery time, as Markdown and JSON beside `SampleUpdateInfo.xml` (`.biztalk-dr/failover/<run>/`).

Every task first checks whether its effect is already there (a database already ONLINE at the mark, the roles
already recorded) and then only says so: clear any task and run it again.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param, TriggerRule, dag, task, task_group

from biztalk_dr.alerts import DrAlertNotifier
from biztalk_dr.config import load_config

CONFIG = load_config()
_ANSWER_WITHIN = dt.timedelta(hours=4)


@dag(
    dag_id="dr_failover",
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
    },
)
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

            cfg = load_config()
            with failover_jobs.timed_step(cfg, run_id, "assess.assess_standby"):
                plan = failover_jobs.assess(cfg, FailoverRequest(**request))
            print(plan["summary"])
            return plan

        plan = assess_standby(check_request())
        approve_failover = ApprovalOperator(
            task_id="approve_failover", subject="Approve the BizTalk failover?",
            body="{{ ti.xcom_pull(task_ids='assess.assess_standby')['summary'] }}",
            defaults="Reject", response_timeout=_ANSWER_WITHIN, fail_on_reject=True,
            doc_md="A person reads the plan (mark, data loss, source) and approves. No answer means no.")
        plan >> approve_failover
        return plan, approve_failover

    @task_group(group_id="recover_databases")
    def recover_phase(plan):
        @task
        def restore_to_mark(plan: dict, run_id: str) -> list[str]:
            """Every remaining log WITH NORECOVERY, then each database's last log WITH STOPATMARK = N'<mark>',
            RECOVERY (the same mark for all). Databases already ONLINE at the mark are left alone."""
            from biztalk_dr import failover_jobs

            cfg = load_config()
            with failover_jobs.timed_step(cfg, run_id, "recover_databases.restore_to_mark"):
                done = failover_jobs.recover_databases(cfg, plan)
            print("\n".join(done))
            return [d["database"] for d in plan["databases"]]

        @task(map_index_template="{{ task.op_kwargs['database'] }}")
        def verify_at_mark(database: str, plan: dict, run_id: str) -> str:
            """This database is ONLINE and stopped at the mark (msdb.restorehistory)."""
            from biztalk_dr import failover_jobs

            cfg = load_config()
            with failover_jobs.timed_step(cfg, run_id, f"recover_databases.verify_at_mark[{database}]"):
                return failover_jobs.verify_database(cfg, database, plan["mark"], plan["dry_run"])

        names = restore_to_mark(plan)
        return verify_at_mark.override(doc_md=verify_at_mark.function.__doc__).partial(plan=plan).expand(
            database=names)

    @task_group(group_id="repoint_biztalk")
    def repoint_phase(plan):
        @task
        def generate_update_info(plan: dict, run_id: str) -> str:
            """SampleUpdateInfo.xml from the configuration (source and destination servers, every database,
            the master MessageBox, custom databases), kept with the run's records."""
            from biztalk_dr import failover_jobs

            cfg = load_config()
            with failover_jobs.timed_step(cfg, run_id, "repoint_biztalk.generate_update_info"):
                path = failover_jobs.write_update_info(cfg, failover_jobs.run_folder(cfg, run_id), plan["dry_run"])
            print(f"SampleUpdateInfo.xml: {path}")
            return path

        servers = ", ".join(s.name for s in CONFIG.sites.standby.biztalk_servers) or "(none configured)"
        confirm_biztalk_repointed = ApprovalOperator(
            task_id="confirm_biztalk_repointed", subject="BizTalk repointed to the standby SQL Server?",
            body=("On ONE BizTalk server of the standby site: cscript UpdateDatabase.vbs SampleUpdateInfo.xml "
                  "(the file: {{ ti.xcom_pull(task_ids='repoint_biztalk.generate_update_info') }}). On EVERY one "
                  f"({servers}): cscript UpdateRegistry.vbs SampleUpdateInfo.xml; restore the SSO master secret "
                  "(ssoconfig -restoreSecret); set ENTSSO, the Rule Engine Update Service and the host instances to "
                  "Automatic and start them; restart WMI. Approve when done."),
            defaults="Reject", response_timeout=_ANSWER_WITHIN, fail_on_reject=True,
            doc_md="Windows-side steps: without a WinRM connection a person runs them and confirms here.")
        generated = generate_update_info(plan)
        generated >> confirm_biztalk_repointed
        return generated, confirm_biztalk_repointed

    confirm_processing_enabled = ApprovalOperator(
        task_id="confirm_processing_enabled", subject="Processing enabled in the BizTalk console?",
        body=("In the BizTalk Administration console on the standby site: reconnect to the group (now on the "
              "standby SQL Server), enable the receive locations, start the send ports and orchestrations, check "
              "the host instances run. Approve when messages flow."),
        defaults="Reject", response_timeout=_ANSWER_WITHIN, fail_on_reject=True,
        doc_md="Only a person can do this in the BizTalk console: the checklist, then approve.")

    @task
    def record_new_roles(plan: dict, run_id: str) -> dict:
        """The standby site is the primary now, recorded at the standby site; the old primary is to be re-seeded
        as the new standby. Already recorded for this mark: says so and does nothing."""
        from biztalk_dr import failover_jobs

        cfg = load_config()
        with failover_jobs.timed_step(cfg, run_id, "record_new_roles"):
            roles = failover_jobs.record_new_roles(cfg, plan, plan["dry_run"])
        print(roles)
        return roles

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def write_failover_timeline(run_id: str, ti=None) -> dict:
        """The run's timeline (each step's start, end and outcome; who approved what and when; the measured
        recovery time) as Markdown and JSON beside SampleUpdateInfo.xml. Runs whatever happened before."""
        from biztalk_dr import failover_jobs

        approvals = {}
        for task_id in ("assess.approve_failover", "repoint_biztalk.confirm_biztalk_repointed",
                        "confirm_processing_enabled"):
            answer = ti.xcom_pull(task_ids=task_id) if ti else None
            approvals[task_id] = ({k: answer.get(k) for k in ("chosen_options", "responded_by_user", "responded_at")}
                                  if isinstance(answer, dict) else "no answer recorded (not reached, or marked done)")
        result = failover_jobs.write_timeline(load_config(), run_id, approvals)
        print(f"timeline: {result['timeline']} (recovery time {result['recovery_seconds']} s)")
        return result

    @task(trigger_rule=TriggerRule.ONE_FAILED, on_failure_callback=[])  # the failed step has alerted already
    def fail_if_any_step_failed() -> None:
        """Marks the run failed when any step failed or was refused (the timeline is written anyway)."""
        raise RuntimeError("a step of this failover failed or was refused: see the red task for its reason")

    plan, approval = assess_phase()
    verified = recover_phase(plan)
    approval >> verified
    generated, repointed = repoint_phase(plan)
    verified >> generated  # the runbook's order: the databases first, then BizTalk
    roles = record_new_roles(plan)
    timeline = write_failover_timeline()
    repointed >> confirm_processing_enabled >> roles >> timeline
    [roles, timeline] >> fail_if_any_step_failed()


dr_failover()
