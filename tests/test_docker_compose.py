"""docker-compose.yml and the trial T-SQL, checked without a Docker engine or SQL Server (none runs here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from biztalk_dr.ops.config_files import load_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


AIRFLOW = ["airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
           "airflow-worker"]


def test_every_service_has_an_image_or_build(compose):
    for name, service in compose["services"].items():
        assert "image" in service or "build" in service, name


def test_three_sql_servers_with_volumes_and_healthchecks(compose):
    for name in ("sqlprimary", "sqlstandby", "sqlvalidation"):
        service = compose["services"][name]
        assert service["image"].startswith("mcr.microsoft.com/mssql/server:2022")
        assert "healthcheck" in service
        assert service["environment"]["ACCEPT_EULA"] == "Y"
    assert "backups:/var/opt/mssql/backup" in compose["services"]["sqlprimary"]["volumes"]
    assert "landing:/var/opt/mssql/landing" in compose["services"]["sqlstandby"]["volumes"]


def test_airflow_runs_celery_with_postgres_and_mounts_the_project(compose):
    shared = dict(line.split("=", 1) for line in (ROOT / "deploy" / "airflow.env").read_text().splitlines()
                  if line and not line.startswith("#"))
    for name in AIRFLOW:
        service = compose["services"][name]
        env = {**shared, **service["environment"]} if service.get("env_file") == ["deploy/airflow.env"] else \
            service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
        assert {"./dags:/opt/airflow/dags", "./plugins:/opt/airflow/plugins"} <= set(service["volumes"])
        assert "backups:/opt/biztalk-dr/backups" in service["volumes"]


def test_every_connection_the_config_needs_is_defined(compose):
    env = compose["services"]["airflow-worker"]["environment"]
    config_path = ROOT / "docker" / "config" / Path(env["BIZTALK_DR_CONFIG"]).name
    cfg = load_config(config_path)
    needed = [i.conn_id for i in cfg.sites.primary.instances.values()]
    needed += [i.conn_id for i in cfg.sites.standby.instances.values()]
    needed.append(cfg.sites.validation.conn_id)
    for conn_id in needed:
        assert f"AIRFLOW_CONN_{conn_id.upper()}" in env, conn_id


def test_no_literal_password_in_the_file():
    text = (ROOT / "docker-compose.yml").read_text()
    for match in re.finditer(r'(?i)(password["\']?\s*[:=]\s*)("?)([^,\s"}]+)', text):
        value = match.group(3)
        assert value.startswith("${") or value.startswith("$${"), match.group(0)


def test_paths_the_compose_file_uses_exist(compose):
    assert (ROOT / compose["x-airflow-common"]["build"]["dockerfile"]).is_file()
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), volume


PROCEDURES = {  # biztalk-dr.md section 2: name -> documented parameters
    "sp_SetBackupCompression": ["@bCompression"],
    "sp_BackupAllFull_Schedule": ["@Frequency", "@MarkName", "@BackupPath", "@ForceFullBackupAfterPartialSetFailure",
                                  "@BackupHour", "@UseLocalTime"],
    "sp_MarkAll": ["@MarkName", "@BackupPath", "@UseLocalTime"],
    "sp_DeleteBackupHistory": ["@DaysToKeep"],
    "sp_ForceFullBackup": [],
}


@pytest.mark.parametrize("name,params", PROCEDURES.items())
def test_trial_sql_creates_every_procedure_with_the_documented_parameters(name, params):
    text = (ROOT / "tests" / "sql" / "biztalk_backup_procedures.sql").read_text()
    match = re.search(rf"CREATE OR ALTER PROCEDURE dbo\.{name}\b(.*?)\bAS\b", text, re.S)
    assert match, f"{name} is not created"
    assert re.findall(r"@\w+", match.group(1)) == params


def test_trial_sql_history_table_has_biztalks_columns():
    text = (ROOT / "tests" / "sql" / "biztalk_backup_procedures.sql").read_text()
    table = re.search(r"CREATE TABLE dbo\.adm_BackupHistory \((.*?)\);", text, re.S).group(1)
    columns = re.findall(r"(?:^|,)\s*(\w+) ", table)
    assert columns == ["BackupId", "BackupSetId", "MarkName", "DatabaseName", "ServerName", "BackupFileName",
                       "BackupFileLocation", "BackupType", "BackupDateTime", "SetComplete"]
