"""Alerts while the group's file is broken and the DAGs run on its last valid version (``config_fallback``).

Once per DAG run, at the start of its first task (the ``biztalk_dr_config_watch`` plugin's listener), the
operator is told what is wrong with the file (each problem with its file:line) and that the run uses the
last valid version. The channels do not depend on the broken file:

- the Airflow connection named by ``$BIZTALK_DR_ALERT_CONN_ID`` — an SMTP connection whose extra names the
  recipients (``"to": "ops@example.com, oncall@example.com"``), or a Slack incoming-webhook connection;
- the alert targets of the last valid version (``alerts.smtp`` / ``alerts.slack``);
- always the task log.

Which runs were alerted is recorded in the state folder (one empty file per run, pruned after two weeks),
so the tasks of one run, each its own process, alert once between them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from biztalk_dr.edge.groups import group_of_dag_id
from biztalk_dr.ops.config_fallback import Fallback, current_fallback, state_dir
from biztalk_dr.ops.config_files import config_path

__all__ = ["ALERT_CONN_ENV_VAR", "alert_for", "alerted_in_run", "check_group_file", "on_task_start",
           "send_fallback_alert"]

log = logging.getLogger("biztalk_dr.edge.alerts")

ALERT_CONN_ENV_VAR = "BIZTALK_DR_ALERT_CONN_ID"
_KEEP_RECORDS_SECONDS = 14 * 24 * 3600


def on_task_start(task_instance: Any) -> list[str]:
    """For a task of a biztalk-dr DAG starting while the group's file is broken: alert, once per run.
    Returns where the alert went ([] when nothing was sent)."""
    task = getattr(task_instance, "task", None)
    dag = getattr(task, "dag", None)
    if dag is None or "biztalk-dr" not in (getattr(dag, "tags", None) or ()):
        return []
    dag_id, run_id = task_instance.dag_id, task_instance.run_id
    fallback = current_fallback(group_of_dag_id(dag_id).path)  # the file of this DAG's group
    if fallback is None:
        return []
    if not _first_in_run(Path(fallback.file), dag_id, run_id):
        log.error("%s\n(alerted at the start of this run)", fallback.text())
        return []
    return send_fallback_alert(alert_for(fallback, dag_id=dag_id, task_id=task_instance.task_id, run_id=run_id,
                                         url=getattr(task_instance, "log_url", "") or ""))


def check_group_file() -> str:
    """For the health check: what it says while the group's file validates; raises GroupFileBroken — every
    problem with its file:line and the version in use — while the DAGs run on its last valid version."""
    from biztalk_dr.domain.advice import advice
    from biztalk_dr.domain.errors import GroupFileBroken

    path = config_path()
    fallback = current_fallback(path)
    if fallback is not None:
        raise GroupFileBroken(fallback.text(), advice("config_file_broken", file=fallback.file))
    return f"{path} validates: the DAGs run on it"


def alert_for(fallback: Fallback, *, dag_id: str, task_id: str, run_id: str, url: str = ""):  # noqa: ANN201
    from biztalk_dr.domain.advice import advice
    from biztalk_dr.edge.alerts import Alert

    return Alert(
        title=f"[{fallback.config.group.name}] biztalk-dr: the group's configuration file is broken; {dag_id} "
              "runs on its last valid version",
        dag_id=dag_id, task_id=task_id, run_id=run_id, detail=fallback.text(),
        advice=advice("config_file_broken", file=fallback.file),
        url=url)


def send_fallback_alert(alert: Any, context: Mapping[str, Any] | None = None) -> list[str]:
    """Through $BIZTALK_DR_ALERT_CONN_ID, the last valid version's targets and the task log; a failing
    channel is logged, never raised (the task must run: it is the backup the operator still needs)."""
    from biztalk_dr.edge.alerts import send_alert

    fallback = current_fallback(config_path())
    if fallback is None:
        log.error("ALERT %s", alert.text())
        return []
    sent = []
    conn_id = os.environ.get(ALERT_CONN_ENV_VAR)
    if conn_id:
        try:
            targets = _connection_targets(conn_id)
        except Exception as exc:  # noqa: BLE001 - see docstring
            log.error("the alert cannot go through %s=%s: %s", ALERT_CONN_ENV_VAR, conn_id, exc)
        else:
            sent += send_alert(alert, fallback.config.model_copy(update={"alerts": targets}), context)
    own = fallback.config.alerts
    if own.smtp or own.slack or not sent:
        sent += send_alert(alert, fallback.config, context)  # with no target at all: the task log only
    return sent


def _connection_targets(conn_id: str):  # noqa: ANN202 - config.Alerts
    """The alert target an Airflow connection stands for: SMTP (recipients in its extra "to") or a Slack
    incoming webhook."""
    from airflow.sdk import Connection

    from biztalk_dr.domain.config import Alerts, SlackAlerts, SmtpAlerts

    conn = Connection.get(conn_id)
    kind = (conn.conn_type or "").lower()
    if kind == "smtp":
        to = conn.extra_dejson.get("to")
        recipients = [a.strip() for a in (to.split(",") if isinstance(to, str) else to or []) if a.strip()]
        if not recipients:
            raise ValueError(f'the SMTP connection {conn_id!r} names no recipients: add "to" to its extra')
        return Alerts(smtp=SmtpAlerts(conn_id=conn_id, to=recipients))
    if kind == "slackwebhook":
        return Alerts(slack=SlackAlerts(conn_id=conn_id))
    raise ValueError(f"the connection {conn_id!r} is of type {conn.conn_type!r}: expected smtp or slackwebhook")


def alerted_in_run(dag_id: str, run_id: str) -> bool:
    """Whether this run has sent its broken-file alert already (the listener, at its first task)."""
    fallback = current_fallback(config_path())
    return fallback is not None and _record(Path(fallback.file), dag_id, run_id).exists()


def _record(config_file: Path, dag_id: str, run_id: str) -> Path:
    name = hashlib.sha256(f"{config_file}\0{dag_id}\0{run_id}".encode()).hexdigest()[:24]
    return state_dir(config_file) / "config-alerts" / name


def _first_in_run(config_file: Path, dag_id: str, run_id: str) -> bool:
    """True for the first task of this run to ask (a record file created exclusively); True as well when no
    record can be written: an alert too many beats none."""
    record = _record(config_file, dag_id, run_id)
    folder, name = record.parent, record.name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return False
    except OSError as exc:
        log.warning("cannot record the alert of this run in %s (%s): every task of the run alerts", folder, exc)
        return True
    os.close(fd)
    _prune(folder)
    return True


def _prune(folder: Path) -> None:
    cutoff = time.time() - _KEEP_RECORDS_SECONDS
    for entry in os.scandir(folder):
        try:
            if entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
        except OSError:
            pass
