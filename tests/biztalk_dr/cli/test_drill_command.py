"""``biztalk-dr drill --json`` as a team runs it to rehearse: its own process, its own stand-ins and Airflow
home; the whole chain from backups to a real failover, measured and checked."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import standin_available

pytestmark = [pytest.mark.standin, pytest.mark.airflow]


def test_the_drill_passes_and_reports_mark_data_loss_phases_and_databases(tmp_path):
    if not standin_available():
        pytest.skip("the SQL Server stand-in is not part of this build")
    env = {k: v for k, v in __import__("os").environ.items()
           if not k.startswith(("AIRFLOW", "BIZTALK_DR"))}  # the drill sets up its own
    done = subprocess.run([sys.executable, "-m", "biztalk_dr.cli", "drill", "--json"], capture_output=True,
                          text=True, timeout=600, env=env, cwd=tmp_path)
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["result"] == "pass", (report, done.stderr[-3000:])
    assert report["mark"].startswith("BTS_") and 0 <= report["data_loss_seconds"] < 600
    names = [p["name"] for p in report["phases"]]
    assert "failover: recover_databases" in names and "failover in all" in names
    assert all(p["seconds"] >= 0 for p in report["phases"])
    assert len(report["databases"]) == 7
    assert all(d["state"] == "ONLINE" and d["stop_at_mark_name"] == report["mark"] for d in report["databases"])


def test_the_drill_without_the_odbc_driver_fails_at_once_with_one_line(tmp_path):
    """unixODBC told to look for its drivers in an empty folder: as on a machine without FreeTDS. The drill
    used to spend minutes printing "No tasks to run" every second while a task waited for its retry."""
    import os
    import time

    (tmp_path / "odbc").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BIZTALK_DR"))}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "biztalk_dr.cli", "drill"], capture_output=True, text=True,
                          timeout=300, env={**env, "ODBCSYSINI": str(tmp_path / "odbc")}, cwd=tmp_path)
    assert time.monotonic() - started < 60
    assert done.returncode == 2 and done.stdout == "", (done.stdout, done.stderr)
    [line] = done.stderr.splitlines()
    assert line.startswith("biztalk-dr drill: the ODBC driver 'FreeTDS' (which the drill's stand-in connections use) "
                           "cannot be loaded: ")
    assert line.endswith("install FreeTDS's ODBC driver: sudo apt-get install -y tdsodbc (Debian/Ubuntu)")


RETRYING_DAG = '''
import datetime as dt

from airflow.sdk import dag, task


@dag(dag_id="dr_retry_probe", schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False)
def dr_retry_probe():
    @task(retries=1, retry_delay=dt.timedelta(seconds=4))
    def flaky(ti=None) -> int:
        if ti.try_number == 1:
            raise RuntimeError("the first try fails")
        return ti.try_number

    flaky()


dr_retry_probe()
'''


@pytest.mark.airflow
def test_a_task_waiting_for_its_retry_is_logged_once_not_every_second(probe_dags):
    import logging

    from airflow.dag_processing.dagbag import DagBag

    from sqlserver_standin.drill import quiet_repeated_waits

    (probe_dags / "dr_retry_probe.py").write_text(RETRYING_DAG)
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger("airflow.sdk.definitions.dag")  # where dag.test() says it waits
    keep = Keep()
    logger.addHandler(keep)
    try:
        with quiet_repeated_waits():
            run = DagBag(dag_folder=str(probe_dags)).dags["dr_retry_probe"].test()
    finally:
        logger.removeHandler(keep)
    assert run.state == "success"
    waits = [m for m in seen if m.startswith("No tasks to run")]
    assert len(waits) == 1 and "up_for_retry" in waits[0], seen
