"""What the end-to-end DAG tests share: a seeded stand-in group with a mail sink, and helpers to run a DAG
with ``dag.test()`` and look at its result and at the stand-ins."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sqlserver_standin.launcher import render_group_config
from tests.conftest import ROOT, STANDIN_LOGIN, StandinInstance, standin_available, start_standin
from tests.smtp_sink import smtp_connection, start_smtp_sink

GROUP = ["BizTalkMgmtDb", "BizTalkMsgBoxDb", "BizTalkDTADb", "SSODB", "BizTalkRuleEngineDb", "BAMPrimaryImport",
         "DemoOrders"]


@dataclass
class Group:
    root: Path
    primary: StandinInstance
    mail: object
    standby: StandinInstance | None = None
    validation: StandinInstance | None = None


@contextlib.contextmanager
def running_group(root: Path, *, standby: bool = False, validation: bool = False) -> Iterator[Group]:
    """The demo BizTalk group seeded on a stand-in primary (and empty stand-in standby and validation
    instances), its config as BIZTALK_DR_CONFIG, alerts mailed to a local SMTP sink."""
    if not standin_available():
        pytest.skip("the SQL Server stand-in is not part of this build")
    from biztalk_dr.ops.config_files import load_config
    from sqlserver_standin.seed import prepare_dr_instance, seed_biztalk_group

    config = render_group_config(ROOT / "include" / "config" / "standin_group.yaml", root, root / "group.yaml")
    with open(config, "a", encoding="utf-8") as fh:
        fh.write("\nalerts:\n  smtp: {conn_id: e2e_smtp, to: [biztalk-ops@example.test]}\n")
    cfg = load_config(root / "group.yaml")
    seed_biztalk_group(root / "primary", cfg, instance_name="SQLPRD01")
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    previous = os.environ.get("BIZTALK_DR_CONFIG")
    os.environ["BIZTALK_DR_CONFIG"] = str(root / "group.yaml")
    group = Group(root, start_standin(root / "primary", "SQLPRD01", "biztalk_primary"), start_smtp_sink())
    os.environ["AIRFLOW_CONN_E2E_SMTP"] = json.dumps(smtp_connection(group.mail))
    if standby:
        prepare_dr_instance(root / "standby", instance_name="SQLDR01")
        group.standby = start_standin(root / "standby", "SQLDR01", "biztalk_standby")
    if validation:
        group.validation = start_standin(root / "validation", "SQLVAL01", "biztalk_validation")
    try:
        yield group
    finally:
        group.mail.stop()
        for instance in (group.primary, group.standby, group.validation):
            if instance is not None:
                instance.stop()
        if previous is None:
            os.environ.pop("BIZTALK_DR_CONFIG", None)
        else:
            os.environ["BIZTALK_DR_CONFIG"] = previous


def dag_named(name: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / f"{name}.py"))
    assert bag.import_errors == {}
    dag = bag.dags[name]
    # Airflow 3.3's dag.test() looks the DAG's deadline alerts up by id in the metadata DB, where an
    # unscheduled test run never stored them (AttributeError 'dict' has no 'hex' when a run succeeds).
    # Deadlines are a scheduler feature; their wiring is checked in test_dag_shapes.
    dag.deadline = None
    return dag


def run_dag(name: str, **conf):
    """One ``dag.test()`` run of the named DAG with ``conf`` as its trigger form: (the run, its task states)."""
    from sqlserver_standin.drill import quiet_repeated_waits

    with quiet_repeated_waits():  # a task waiting for its retry: said once, not every second
        run = dag_named(name).test(run_conf=conf or None)
    return run, states(run)


def run_failover(group: Group, actions: dict | None = None, logical_date=None, **conf):
    """One ``dr_failover`` run with its human steps answered by the operator desk (every step approved and
    UpdateDatabase.vbs played by the stand-in's model on the standby, unless ``actions`` says otherwise):
    (the run, its task states, what the desk answered)."""
    from biztalk_dr.ops.config_files import load_config
    from sqlserver_standin.drill import standin_operator
    from sqlserver_standin.operator_desk import OperatorDesk

    desk_actions = {**standin_operator(load_config(), lambda sql: query(group.standby, sql)), **(actions or {})}
    from sqlserver_standin.drill import quiet_repeated_waits

    with OperatorDesk("dr_failover", desk_actions, poll_seconds=0.1) as desk, _answers_seen_sooner(), \
            quiet_repeated_waits():
        run = dag_named("dr_failover").test(run_conf=conf, logical_date=logical_date)
    assert not desk.errors, desk.errors
    return run, states(run), desk.answers


@contextlib.contextmanager
def _answers_seen_sooner() -> Iterator[None]:
    """dag.test() looks for a recorded human answer once a second; in tests, ten times a second (seven human
    steps per failover run, a dozen runs per module). Only dag.test()'s own waits are shortened."""
    import time

    import airflow.sdk.definitions.dag as loop_module

    real = time.sleep
    loop = str(Path(loop_module.__file__))

    def sleep(seconds: float) -> None:
        real(min(seconds, 0.1) if sys._getframe(1).f_code.co_filename == loop else seconds)

    time.sleep = sleep
    try:
        yield
    finally:
        time.sleep = real


def states(run) -> dict[str, str]:
    """Task states by task id; a mapped task's boxes as ``task_id[database]`` (its rendered map index)."""
    return {ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.rendered_map_index}]": ti.state
            for ti in run.get_task_instances()}


def query(instance: StandinInstance, sql: str) -> list[tuple]:
    import pyodbc

    from tests.sqlserver_standin.tds.conftest import odbc_connection_string

    conn = pyodbc.connect(odbc_connection_string("freetds", instance.port, STANDIN_LOGIN, instance.password),
                          autocommit=True)
    try:
        cursor = conn.cursor().execute(sql)
        return [tuple(r) for r in cursor.fetchall()] if cursor.description else []
    finally:
        conn.close()


def asset_events() -> list[dict]:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        return [e.extra for e in session.query(AssetEvent).order_by(AssetEvent.id)]
