"""A task that says "not yet" instead of failing: the library raises ``FirstFullSetPending`` while a new group is
within its grace (``first_full_set``), and the task skips with that reason. One translation for every task
that waits for a new group's first full set."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from airflow.sdk.exceptions import AirflowSkipException

from biztalk_dr.domain.errors import FirstFullSetPending

__all__ = ["skip_while_first_full_set_pending"]


@contextlib.contextmanager
def skip_while_first_full_set_pending() -> Iterator[None]:
    """Inside it, FirstFullSetPending becomes the task's skip, with its reason (what is missing, how long the
    grace still runs)."""
    try:
        yield
    except FirstFullSetPending as waiting:
        raise AirflowSkipException(str(waiting)) from None
