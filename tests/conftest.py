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
SHARED_BACKUPS = ROOT.parent / "shared" / "sqlserver-backups"  # dbatools' appveyor-lab test data (README, Tests)
PRODUCT_ROOTS = ("include/biztalk_dr", "dags", "plugins")  # what ships and runs; never the stand-in


def product_files(*, but: tuple[str, ...] = ()) -> list[Path]:
    """Every Python file of the product (PRODUCT_ROOTS), but those named in ``but``, for tests of its source."""
    return [path for root in PRODUCT_ROOTS for path in sorted((ROOT / root).rglob("*.py")) if path.name not in but]

_airflow_home = tempfile.mkdtemp(prefix="biztalk-dr-airflow-")
atexit.register(shutil.rmtree, _airflow_home, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = _airflow_home
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA"] = "True"
os.environ.setdefault("BIZTALK_DR_CONFIG", str(EXAMPLE_CONFIG))
# the group files' last valid copies (config_fallback): never beside the repository's own files
os.environ["BIZTALK_DR_STATE_DIR"] = os.path.join(_airflow_home, "biztalk-dr-state")


# ---------------------------------------------------------------------------------------------- stand-in
import importlib.util  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import pytest  # noqa: E402

STANDIN_LOGIN = "biztalk_dr_test"


def standin_available() -> bool:
    return all(importlib.util.find_spec(m) is not None
               for m in ("sqlserver_standin.server", "sqlserver_standin.engine"))


def free_port() -> int:
    from sqlserver_standin.launcher import free_port as launcher_free_port

    return launcher_free_port()


@dataclass
class StandinInstance:
    name: str
    port: int
    data_dir: Path
    password: str
    conn_id: str
    process: subprocess.Popen

    def odbc_connection(self, driver: str = "FreeTDS") -> dict:
        return {"conn_type": "odbc", "host": "127.0.0.1", "port": self.port, "login": STANDIN_LOGIN,
                "password": self.password, "extra": {"driver": driver, "TDS_Version": "7.4"}}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_standin(data_dir: Path, name: str, conn_id: str) -> StandinInstance:
    """A stand-in process on a free loopback port, registered as an Airflow connection (env var)."""
    from sqlserver_standin.launcher import start_standin as launch

    password = secrets.token_urlsafe(12)
    started = launch(data_dir, name, free_port(), STANDIN_LOGIN, password)
    instance = StandinInstance(name, started.port, data_dir, password, conn_id, started.process)
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(instance.odbc_connection())
    return instance


@pytest.fixture
def probe_dags(tmp_path, monkeypatch) -> Path:
    """A folder for DAG files a test writes, configured as a second DAG bundle beside dags/ (dag.test() runs
    only DAGs of a configured bundle); the metadata DB migrated."""
    folder = tmp_path / "probe-dags"
    folder.mkdir()
    local = "airflow.dag_processing.bundles.local.LocalDagBundle"
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([
        {"name": "dags-folder", "classpath": local, "kwargs": {}},
        {"name": "probe-dags", "classpath": local, "kwargs": {"path": str(folder)}}]))
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    return folder


@pytest.fixture(scope="session")
def standin_sql(tmp_path_factory):
    """One plain stand-in instance for SQL-level tests (no BizTalk group)."""
    if not standin_available():
        pytest.skip("the SQL Server stand-in is not part of this build")
    instance = start_standin(tmp_path_factory.mktemp("standin-sql"), "STANDIN01", "standin_sql")
    yield instance
    instance.stop()


# ---------------------------------------------------------------------------------------------- real backup files
# Tests that read the real SQL Server backup files skip when the folder is absent (a clone without ../shared).
# Their skips are folded into one line of the short summary that names the folder, instead of one line each.
_BACKUPS_MISSING = (f"the real SQL Server backup files are not in {SHARED_BACKUPS} (dbatools' appveyor-lab test "
                    "data, see the README's Tests section): the tests that read them are skipped")
_NEEDS_BACKUPS = re.compile(rf"{re.escape(str(SHARED_BACKUPS))}|sqlserver-backups|real [\w ]*backups not available")


def needs_backup_files(path: Path = SHARED_BACKUPS) -> pytest.MarkDecorator:
    """``@needs_backup_files()``: skip unless ``path`` (inside the real backup files' folder) exists."""
    return pytest.mark.skipif(not path.exists(), reason=f"{SHARED_BACKUPS} not available")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.skipped and isinstance(report.longrepr, tuple) and _NEEDS_BACKUPS.search(str(report.longrepr[2])):
        report.longrepr = (__file__, _SUMMARY_LINE, f"Skipped: {_BACKUPS_MISSING}")
    return report


_SUMMARY_LINE = sys._getframe().f_lineno  # where the folded skips point


# The fault matrix of issue 15 (tests/dags/fault_matrix.py), gathered and printed by the process that prints the
# run's summary: with pytest-xdist (make test) not the one that ran the tests, and it loads no other conftest.
def pytest_runtest_logreport(report):
    """In pytest-xdist's controller: the rows as the worker that ran the test holds them."""
    if getattr(report, "node", None) is None:  # this process ran the test: it holds the rows already
        return
    for key, rows in report.user_properties:
        if key == "fault_rows":
            for row in rows:
                _fault_matrix().ROWS[row["fault"]] = _fault_matrix().FaultRow(**row)


def pytest_terminal_summary(terminalreporter):
    if _fault_matrix().ROWS:
        terminalreporter.section("fault matrix (issue 15)")
        for line in _fault_matrix().table():
            terminalreporter.write_line(line)


def _fault_matrix():
    from tests.dags import fault_matrix

    return fault_matrix
