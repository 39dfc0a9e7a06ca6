"""``biztalk-dr drill``: a disaster-recovery rehearsal on a stand-in group started for the purpose.

A fresh BizTalk group is seeded on a stand-in primary, with an empty stand-in standby; the real DAGs run
through Airflow (``dag.test()``: the real tasks, hooks and ODBC driver): a full set and log sets,
log shipping, one more log set shipped, then the primary is stopped and ``dr_failover`` runs for real
(not a dry run) with its human steps answered automatically (``OperatorDesk``; UpdateDatabase.vbs is played
by the stand-in's model of it). What happened is measured and checked: every database ONLINE on the new
primary, stopped at one mark, and the new primary's first full backup set taken. Everything lives in a
temporary folder.

It lives beside the stand-in, not in the product: biztalk_dr never imports the stand-in. ``biztalk-dr drill``
finds it through the ``biztalk_dr.drill`` entry point this package declares (pyproject.toml).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlserver_standin.operator_desk import Action, OperatorDesk

__all__ = ["check_prerequisites", "quiet_repeated_waits", "run_drill", "standin_operator"]

_REPO = Path(__file__).resolve().parents[2]
_LOGIN = "drill_admin"
_FAILOVER_GROUPS = ("assess", "stop_source", "recover_databases", "repoint_biztalk", "enable_processing",
                    "protect_new_primary")


def check_prerequisites() -> None:
    """What the drill needs, before it starts anything (PrerequisiteMissing: one line, what and how): unixODBC
    and the FreeTDS driver its stand-in connections name, the stand-in and Airflow in this installation."""
    import importlib.util

    from biztalk_dr.edge.prerequisites import Missing, check_driver, check_driver_manager, require
    from sqlserver_standin.launcher import odbc_connection

    missing = [Missing(f"the Python package {name} is not installed", "run `make install` in a checkout of "
                                                                      "biztalk-dr (the drill runs from one)")
               for name in ("airflow", "sqlserver_standin") if importlib.util.find_spec(name) is None]
    driver = odbc_connection(0, "", "")["extra"]["driver"]
    require(missing, check_driver_manager(), check_driver(driver, "which the drill's stand-in connections use"))


class _OncePerWait(logging.Filter):
    """Lets a waiting message of dag.test() through once, not every second it repeats: "No tasks to run"
    while a task waits for its retry, "Waiting for Human-in-the-loop input" while a person decides."""

    _WAITS = ("No tasks to run", "Waiting for Human-in-the-loop input")

    def __init__(self) -> None:
        super().__init__()
        self._last = ""

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(self._WAITS):
            return True
        message = record.getMessage()
        if message == self._last:
            return False
        self._last = message
        return True


@contextlib.contextmanager
def quiet_repeated_waits():  # noqa: ANN201 - a context manager
    """While dag.test() runs: each of its waiting messages logged once per wait (see _OncePerWait)."""
    import airflow.sdk.definitions.dag as loop_module

    logger = logging.getLogger(loop_module.__name__)
    once = _OncePerWait()
    logger.addFilter(once)
    try:
        yield
    finally:
        logger.removeFilter(once)


def _prepare(root: Path) -> Path:
    """The group's config in ``root``; Airflow's home there too (set before Airflow is imported)."""
    from sqlserver_standin.launcher import render_group_config

    config = render_group_config(_REPO / "include" / "config" / "standin_group.yaml", root, root / "group.yaml")
    os.environ.update({
        "AIRFLOW_HOME": str(root / "airflow"), "AIRFLOW__CORE__DAGS_FOLDER": str(_REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA": "True",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING", "BIZTALK_DR_CONFIG": str(config),
        "BIZTALK_DR_STATE_DIR": str(root / "state"),
    })
    os.environ.pop("BIZTALK_DR_ALERT_CONN_ID", None)  # a rehearsal pages nobody
    migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True)
    if migrate.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed in {root / 'airflow'}: {migrate.stderr.strip()[-500:]}")
    return config


def standin_operator(cfg, execute_on_new_primary: Callable[[str], object]) -> dict[str, Action]:
    """The drill's person at the operator desk: approves every human step and, where the step is
    UpdateDatabase.vbs, first runs the stand-in's model of it with the run's SampleUpdateInfo.xml on the new
    primary (a stand-in group has no BizTalk server to run the script)."""
    from biztalk_dr.ops.failover_jobs import run_folder
    from sqlserver_standin.biztalk_scripts import run_update_database

    def update_database(ti) -> str:
        xml = (run_folder(cfg, ti.run_id) / "SampleUpdateInfo.xml").read_text(encoding="utf-8")
        run_update_database(xml, execute_on_new_primary)
        return "Approve"

    return {r"repoint_biztalk\.update_database": update_database}


def _on_standby(statement: str) -> None:
    from biztalk_dr.ops.sqlserver import SqlServer

    with SqlServer("biztalk_standby") as server:
        server.run(statement)


def _run(name: str, **conf: Any):
    from airflow.dag_processing.dagbag import DagBag

    from biztalk_dr.ops.config_files import load_config

    dag = DagBag(dag_folder=str(_REPO / "dags" / f"{name}.py")).dags[name]
    dag.deadline = None  # deadlines are the scheduler's; dag.test() cannot look them up (Airflow 3.3)
    if name != "dr_failover":
        with quiet_repeated_waits():
            return dag.test(run_conf=conf or None)
    with OperatorDesk(name, standin_operator(load_config(), _on_standby)) as desk, quiet_repeated_waits():
        run = dag.test(run_conf=conf or None)
    if desk.errors:
        raise RuntimeError("the operator desk could not answer: " + "; ".join(desk.errors))
    return run


def run_drill() -> dict[str, Any]:
    """Rehearse a disaster failover; the report (``result`` pass or fail with the reasons). Raises
    PrerequisiteMissing, before anything starts, when the machine lacks what the drill needs."""
    check_prerequisites()
    root = Path(tempfile.mkdtemp(prefix="biztalk-dr-drill-"))
    phases: list[dict[str, Any]] = []
    problems: list[str] = []
    instances = []
    try:
        config = _prepare(root)
        from biztalk_dr.ops.config_files import load_config
        from sqlserver_standin.launcher import connection_env, free_port, start_standin
        from sqlserver_standin.seed import prepare_dr_instance, seed_biztalk_group

        cfg = load_config(config)
        seed_biztalk_group(root / "primary", cfg, instance_name="SQLPRD01")
        prepare_dr_instance(root / "standby", instance_name="SQLDR01")
        password = secrets.token_urlsafe(16)
        for site, name, conn_id in (("primary", "SQLPRD01", "biztalk_primary"), ("standby", "SQLDR01", "biztalk_standby")):
            instance = start_standin(root / site, name, free_port(), _LOGIN, password)
            instances.append(instance)
            key, value = connection_env(conn_id, instance)
            os.environ[key] = value
        primary, standby = instances

        def phase(name: str, dags: list[str]) -> None:
            started = time.perf_counter()
            for dag_id in dags:
                run = _run(dag_id)
                if run.state != "success":
                    problems.append(f"{name}: {dag_id} ended {run.state}")
            phases.append({"name": name, "seconds": round(time.perf_counter() - started, 3)})

        phase("backup sets (full, 2 marked log sets)", ["dr_full_backup", "dr_log_backup", "dr_log_backup"])
        phase("log shipping", ["dr_log_shipping"])
        phase("last log set before the disaster, shipped", ["dr_log_backup", "dr_log_shipping"])
        primary.stop()  # the primary site is lost
        disaster = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        started = time.perf_counter()
        run = _run("dr_failover", mode="disaster", dry_run=False, confirm_group=cfg.group.name)
        if run.state != "success":
            problems.append(f"dr_failover ended {run.state}")
        phases += _failover_phases(run)
        phases.append({"name": "failover in all", "seconds": round(time.perf_counter() - started, 3)})
        from biztalk_dr.ops.site_roles import read_roles

        roles = read_roles(cfg.sites.standby.landing_dir)  # what the failover recorded: the mark, its time
        mark = roles.mark
        databases = _databases(standby, [d.name for d in cfg.databases])
        for db in databases:
            if db["state"] != "ONLINE" or db["stop_at_mark_name"] != mark:
                problems.append(f"{db['name']}: {db['state']} at mark {db['stop_at_mark_name']!r}, expected ONLINE at "
                                f"{mark!r}")
        set_time = dt.datetime.fromisoformat(roles.set_time) if roles.set_time else None
        return {"result": "fail" if problems else "pass", "mark": mark,
                "data_loss_seconds": round((disaster - set_time).total_seconds()) if set_time else None,
                "phases": phases, "databases": databases, "problems": problems}
    except Exception as exc:  # a drill reports, it does not crash
        return {"result": "fail", "mark": None, "data_loss_seconds": None, "phases": phases, "databases": [],
                "problems": [*problems, f"{type(exc).__name__}: {exc}"]}
    finally:
        for instance in instances:
            instance.stop()
        shutil.rmtree(root, ignore_errors=True)


def _failover_phases(run) -> list[dict[str, Any]]:
    """Each runbook phase's measured time: first task start to last task end in its task group."""
    spans: dict[str, list[dt.datetime]] = {}
    for ti in run.get_task_instances():
        group = ti.task_id.split(".", 1)[0] if "." in ti.task_id else ti.task_id
        if ti.start_date and ti.end_date:
            spans.setdefault(group, []).extend([ti.start_date, ti.end_date])
    order = [*_FAILOVER_GROUPS, "write_failover_timeline"]
    return [{"name": f"failover: {name}", "seconds": round((max(spans[name]) - min(spans[name])).total_seconds(), 3)}
            for name in order if name in spans]


def _databases(standby, names: list[str]) -> list[dict[str, Any]]:
    from biztalk_dr.domain import tsql
    from biztalk_dr.ops.sqlserver import SqlServer

    out = []
    with SqlServer("biztalk_standby") as server:
        states = {str(r["name"]): str(r["state_desc"]) for r in server.query(tsql.database_states())}
        for name in names:
            rows = server.query(tsql.last_stop_at_mark(name))
            out.append({"name": name, "state": states.get(name, "MISSING"),
                        "stop_at_mark_name": rows[0]["stop_at_mark_name"] if rows else None})
    return out
