"""Test-wide settings, applied before anything imports Airflow.

Airflow reads its configuration at import time, so AIRFLOW_HOME (a fresh temporary folder with
its own SQLite metadata database), the DAG folder and the group's config are set here first.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = ROOT / "include" / "config" / "example_group.yaml"
SHARED_BACKUPS = ROOT.parent / "shared" / "sqlserver-backups"

_airflow_home = tempfile.mkdtemp(prefix="biztalk-dr-airflow-")
atexit.register(shutil.rmtree, _airflow_home, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = _airflow_home
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA"] = "True"
os.environ.setdefault("BIZTALK_DR_CONFIG", str(EXAMPLE_CONFIG))
