"""deploy/airflow.env is the ONE source of the production shape's Airflow settings: docker-compose.yml's Airflow
services read it (env_file) and override none of it, and `make run-celery` (scripts/run_local.py) runs on exactly
those values; what each adds is only what is its own (addresses, connections, paths)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "deploy" / "airflow.env"
AIRFLOW = ["airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
           "airflow-worker"]


def _settings() -> dict[str, str]:
    out = {}
    for line in SHARED.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value
    return out


def _celery_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment make run-celery gives every Airflow component, from run_local.py itself."""
    code = ("import json, runpy, sys; sys.argv = ['run_local.py', '--celery']; "
            "m = runpy.run_path('scripts/run_local.py', run_name='run_local'); "
            "print(json.dumps(m['airflow_env'](m['VAR'] / 'config' / 'group.yaml', 'not-a-password')))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")} | (extra or {})
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_shared_file_sets_the_production_engine():
    settings = _settings()
    assert settings["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert all(k.startswith("AIRFLOW__") for k in settings), settings
    # nothing secret, nothing interpolated: the file is read as it is by compose and by make run-celery
    assert not [k for k in settings if any(w in k for w in ("PASSWORD", "SECRET", "CONN", "URL"))], settings
    assert not [v for v in settings.values() if "${" in v or v[:1] in "'\""]


def test_every_airflow_service_of_compose_reads_it_and_overrides_none_of_it(compose):
    settings = _settings()
    for name in AIRFLOW:
        service = compose["services"][name]
        assert service["env_file"] == ["deploy/airflow.env"], name
        assert not set(settings) & set(service["environment"]), (name, set(settings) & set(service["environment"]))


def test_make_run_celery_runs_on_exactly_those_settings():
    env = _celery_env()
    settings = _settings()
    assert {k: env.get(k) for k in settings} == settings
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")


def test_make_run_celery_takes_its_database_and_broker_from_the_environment():
    env = _celery_env({"BIZTALK_DR_POSTGRES_URL": "postgresql+psycopg2://dr@db.example.test:6543/drmeta",
                       "BIZTALK_DR_REDIS_URL": "redis://broker.example.test:6380/7"})
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://dr@db.example.test:6543/drmeta"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql://dr@db.example.test:6543/drmeta"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://broker.example.test:6380/7"


@pytest.mark.parametrize("service,url,said", [
    ("PostgreSQL", {"BIZTALK_DR_POSTGRES_URL": "postgresql+psycopg2://postgres@127.0.0.1:{port}/x"},
     "make run-celery: cannot start: PostgreSQL is not reachable at 127.0.0.1:{port} as postgres (BIZTALK_DR_POSTGRES_URL)"),
    ("PostgreSQL user", {"BIZTALK_DR_POSTGRES_URL": "postgresql+psycopg2://no_such_role_{port}@127.0.0.1:5432/x"},
     "make run-celery: cannot start: PostgreSQL at 127.0.0.1:5432 answers but refused no_such_role_{port} or "
     "database x (BIZTALK_DR_POSTGRES_URL)"),
    ("Redis", {"BIZTALK_DR_REDIS_URL": "redis://:not-shown@127.0.0.1:{port}/0"},
     "make run-celery: cannot start: Redis is not reachable at redis://:***@127.0.0.1:{port}/0 (BIZTALK_DR_REDIS_URL)"),
])
def test_an_unreachable_service_is_named_in_one_line_and_nothing_starts(tmp_path, service, url, said):
    from tests.conftest import free_port

    if service != "PostgreSQL" and _postgres_missing():
        pytest.skip("PostgreSQL does not answer at 127.0.0.1:5432: this case needs it")
    port = free_port()  # nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "BIZTALK_DR"))}
    env |= {"BIZTALK_DR_VAR": str(tmp_path / "var"), "BIZTALK_DR_POSTGRES_URL":
            "postgresql+psycopg2://postgres@127.0.0.1:5432/biztalk_dr_unreachable_test"}
    env |= {k: v.format(port=port) for k, v in url.items()}
    ports = ",".join(str(free_port()) for _ in range(3))
    env |= {"BIZTALK_DR_API_PORT": str(free_port()), "BIZTALK_DR_STANDIN_PORTS": ports, "BIZTALK_DR_LOG_PORTS":
            ",".join(str(free_port()) for _ in range(3))}
    done = subprocess.run([sys.executable, "scripts/run_local.py", "--celery"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env)
    lines = [line for line in done.stdout.splitlines() if "cannot start" in line]
    assert done.returncode == 2 and len(lines) == 1, done.stdout + done.stderr
    assert lines[0].startswith(said.format(port=port)), lines
    assert not (tmp_path / "var" / "logs").exists()  # nothing was started
    assert "not-shown" not in done.stdout + done.stderr  # a password in a URL is never shown
    if service == "Redis":
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc",
                        "DROP DATABASE IF EXISTS biztalk_dr_unreachable_test"], capture_output=True, timeout=60)


def _postgres_missing() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=3).close()
    except OSError:
        return True
    return False
