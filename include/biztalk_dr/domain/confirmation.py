"""The one confirmation rule of a run that changes the standby: the group's name typed in ``confirm_group``.

A dry run (``dry_run`` true, the default of every DAG that asks) needs nothing. A real run needs the group's
name typed exactly — the case as configured; spaces around it, as a paste leaves them, do not count — so that
a form filled for another group never replaces this one's databases. ``dr_failover`` and
``dr_standby_reseed`` both ask through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from biztalk_dr.domain.config import GroupConfig

__all__ = ["confirmation_problem", "real_run"]


def real_run(params: Mapping[str, Any]) -> bool:
    """Only ``dry_run`` exactly False is a real run: a form that could not say true or false stays a dry run."""
    return params.get("dry_run", True) is False


def confirmation_problem(params: Mapping[str, Any], cfg: GroupConfig, action: str) -> str | None:
    """None when the form is a dry run or names the group; else the problem, naming the field and what to do."""
    if not real_run(params):
        return None
    typed = params.get("confirm_group") or ""
    if str(typed).strip() == cfg.group.name:
        return None
    return (f"confirm_group: a real {action} needs the group's name typed exactly ({cfg.group.name!r}); "
            f"got {typed!r}. Or run with dry_run first")
