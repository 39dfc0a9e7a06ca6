"""`make run` as a new user and an operator meet it: it refuses a taken port naming the process, says the login
only when its own Airflow is up, runs the first cycle of every DAG, reports a component that dies by name, gives
a second terminal its environment, never shows the stand-ins' password on a command line, and leaves nothing
behind on SIGINT, SIGTERM or SIGHUP — at any moment, Airflow still starting included."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from tests.conftest import ROOT, standin_available
from tests.scripts.make_run import health, start_make_run

pytestmark = [pytest.mark.standin, pytest.mark.airflow]

AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


@pytest.fixture(scope="module")
def seeded_var(tmp_path_factory):
    """One make run folder for the tests that stop it early: the group is seeded once between them."""
    if not standin_available():
        pytest.skip("the SQL Server stand-in is not part of this build")
    return tmp_path_factory.mktemp("make-run")


def test_a_taken_port_is_refused_naming_the_process_that_holds_it(seeded_var):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        run = start_make_run(seeded_var, env={"BIZTALK_DR_API_PORT": str(taken)})
        assert run.process.wait(timeout=120) == 2
        run.reader.join(timeout=10)
    out = run.output()
    me = psutil.Process()
    assert f"port {taken} (the Airflow API server) is in use by pid {me.pid}: " in out, out
    assert shlex.join(me.cmdline())[:300] in out  # its command line, as ps shows it
    assert "BIZTALK_DR_API_PORT" in out and "Airflow UI" not in out


STOPS = {  # how make run is stopped -> (started through make?, what the test does, what make run says)
    "SIGINT to make run": (False, "SIGINT", "make run: SIGINT: stopping everything it started"),
    "SIGHUP to its process group (a closed terminal)": (True, "SIGHUP-group", "make run: SIGHUP: stopping everything"),
    "make killed with SIGKILL": (True, "SIGKILL-make", "make (or the terminal that started it) is gone: stopping"),
    "make run killed with SIGKILL, then make stop": (False, "SIGKILL-run-local", None),
}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("how", STOPS)
def test_a_stop_while_airflow_starts_leaves_no_process_behind(seeded_var, how):
    via_make, action, said = STOPS[how]
    run = start_make_run(seeded_var, via_make=via_make)
    run.wait_for(r"^Starting Airflow", timeout=300)
    # the worst moment: Airflow's components starting, each forking its own workers
    run.wait_for_processes(lambda cmds: sum(any(f"airflow {c}" in cmd or f"airflow {c.replace('-', '_')}" in cmd
                                                for cmd in cmds) for c in AIRFLOW_COMPONENTS) == 4, timeout=300)
    if action == "SIGINT":
        survivors = run.stop_with(signal.SIGINT)
    elif action == "SIGHUP-group":
        survivors = run.stop_with(signal.SIGHUP, to_group=True)
    elif action == "SIGKILL-make":
        survivors = run.stop_with(signal.SIGKILL, wait_for_run_local=True)
    else:  # nothing can catch SIGKILL: `make stop` stops the process groups make run recorded
        survivors = run.stop_with(signal.SIGKILL)
        assert survivors, "the components outlive a make run killed with SIGKILL"
        stop = subprocess.run([sys.executable, "scripts/run_local.py", "--stop"], cwd=ROOT, capture_output=True,
                              text=True, timeout=120, env={**os.environ, "BIZTALK_DR_VAR": str(seeded_var)})
        assert "process group(s) of an earlier make run stopped" in stop.stdout, stop.stdout + stop.stderr
        survivors = run.survivors(timeout=30)
    stopped = time.time()
    assert survivors == [], f"{survivors}\n{run.output()}"
    run.reader.join(timeout=10)
    if said:
        assert said in run.output() and "make run: stopped" in run.output()
    assert "Airflow UI" not in run.output()
    assert _released((run.api_port, *run.standin_ports), since=stopped) == []


@pytest.mark.timeout(1200)
def test_the_first_cycle_of_a_new_group(tmp_path):
    """make run's first cycle, driven through make itself: every scheduled DAG's first run is green, each task
    of it succeeded or skipped — and a task that skipped itself said why (a new group waits for its first full
    set: that is not an incident)."""
    if not standin_available():
        pytest.skip("the SQL Server stand-in is not part of this build")
    run = start_make_run(tmp_path / "var", via_make=True)
    try:
        ui = run.wait_for(r"^Airflow UI: ", timeout=480)
        # said only once its own API server answers and every job heartbeats
        status = health(run.api_port)
        assert status and all(status[k]["status"] == "healthy" for k in ("scheduler", "dag_processor", "triggerer"))
        assert f"http://127.0.0.1:{run.api_port}" in ui and "login: admin   password: " in ui

        password = (run.var / "standin" / "password").read_text().strip()
        leaked = [cmd for _pid, _t, cmd in run.started() if password in cmd]
        assert leaked == []  # the stand-ins took it from their environment

        env_sh = run.var / "env.sh"
        assert env_sh.stat().st_mode & 0o777 == 0o600
        second = subprocess.run(["bash", "-c", f"source {env_sh} && biztalk-dr status --json"], capture_output=True,
                                text=True, timeout=180, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        assert second.returncode in (0, 1), second.stderr[-2000:]
        assert json.loads(second.stdout)["group"] == "DEMO-BTS"

        expected = {"dr_full_backup", "dr_log_backup", "dr_log_shipping", "dr_health_check", "dr_restore_validation",
                    "dr_failover", "dr_standby_reseed", "dr_standby_retention"}
        assert run.dag_ids(expected) >= expected
        assert run.api("/api/v2/importErrors")["total_entries"] == 0
        first = run.first_runs()
        states = {dag_id: {k: t["state"] for k, t in r["tasks"].items()} for dag_id, r in first.items()}
        assert {dag_id: r["state"] for dag_id, r in first.items()} == dict.fromkeys(first, "success"), states
        assert {s for tasks in states.values() for s in tasks.values()} <= {"success", "skipped"}, states
        reasons = {dag_id: run.skip_reasons(dag_id, r) for dag_id, r in first.items()}
        assert all(why for by_task in reasons.values() for why in by_task.values()), reasons
        assert reasons["dr_log_shipping"]["check_data_loss_window"].startswith("waiting for the first full set: ")

        # a component that dies is reported by name, and the rest goes on
        run.component(r"standin/validation").kill()
        run.wait_for(r"make run: the stand-in validation \(SQLVAL01, 127\.0\.0\.1:\d+\) \(pid \d+\) stopped \(killed "
                     r"by SIGKILL\)", timeout=60)
        assert "To start it again with the same data" in run.output()
        run.component(r"airflow triggerer$").kill()
        run.wait_for(r"make run: the triggerer \(pid \d+\) stopped \(killed by SIGKILL\)", timeout=60)
        assert health(run.api_port) is not None  # the API server still answers
    finally:
        survivors = run.stop_with(signal.SIGTERM) if run.process.poll() is None else []
        stopped = time.time()
    assert survivors == [], f"{survivors}\n{run.output()}"
    assert "make run: SIGTERM: stopping everything it started" in run.output()
    assert _released((run.api_port, *run.standin_ports), since=stopped) == []


def _released(ports, since: float) -> list[str]:
    """The listeners on ``ports`` that could be make run's: any process there born before ``since`` (when make
    run had stopped). On a shared machine another test may take a released port at once: that one is younger."""
    held = []
    for port in ports:
        for conn in psutil.net_connections(kind="inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                try:
                    proc = psutil.Process(conn.pid)
                    if proc.create_time() < since:
                        held.append(f"port {port}: pid {conn.pid} {' '.join(proc.cmdline())}")
                except psutil.Error:
                    pass
    return held
