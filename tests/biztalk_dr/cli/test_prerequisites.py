"""Every command checks what it needs first and fails with one line — what is missing and how to provide it,
exit 2, never a traceback — as a new user's terminal outside make run's environment sees it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_CONFIG

ODBC = {"conn_type": "odbc", "host": "127.0.0.1", "port": 9, "login": "biztalk_dr", "password": "not-used-here",
        "extra": {"driver": "FreeTDS", "TDS_Version": "7.4"}}


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``biztalk-dr ARGS`` in a terminal with nothing of make run's: no group file, no connections."""
    clean = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AIRFLOW_HOME": str(tmp_path / "airflow"),
             "BIZTALK_DR_STATE_DIR": str(tmp_path / "state"), **env}
    return subprocess.run([sys.executable, "-m", "biztalk_dr.cli", *args], capture_output=True, text=True,
                          env=clean, cwd=tmp_path, timeout=120)


def one_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == "" and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("command", ["status", "resume-backups"])
def test_outside_make_runs_environment_the_missing_group_file_is_named(tmp_path, command):
    line = one_line(run_cli(tmp_path, command))
    assert "group.yaml: no such file; set BIZTALK_DR_CONFIG to the group's file" in line
    assert "source var/env.sh" in line


def test_status_names_the_connections_that_are_not_defined_and_how_to_define_them(tmp_path):
    line = one_line(run_cli(tmp_path, "status", BIZTALK_DR_CONFIG=str(EXAMPLE_CONFIG),
                            AIRFLOW_CONN_BIZTALK_PRIMARY=json.dumps(ODBC)))
    assert line.startswith("biztalk-dr status: the Airflow connection 'biztalk_standby' is not defined: ")
    assert "AIRFLOW_CONN_BIZTALK_STANDBY" in line and "source var/env.sh" in line


def test_status_names_a_driver_unixodbc_cannot_load_and_the_connections_naming_it(tmp_path):
    conn = json.dumps({**ODBC, "extra": {"driver": "ODBC Driver 18 for SQL Server"}})
    line = one_line(run_cli(tmp_path, "status", BIZTALK_DR_CONFIG=str(EXAMPLE_CONFIG),
                            AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA="True",
                            AIRFLOW_CONN_BIZTALK_PRIMARY=conn, AIRFLOW_CONN_BIZTALK_STANDBY=conn))
    assert line.startswith("biztalk-dr status: the ODBC driver 'ODBC Driver 18 for SQL Server' (named by the Airflow "
                           "connections 'biztalk_primary', 'biztalk_standby') cannot be loaded: ")
    assert "drivers registered with unixODBC: FreeTDS" in line and "msodbcsql18" in line


def test_status_says_a_driver_in_the_extra_needs_the_odbc_providers_setting(tmp_path):
    line = one_line(run_cli(tmp_path, "status", BIZTALK_DR_CONFIG=str(EXAMPLE_CONFIG),
                            AIRFLOW_CONN_BIZTALK_PRIMARY=json.dumps(ODBC), AIRFLOW_CONN_BIZTALK_STANDBY=json.dumps(ODBC)))
    assert line.endswith("ignores by default: set AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA=True")


def test_without_unixodbc_the_driver_manager_is_named_with_its_package(tmp_path):
    """pyodbc cannot load without libodbc.so.2: its import fails as on a machine without unixODBC."""
    block = ("import sys; sys.modules['pyodbc'] = None; from biztalk_dr.cli import main; "
             "sys.exit(main(['status']))")
    done = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "BIZTALK_DR_CONFIG": str(EXAMPLE_CONFIG)})
    line = one_line(done)
    assert "unixODBC's driver manager (libodbc.so.2) is not installed" in line
    assert "sudo apt-get install -y unixodbc" in line


def test_a_group_file_that_is_broken_says_which_version_the_commands_use(tmp_path):
    group = tmp_path / "group.yaml"
    group.write_text(EXAMPLE_CONFIG.read_text())
    env = {"BIZTALK_DR_CONFIG": str(group)}
    assert run_cli(tmp_path, "config", "check", str(group), **env).returncode == 0
    run_cli(tmp_path, "resume-backups", **env)  # reads the file: keeps it as the last valid version
    group.write_text(EXAMPLE_CONFIG.read_text().replace("mark_prefix: BTS ", "mark_prefix: BTSBACKUP"))
    check = run_cli(tmp_path, "config", "check", str(group), **env)
    assert check.returncode == 2 and check.stderr.splitlines()[0].startswith(f"{group}:")
    assert "until it is fixed the DAGs run on its last valid version of " in check.stderr
    resume = run_cli(tmp_path, "resume-backups", **env)
    assert resume.stderr.startswith(f"warning: {group} is broken (1 problem(s): biztalk-dr config check {group}); as "
                                    "the DAGs do, this uses its last valid version of ")
