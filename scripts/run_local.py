"""`make run`: a whole DR setup on one machine, for trying biztalk-dr out.

Starts three SQL Server stand-ins (primary with a seeded BizTalk group, standby, validation) when the
stand-in is installed, writes a group configuration for them under var/, defines the Airflow
connections as environment variables (the stand-ins' password is generated per machine and kept in
var/, never in the repository), and runs `airflow standalone` with this project's DAGs. Ctrl-C stops
everything.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var"
API_PORT = int(os.environ.get("BIZTALK_DR_API_PORT", "8080"))
INSTANCES = {  # site -> (port, @@SERVERNAME)
    "primary": (14331, "SQLPRD01"),
    "standby": (14332, "SQLDR01"),
    "validation": (14333, "SQLVAL01"),
}
LOGIN = "biztalk_dr"


def _password() -> str:
    path = VAR / "standin" / "password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(18))
        path.chmod(0o600)
    return path.read_text().strip()


def _standin_available() -> bool:
    return all(importlib.util.find_spec(m) is not None
               for m in ("sqlserver_standin.server", "sqlserver_standin.engine", "sqlserver_standin.seed"))


def _render_config() -> Path:
    from sqlserver_standin.launcher import render_group_config

    return render_group_config(ROOT / "include" / "config" / "standin_group.yaml", VAR, VAR / "config" / "group.yaml")


def _start_standins(password: str, procs: list[subprocess.Popen]) -> None:
    from biztalk_dr.config import load_config
    from sqlserver_standin.launcher import start_standin
    from sqlserver_standin.seed import prepare_dr_instance, seed_biztalk_group

    cfg = load_config(VAR / "config" / "group.yaml")
    for site, (port, name) in INSTANCES.items():
        data_dir = VAR / "standin" / site
        if not (data_dir / ".seeded").exists():
            if site == "primary":
                seed_biztalk_group(data_dir, cfg, instance_name=name)
            else:
                prepare_dr_instance(data_dir, instance_name=name)  # the group's logins, as DR instances have them
            (data_dir / ".seeded").touch()
        try:
            instance = start_standin(data_dir, name, port, LOGIN, password)
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from None
        procs.append(instance.process)
        print(f"  {site:10} SQL Server stand-in {name} on 127.0.0.1:{port}")


def _connections(password: str) -> dict[str, str]:
    from sqlserver_standin.launcher import odbc_connection

    return {f"AIRFLOW_CONN_BIZTALK_{site.upper()}": json.dumps(odbc_connection(port, LOGIN, password))
            for site, (port, _name) in INSTANCES.items()}


def _wait_healthy(timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{API_PORT}/api/v2/monitor/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(2)
    raise SystemExit(f"Airflow did not become healthy within {timeout:.0f} s; see {VAR / 'airflow'}/*.log")


def _stop(procs: list[subprocess.Popen]) -> None:
    from sqlserver_standin.launcher import stop_all

    stop_all(procs)


def main() -> int:
    procs: list[subprocess.Popen] = []
    password = _password()
    config = _render_config()
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(VAR / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__API__PORT": str(API_PORT),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{API_PORT}",
        "AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA": "True",
        "BIZTALK_DR_CONFIG": str(config),
    })
    env.update(_connections(password))
    try:
        if _standin_available():
            print("Starting the SQL Server stand-ins (a BizTalk group on the primary; standby databases "
                  "are seeded by log shipping):")
            _start_standins(password, procs)
        else:
            print("The SQL Server stand-in is not part of this build yet: Airflow starts with the DAGs only, "
                  "and their SQL tasks will fail to connect.")
        print("Starting Airflow (standalone: SQLite, LocalExecutor) ...")
        airflow = subprocess.Popen([str(Path(sys.executable).parent / "airflow"), "standalone"], env=env,
                                   stdout=open(VAR / "airflow.log", "a"), stderr=subprocess.STDOUT,
                                   start_new_session=True)
        procs.append(airflow)
        _wait_healthy()
        passwords = VAR / "airflow" / "simple_auth_manager_passwords.json.generated"
        login = json.loads(passwords.read_text()) if passwords.exists() else {}
        print(f"\nAirflow UI: http://127.0.0.1:{API_PORT}   login: admin   password: {login.get('admin', '(see ' + str(passwords) + ')')}")
        print(f"Group configuration: {config}\nLogs: {VAR / 'airflow.log'}\nCtrl-C stops everything.")
        while all(p.poll() is None for p in procs):
            time.sleep(1)
        failed = next(p for p in procs if p.poll() is not None)
        print(f"a process stopped (exit {failed.returncode}); stopping the rest")
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...")
        return 0
    finally:
        _stop(procs)


if __name__ == "__main__":
    sys.exit(main())
