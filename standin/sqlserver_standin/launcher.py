"""Start stand-in SQL Server processes and describe them as Airflow connections: shared by `make run`
(scripts/run_local.py) and `biztalk-dr drill`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
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


def render_group_config(template: Path, root: Path, target: Path, replace: dict[str, str] | None = None) -> Path:
    """The demo group's configuration (``template`` with @VAR@ = ``root``, and each text of ``replace`` by its
    value: another group's server names, say) written to ``target``, and the folders it names under ``root``
    created. ValueError when a text of ``replace`` is not in the template (it changed: the caller must too)."""
    text = Path(template).read_text()
    for old, new in (replace or {}).items():
        if old not in text:
            raise ValueError(f"{template}: {old!r} is not in the template any more; update what replaces it")
        text = text.replace(old, new)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text.replace("@VAR@", str(root)))
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


def start_standin(data_dir: Path, name: str, port: int, login: str, password: str, *,
                  log: Path | None = None) -> StandinProcess:
    """A stand-in process serving ``data_dir``, returned once it listens. Its password goes through its
    environment (readable by this user only), never its command line (readable by every user: ps). Its
    output goes to ``log`` (appended), else it is read and dropped after the ready line (a pipe nobody reads
    fills up and stops the process)."""
    start = log.stat().st_size if log is not None and log.exists() else 0  # where this start's output begins
    out = open(log, "a", encoding="utf-8") if log is not None else subprocess.PIPE  # noqa: SIM115 - kept by Popen
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "sqlserver_standin.cli", "serve", "--data-dir", str(data_dir), "--port", str(port),
         "--name", name, "--login", login],
        env={**os.environ, PASSWORD_ENV_VAR: password},
        stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    if log is not None:
        out.close()  # the child has its own descriptor
    line = _ready_line(proc, log, start)
    if "ready" not in line:
        stop_all([proc])
        rest = proc.stdout.read()[-2000:] if proc.stdout else log.read_text(errors="replace")[-2000:] if log else ""
        raise RuntimeError(f"the stand-in {name} did not start: {line.strip()} {rest}".rstrip())
    if proc.stdout is not None:
        threading.Thread(target=_drain, args=(proc.stdout,), name=f"standin-{name}-output", daemon=True).start()
    return StandinProcess(name, port, Path(data_dir), login, password, proc)


def _ready_line(proc: subprocess.Popen, log: Path | None, start: int, timeout: float = 120) -> str:
    """The stand-in's first line: "ready on host:port", or what it said before it stopped."""
    if proc.stdout is not None:
        return proc.stdout.readline()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log, encoding="utf-8", errors="replace") as fh:
            fh.seek(start)
            text = fh.read()
        if "ready on " in text:
            return next(line for line in text.splitlines() if "ready on " in line)
        if proc.poll() is not None:
            return text.strip().splitlines()[-1] if text.strip() else f"exit status {proc.returncode}"
        time.sleep(0.05)
    return f"no ready line within {timeout:.0f} s"


def _drain(stream) -> None:  # noqa: ANN001 - a text stream
    for _line in stream:
        pass


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
