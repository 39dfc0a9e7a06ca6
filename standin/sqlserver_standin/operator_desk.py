"""Answering a failover's human steps in-process, as the on-call operator would: for drills and tests.

``dag.test()`` parks a human step in ``awaiting_input`` until a response is recorded in the metadata DB,
as the Airflow UI or the HITL REST API records it. ``OperatorDesk`` watches the run from a helper thread;
for each waiting step it first does the person's work (a callable per task id: for example running the
model of UpdateDatabase.vbs against the stand-in), then records the answer the way the REST API does and
resumes the task. What it answered, and when, is kept for the caller.

It writes Airflow's metadata DB through ``airflow.models`` as the REST API does: that is why it lives beside the
stand-in with the drill, never in the product (biztalk_dr).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OperatorDesk", "Answer", "Action"]

log = logging.getLogger("sqlserver_standin.operator_desk")
Action = Callable[[Any], str]  # gets the task instance; returns "Approve" or "Reject"


@dataclass
class Answer:
    task_id: str
    map_index: int
    option: str
    at: dt.datetime


@dataclass
class OperatorDesk:
    dag_id: str
    actions: Mapping[str, Action] = field(default_factory=dict)  # task-id regex -> action; default: Approve
    user: str = "biztalk-dr drill"
    poll_seconds: float = 0.3
    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"operator-desk-{self.dag_id}", daemon=True)

    def __enter__(self) -> OperatorDesk:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _action(self, task_id: str) -> Action:
        for pattern, action in self.actions.items():
            if re.fullmatch(pattern, task_id):
                return action
        return lambda ti: "Approve"

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self._answer_waiting()
            except Exception as exc:  # noqa: BLE001 - reported to the caller, never kills the run silently
                self.errors.append(f"{type(exc).__name__}: {exc}")
                log.warning("the operator desk could not answer: %s: %s", type(exc).__name__, exc)

    def _answer_waiting(self) -> None:
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.models.trigger import handle_event_submit
        from airflow.triggers.base import TriggerEvent
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import select

        with create_session() as session:
            waiting = session.scalars(select(TaskInstance).where(
                TaskInstance.dag_id == self.dag_id, TaskInstance.state == TaskInstanceState.AWAITING_INPUT)).all()
            for ti in waiting:
                detail = session.scalar(select(HITLDetail).where(HITLDetail.ti_id == ti.id))
                if detail is None:
                    continue
                if detail.response_received:
                    # answered, yet still waiting: dag.test()'s own session can write the parked state back over
                    # the resume (a lost update on SQLite); after a moment, resume it again with the same answer
                    if dt.datetime.now(dt.UTC) - _aware(detail.responded_at) > dt.timedelta(seconds=1):
                        handle_event_submit(TriggerEvent(detail.as_resume_event_payload()), task_instance=ti,
                                            session=session)
                        session.commit()
                    continue
                option = self._action(ti.task_id)(ti)
                detail.responded_by = {"id": self.user, "name": self.user}
                detail.responded_at = dt.datetime.now(dt.UTC)
                detail.chosen_options = [option]
                detail.params_input = {}
                session.add(detail)
                handle_event_submit(TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session)
                session.commit()
                self.answers.append(Answer(ti.task_id, ti.map_index, option, detail.responded_at))


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
