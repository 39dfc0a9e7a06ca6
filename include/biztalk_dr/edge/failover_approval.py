"""The failover's approval, with the answer recorded: who approved or rejected, and when, goes into the run's
timeline at once — a rejection too, which fails the task before any XCom could carry it."""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from biztalk_dr.domain.errors import FailoverNotApproved

__all__ = ["RecordedApprovalOperator"]



class RecordedApprovalOperator(ApprovalOperator):
    """``ApprovalOperator`` that writes its answer to the failover run's timeline before going on or failing."""

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from biztalk_dr.domain.advice import advice
        from biztalk_dr.ops import failover_jobs
        from biztalk_dr.ops.config_files import load_config

        run_id = context["run_id"]
        step = self.task_id  # with its task group's prefix: assess.approve_failover
        if "error" in event:  # a timeout: no answer means no
            failover_jobs.record_answer(load_config(), run_id, step, "no answer (timed out): rejected", None, None)
            try:
                return super().execute_complete(context, event)
            except Exception as exc:
                raise FailoverNotApproved(f"{step}: no answer within the time allowed: nothing was changed",
                                          advice("failover_rejected")) from exc
        chosen = list(event.get("chosen_options") or [])
        who = event.get("responded_by_user")
        when = event.get("responded_at")
        option = chosen[0] if chosen else "?"
        failover_jobs.record_answer(load_config(), run_id, step, "approved" if option == self.APPROVE else
                                    "rejected", who, when)
        try:
            return super().execute_complete(context, event)
        except Exception as exc:
            name = (who or {}).get("name") if isinstance(who, dict) else who
            raise FailoverNotApproved(f"{step}: {option} by {name or 'unknown'} at {when}: nothing was changed",
                                      advice("failover_rejected")) from exc
