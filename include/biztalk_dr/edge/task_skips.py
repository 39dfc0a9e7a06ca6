"""A task that says "not yet" or "not here" instead of failing, with the reason: the library raises
``FirstFullSetPending`` while a new group is within its grace (``first_full_set``), and says why log shipping
stands down after a failover promoted the standby (``shipping_jobs.stood_down``). One translation each for every
task that waits for them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from airflow.sdk.exceptions import AirflowSkipException

from biztalk_dr.domain.config import GroupConfig
from biztalk_dr.domain.errors import FirstFullSetPending

__all__ = ["skip_while_first_full_set_pending", "skip_when_shipping_stood_down"]


@contextlib.contextmanager
def skip_while_first_full_set_pending() -> Iterator[None]:
    """Inside it, FirstFullSetPending becomes the task's skip, with its reason (what is missing, how long the
    grace still runs)."""
    try:
        yield
    except FirstFullSetPending as waiting:
        raise AirflowSkipException(str(waiting)) from None


def skip_when_shipping_stood_down(cfg: GroupConfig) -> None:
    """The task's skip, with the reason, once dr_failover promoted the standby: shipping into it (or judging what
    it can deliver as a standby) would treat the new primary as a standby."""
    from biztalk_dr.ops import shipping_jobs

    if reason := shipping_jobs.stood_down(cfg):
        raise AirflowSkipException(reason)
