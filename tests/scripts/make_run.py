"""Drives `make run` (or scripts/run_local.py) as a user does, on free ports and a folder of its own: its output,
its REST API, the first runs of the DAGs, the processes it started, and how it stops."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.conftest import ROOT, free_port

SCHEDULED_DAGS = ("dr_full_backup", "dr_log_backup", "dr_log_shipping", "dr_health_check", "dr_restore_validation",
                  "dr_standby_retention")
FINISHED = {"success", "failed"}


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        if (port := free_port()) not in ports:
            ports.append(port)
    return ports


@dataclass
class MakeRun:
    process: subprocess.Popen  # make, or run_local.py itself
    var: Path
    api_port: int
    standin_ports: list[int]
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None
    _token: str | None = None
    _snapshot: list[tuple[int, float, str]] = field(default_factory=list)

    # -- output ------------------------------------------------------------------------------------
    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> str:
        """The first output line matching ``pattern``; fails with the output when make run stopped first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stopped = self.process.poll() is not None
            if stopped:
                self.reader.join(timeout=10)  # its last lines
            if found := next((line for line in list(self.lines) if re.search(pattern, line)), None):
                return found
            assert not stopped, f"make run stopped (status {self.process.returncode}):\n{self.output()}"
            time.sleep(0.5)
        raise AssertionError(f"no line matching {pattern!r} within {timeout:.0f} s:\n{self.output()}")

    # -- processes ---------------------------------------------------------------------------------
    def run_local(self) -> psutil.Process:
        root = psutil.Process(self.process.pid)
        if "run_local.py" in " ".join(root.cmdline()):
            return root
        return next(p for p in root.children() if "run_local.py" in " ".join(p.cmdline()))

    def started(self) -> list[tuple[int, float, str]]:
        """(pid, start time, command line) of every process under make run now."""
        out = []
        for proc in self.run_local().children(recursive=True):
            try:
                out.append((proc.pid, proc.create_time(), " ".join(proc.cmdline())))
            except psutil.Error:
                pass
        return out

    def component(self, pattern: str) -> psutil.Process:
        """The process make run started itself (not one of its workers) whose command line matches."""
        return next(p for p in self.run_local().children() if re.search(pattern, " ".join(p.cmdline())))

    def wait_for_processes(self, condition: Callable[[list[str]], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition([cmd for _pid, _t, cmd in self.started()]):
            assert time.monotonic() < deadline, f"processes not seen in time:\n{self.output()}"
            time.sleep(0.2)

    def stop_with(self, sig: signal.Signals, *, to_group: bool = False, wait_for_run_local: bool = False,
                  timeout: float = 120) -> list[str]:
        """Send ``sig`` (to the process started, or its whole process group as a terminal does); wait until it
        (and with ``wait_for_run_local``, run_local.py under make) has exited; returns the command lines of the
        processes make run had started that are still alive."""
        run_local = self.run_local()
        self._snapshot = self.started() + [(run_local.pid, run_local.create_time(), "run_local.py")]
        if to_group:
            os.killpg(os.getpgid(self.process.pid), sig)
        else:
            self.process.send_signal(sig)
        self.process.wait(timeout=timeout)
        if wait_for_run_local:
            with contextlib.suppress(psutil.NoSuchProcess):
                run_local.wait(timeout=timeout)
        return self.survivors(timeout=30 if sig != signal.SIGKILL or wait_for_run_local else 2)

    def survivors(self, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while (alive := _alive(self._snapshot)) and time.monotonic() < deadline:
            time.sleep(0.2)
        return alive

    # -- the REST API ------------------------------------------------------------------------------
    def api(self, path: str, *, method: str = "GET", body: dict | None = None, accept: str = "*/*") -> dict:
        base = f"http://127.0.0.1:{self.api_port}"
        if self._token is None:
            password = json.loads((self.var / "airflow" / "simple_auth_manager_passwords.json.generated")
                                  .read_text())["admin"]
            request = urllib.request.Request(f"{base}/auth/token", method="POST",
                                             data=json.dumps({"username": "admin", "password": password}).encode(),
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as resp:
                self._token = json.loads(resp.read())["access_token"]
        request = urllib.request.Request(f"{base}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": f"Bearer {self._token}",
                                                  "Content-Type": "application/json", "Accept": accept})
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.loads(resp.read())

    def patient_api(self, path: str, **kw) -> dict:
        """``api``, asked again for up to a minute while a loaded machine's API server is slow to answer (an
        HTTP error is an answer, raised at once)."""
        deadline = time.monotonic() + 60
        while True:
            try:
                return self.api(path, **kw)
            except urllib.error.HTTPError:
                raise
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def dag_ids(self, expected: set[str], timeout: float = 180) -> set[str]:
        """The DAGs the API server knows, once ``expected`` are among them (the dag processor parses them after
        it has started) or the time is up."""
        deadline = time.monotonic() + timeout
        while True:
            found = {d["dag_id"] for d in self.api("/api/v2/dags")["dags"]}
            if found >= expected or time.monotonic() > deadline:
                return found
            time.sleep(2)

    def skip_reasons(self, dag_id: str, run: dict) -> dict[str, str]:
        """Each task of ``run`` that ran and skipped itself -> the reason it logged ("" when it gave none); tasks
        skipped without running (their upstream skipped) are not in it."""
        reasons = {}
        for key, ti in run["tasks"].items():
            if ti["state"] != "skipped" or not ti["try_number"]:
                continue
            path = (f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run['dag_run_id'])}/taskInstances/"
                    f"{ti['task_id']}/logs/{ti['try_number']}?map_index={ti['map_index']}")
            content = self.api(path, accept="application/json").get("content") or []
            said = [e.get("reason") or "" for e in content
                    if isinstance(e, dict) and e.get("event") == "Skipping task."]
            reasons[key] = said[-1] if said else ""
        return reasons

    def first_runs(self, dag_ids: tuple[str, ...] = SCHEDULED_DAGS, timeout: float = 420) -> dict[str, dict]:
        """The first run of each DAG once it has finished, with its task instances (``tasks``: task id or
        ``task_id[map index]`` -> {state, note...} as the REST API gives them)."""
        deadline, done = time.monotonic() + timeout, {}
        while time.monotonic() < deadline and len(done) < len(dag_ids):
            for dag_id in dag_ids:
                if dag_id in done:
                    continue
                try:
                    runs = self.api(f"/api/v2/dags/{dag_id}/dagRuns?order_by=run_after&limit=1")["dag_runs"]
                except urllib.error.HTTPError as exc:
                    if exc.code != 404:  # 404: the dag processor has not parsed it yet
                        raise
                    continue
                if runs and runs[0]["state"] in FINISHED:
                    run = runs[0]
                    tis = self.api(f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances?limit=200")
                    run["tasks"] = {t["task_id"] if t["map_index"] < 0 else f"{t['task_id']}[{t['map_index']}]": t
                                    for t in tis["task_instances"]}
                    done[dag_id] = run
            time.sleep(2)
        missing = sorted(set(dag_ids) - set(done))
        assert not missing, f"no finished first run of {missing} within {timeout:.0f} s:\n{self.output()[-3000:]}"
        return done


def _alive(snapshot: list[tuple[int, float, str]]) -> list[str]:
    alive = []
    for pid, created, cmd in snapshot:
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{pid}: {cmd}")
        except psutil.Error:
            pass
    return alive


def start_make_run(var: Path, *, via_make: bool = False, ports: list[int] | None = None,
                   env: dict[str, str] | None = None, celery: bool = False, groups: int = 1) -> MakeRun:
    """``make run`` (via_make) or scripts/run_local.py in a session of its own (so a signal to its process
    group reaches it alone), on free ports, its state in ``var``. ``celery``: make run-celery (its PostgreSQL
    and Redis URLs in ``env``). ``groups``: that many stand-in groups (BIZTALK_DR_GROUPS); ``standin_ports`` is
    then group 1's primary and standby, the validation instance, then each further group's primary and standby."""
    api, worker_log, trigger_log, *rest = ports or free_ports((7 if celery else 6) + 2 * (groups - 1))
    standins = rest[:3] + rest[4 if celery else 3:][:2 * (groups - 1)]
    log_ports = [worker_log, trigger_log, *rest[3:4]] if celery else [worker_log, trigger_log]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BIZTALK_DR"))}
    clean.update({"BIZTALK_DR_VAR": str(var), "BIZTALK_DR_API_PORT": str(api),
                  "BIZTALK_DR_STANDIN_PORTS": ",".join(map(str, standins)),
                  "BIZTALK_DR_LOG_PORTS": ",".join(map(str, log_ports)), "PYTHONUNBUFFERED": "1",
                  **({"BIZTALK_DR_GROUPS": str(groups)} if groups > 1 else {}), **(env or {})})
    target = "run-celery" if celery else "run"
    command = (["make", "-s", "--no-print-directory", target] if via_make
               else [sys.executable, "scripts/run_local.py", *(["--celery"] if celery else [])])
    process = subprocess.Popen(command, cwd=ROOT, env=clean, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    run = MakeRun(process, var, api, standins)
    run.reader = threading.Thread(target=run._read, daemon=True)
    run.reader.start()
    return run


def health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
