"""The ``@dag`` arguments every biztalk-dr DAG shares, in one place.

Every DAG starts on the same fixed date, never catches up (a DR run never replays the past), never overlaps
itself, is tagged ``biztalk-dr``, its kind and its group, and alerts on every failed task (the notifier says
what happened and what to do). A DAG file passes its own id, schedule, docs and params, then
``**dag_defaults(CONFIG, "<kind>")``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from biztalk_dr.domain.config import GroupConfig
from biztalk_dr.edge.alerts import DrAlertNotifier

__all__ = ["START_DATE", "dag_defaults", "task_defaults"]

START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def task_defaults() -> dict[str, Any]:
    """Every task: owned by the operations team, not retried unless it says so, alerting when it fails."""
    return {"owner": "biztalk-ops", "retries": 0, "on_failure_callback": DrAlertNotifier()}


def dag_defaults(cfg: GroupConfig, kind: str) -> dict[str, Any]:
    """The shared ``@dag`` keyword arguments of a DAG of ``kind`` (its second tag) for the group ``cfg``."""
    return {"start_date": START_DATE, "catchup": False, "max_active_runs": 1,
            "tags": ["biztalk-dr", kind, cfg.group.name], "default_args": task_defaults()}
