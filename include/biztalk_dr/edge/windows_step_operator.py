"""A Windows step of the failover on one BizTalk server, as one task: through WinRM when the configuration
gives the server a WinRM connection, otherwise a human step (Approve when done) showing the exact commands.

One operator for both, so the DAG maps it over the servers (one box per server) without knowing which
ones a person handles. In a dry run it says what it would run and asks nobody.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from biztalk_dr.domain.windows_steps import NOT_CONFIGURED

__all__ = ["WindowsStepOperator", "ANSWER_WITHIN"]

ANSWER_WITHIN = dt.timedelta(hours=4)


class WindowsStepOperator(ApprovalOperator):
    template_fields = (*ApprovalOperator.template_fields, "server", "update_info_path")

    def __init__(self, *, step: str, server: str = NOT_CONFIGURED, update_info_path: str = "",
                 **kwargs: Any) -> None:
        kwargs.setdefault("subject", step.replace("_", " "))
        kwargs.setdefault("response_timeout", ANSWER_WITHIN)
        super().__init__(defaults="Reject", fail_on_reject=True, **kwargs)
        self.step = step
        self.server = server
        self.update_info_path = update_info_path

    def execute(self, context: Any) -> Any:
        from biztalk_dr.domain.windows_steps import run_windows_step, windows_step
        from biztalk_dr.ops import failover_jobs
        from biztalk_dr.ops.config_files import load_config

        cfg = load_config()
        params = context["params"]
        step = windows_step(cfg, self.step, self.server, update_info_path=self.update_info_path,  # type: ignore[arg-type]
                            mode=params.get("mode", "disaster"))
        if params.get("dry_run", True):
            would = step.instructions if step.manual else f"would run through WinRM ({step.winrm_conn_id}): " \
                                                         f"{step.powershell}"
            self.log.info("DRY RUN: %s", would)
            return {"dry_run": True, "server": step.server, "would": would}
        if not step.manual:
            from airflow.providers.microsoft.winrm.hooks.winrm import WinRMHook

            with failover_jobs.timed_step(cfg, context["run_id"], f"{self.task_id}[{step.server}]"):
                lines = run_windows_step(step, WinRMHook(ssh_conn_id=step.winrm_conn_id))
            for line in lines:
                self.log.info("%s: %s", step.server, line)
            return {"server": step.server, "ran_through": "winrm", "output": lines}
        self.subject = step.title
        self.body = step.instructions
        return super().execute(context)
