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
