"""Alerts an operator can act on: which DAG and step, which database, SQL Server's error number and
text, and what to do next — sent through the notifiers the group's configuration names.

With no SMTP or Slack target configured, alerts go to the task log only (said once in the log, so
nobody believes a mail went out).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow.sdk import BaseNotifier

from biztalk_dr.domain.advice import advice
from biztalk_dr.domain.config import GroupConfig
from biztalk_dr.domain.errors import (
    BackupSetProblem,
    LoginRefused,
    ShippingError,
    SqlConnectionError,
    SqlServerError,
    StandbyBusy,
    sql_error_class,
)
from biztalk_dr.ops.config_files import load_config

__all__ = ["Alert", "advice_for", "alert_from_context", "DrAlertNotifier", "send_alert"]

log = logging.getLogger("biztalk_dr.edge.alerts")


def advice_for(exc: BaseException | None) -> str:
    """What to do about this error: its own advice, else by class (a SQL Server error's ``advice_key``; an error
    that carries SQL Server's number, by the class of that number)."""
    if exc is None:
        return ""
    own = getattr(exc, "advice", "")
    if own:
        return own
    if isinstance(exc, SqlConnectionError) and not isinstance(exc, LoginRefused):
        return advice("instance_unreachable", conn_id=exc.conn_id or "its Airflow connection")
    if isinstance(exc, StandbyBusy):
        return advice("standby_busy")
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS):
        return advice("file_not_writable", path=exc.filename or "A file", why=exc.strerror)
    from airflow.providers.standard.exceptions import HITLRejectException

    if isinstance(exc, HITLRejectException):
        return advice("failover_rejected")
    key = exc.advice_key if isinstance(exc, SqlServerError) else sql_error_class(getattr(exc, "number", None)).advice_key
    return advice(key) if key else ""


@dataclass(frozen=True)
class Alert:
    title: str
    dag_id: str
    task_id: str
    run_id: str
    detail: str
    error_number: int | None = None
    advice: str = ""
    url: str = ""

    def text(self) -> str:
        lines = [self.title, f"DAG {self.dag_id}, task {self.task_id}, run {self.run_id}"]
        if self.error_number:  # 0: the driver's own error (no server answered), not a SQL Server error number
            lines.append(f"SQL Server error {self.error_number}")
        lines.append(self.detail)
        if self.advice:
            lines.append(f"What to do: {self.advice}")
        if self.url:
            lines.append(f"Log: {self.url}")
        return "\n".join(lines)


def alert_from_context(context: Mapping[str, Any], *, group: str) -> Alert:
    """An alert for a failed task, from the Airflow context of its failure callback."""
    ti = context.get("ti") or context.get("task_instance")
    exc = context.get("exception")
    dag_id = getattr(ti, "dag_id", "") or str(context.get("dag", ""))
    task_id = getattr(ti, "task_id", "") or ""
    run_id = getattr(ti, "run_id", "") or str(context.get("run_id", ""))
    number = getattr(exc, "number", None) if isinstance(exc, SqlServerError | BackupSetProblem | ShippingError) else None
    return Alert(
        title=f"[{group}] biztalk-dr: {dag_id} failed at {task_id}",
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
        detail=str(exc) if exc else "the task failed; see its log",
        error_number=number,
        advice=advice_for(exc),
        url=getattr(ti, "log_url", "") or "",
    )


def warning_alert(context: Mapping[str, Any], *, group: str, detail: str, advice: str) -> Alert:
    """An alert from a task that goes on (a threshold crossed, not a failure)."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", "")
    task_id = getattr(ti, "task_id", "")
    return Alert(title=f"[{group}] biztalk-dr: {dag_id} warns at {task_id}", dag_id=dag_id, task_id=task_id,
                 run_id=getattr(ti, "run_id", ""), detail=detail, advice=advice, url=getattr(ti, "log_url", "") or "")


def warning_sender(cfg: GroupConfig, context: Mapping[str, Any]) -> Callable[[str, str], None]:
    """``send(detail, advice)`` for a task that goes on after crossing a threshold: alerts through every
    configured target, naming this task."""
    def send(detail: str, advice: str) -> None:
        send_alert(warning_alert(context, group=cfg.group.name, detail=detail, advice=advice), cfg, context)

    return send


def send_alert(alert: Alert, cfg: GroupConfig, context: Mapping[str, Any] | None = None) -> list[str]:
    """Send through every configured target; returns where it went. A failing target is logged, not raised:
    an alert must never turn a clear failure into a confusing one."""
    sent = []
    log.error("ALERT %s", alert.text())
    if cfg.alerts.smtp:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        try:
            SmtpNotifier(to=cfg.alerts.smtp.to, smtp_conn_id=cfg.alerts.smtp.conn_id, subject=alert.title,
                         html_content="<pre>" + _html(alert.text()) + "</pre>").notify(dict(context or {}))
            sent.append(f"mail to {', '.join(cfg.alerts.smtp.to)}")
        except Exception as exc:  # noqa: BLE001 - see docstring
            log.error("the alert mail could not be sent (%s): the alert is only in this log", exc)
    if cfg.alerts.slack:
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        try:
            SlackWebhookNotifier(slack_webhook_conn_id=cfg.alerts.slack.conn_id, text=alert.text()).notify(
                dict(context or {}))
            sent.append(f"Slack {cfg.alerts.slack.channel or cfg.alerts.slack.conn_id}")
        except Exception as exc:  # noqa: BLE001 - see docstring
            log.error("the Slack alert could not be sent (%s): the alert is only in this log", exc)
    if not cfg.alerts.smtp and not cfg.alerts.slack:
        log.warning("no alert target is configured (alerts.smtp / alerts.slack): this alert is only in the task log")
    return sent


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class DrAlertNotifier(BaseNotifier):
    """``on_failure_callback`` for every biztalk-dr DAG: builds the alert and sends it to the configured targets;
    while the group's file is broken, through the channels that do not depend on it (``config_alerts``)."""

    template_fields = ()

    def __init__(self) -> None:
        super().__init__()

    def notify(self, context: Mapping[str, Any]) -> None:
        from biztalk_dr.domain.errors import GroupFileBroken
        from biztalk_dr.edge.config_alerts import alerted_in_run, send_fallback_alert
        from biztalk_dr.ops.config_fallback import current_fallback
        from biztalk_dr.ops.config_files import config_path

        cfg = load_config()
        alert = alert_from_context(context, group=cfg.group.name)
        if current_fallback(config_path()) is not None:  # the file's own targets may be what is broken
            if isinstance(context.get("exception"), GroupFileBroken) and alerted_in_run(alert.dag_id, alert.run_id):
                log.error("%s\n(the same problems were alerted at the start of this run: not sent twice)",
                          alert.text())
                return
            send_fallback_alert(alert, context)
            return
        send_alert(alert, cfg, context)


async def missed_deadline_alert(context: Mapping[str, Any] | None = None, *, dag_id: str = "", expectation: str = "",
                                **_: Any) -> None:
    """Deadline callback (runs in the triggerer): a scheduled DR run did not finish in time."""
    import asyncio

    from biztalk_dr.edge.groups import group_of_dag_id

    cfg = group_of_dag_id(dag_id).load() if dag_id else load_config()  # no task context in the triggerer
    run_id = ""
    dag_run = (context or {}).get("dag_run")
    if dag_run is not None:
        run_id = getattr(dag_run, "run_id", "") or (dag_run.get("run_id", "") if isinstance(dag_run, dict) else "")
    alert = Alert(
        title=f"[{cfg.group.name}] biztalk-dr: {dag_id} missed its deadline",
        dag_id=dag_id, task_id="-", run_id=run_id,
        detail=f"The run did not finish in time: {expectation}.",
        advice=advice("deadline_missed"),
    )
    await asyncio.to_thread(send_alert, alert, cfg)
