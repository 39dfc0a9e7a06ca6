"""Start stand-in SQL Server processes and describe them as Airflow connections: shared by `make run`
(scripts/run_local.py) and `biztalk-dr drill`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sqlserver_standin.cli import PASSWORD_ENV_VAR

__all__ = ["StandinProcess", "GROUP_FOLDERS", "connection_env", "free_port", "odbc_connection", "render_group_config",
           "start_standin", "stop_all"]

GROUP_FOLDERS = ("backups", "landing", "standby-data", "validation-data", "standby-backups")


@dataclass
class StandinProcess:
    name: str
    port: int
    data_dir: Path
    login: str
    password: str
    process: subprocess.Popen

    def connection(self) -> dict:
        return odbc_connection(self.port, self.login, self.password)

    def stop(self) -> None:
        stop_all([self.process])


def render_group_config(template: Path, root: Path, target: Path) -> Path:
    """The demo group's configuration (``template`` with @VAR@ = ``root``) written to ``target``, and the
    folders it names under ``root`` created."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(Path(template).read_text().replace("@VAR@", str(root)))
    for folder in GROUP_FOLDERS:
        (root / folder).mkdir(parents=True, exist_ok=True)
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def odbc_connection(port: int, login: str, password: str) -> dict:
    """An Airflow ODBC connection (as JSON for AIRFLOW_CONN_*) to a stand-in on this machine, via FreeTDS."""
    return {"conn_type": "odbc", "host": "127.0.0.1", "port": port, "login": login, "password": password,
            "extra": {"driver": "FreeTDS", "TDS_Version": "7.4"}}


def start_standin(data_dir: Path, name: str, port: int, login: str, password: str) -> StandinProcess:
    """A stand-in process serving ``data_dir``, returned once it listens. Its password goes through its
    environment (readable by this user only), never its command line (readable by every user: ps)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sqlserver_standin.cli", "serve", "--data-dir", str(data_dir), "--port", str(port),
         "--name", name, "--login", login],
        env={**os.environ, PASSWORD_ENV_VAR: password},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if "ready" not in line:
        stop_all([proc])
        rest = proc.stdout.read()[-2000:] if proc.stdout else ""
        raise RuntimeError(f"the stand-in {name} did not start: {line.strip()} {rest}".rstrip())
    return StandinProcess(name, port, Path(data_dir), login, password, proc)


def stop_all(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
    deadline = time.monotonic() + 15
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def connection_env(conn_id: str, instance: StandinProcess) -> tuple[str, str]:
    return f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(instance.connection())
