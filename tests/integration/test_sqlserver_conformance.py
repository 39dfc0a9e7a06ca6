"""The product's SQL layer against a SQL Server: BACKUP/RESTORE chains, marks, typed errors.

These tests run against every SQL Server backend the test session has:
- a real SQL Server when ``BIZTALK_DR_TEST_SQLSERVER`` holds an Airflow connection (URI or JSON) to it
  (sysadmin; a scratch database ``bdr_conformance_<n>`` is created and dropped; the server's default
  backup directory must be writable by its service account);
- the SQL Server stand-in (``standin_sql`` fixture in conftest), when it is part of the build.
The same assertions on both are what makes the stand-in trustworthy.
"""

from __future__ import annotations

import os
import uuid

import pytest

from biztalk_dr.domain import tsql
from biztalk_dr.domain.errors import LogAlreadyApplied, LogTooRecent, SqlServerError
from biztalk_dr.ops.sqlserver import CallKind, SqlServer

pytestmark = pytest.mark.sqlserver


@pytest.fixture(params=["real", "standin"])
def server(request, tmp_path):
    if request.param == "real":
        value = os.environ.get("BIZTALK_DR_TEST_SQLSERVER")
        if not value:
            pytest.skip("BIZTALK_DR_TEST_SQLSERVER is not set: no real SQL Server to test against")
        os.environ["AIRFLOW_CONN_BIZTALK_DR_CONFORMANCE"] = value
        conn_id = "biztalk_dr_conformance"
        backup_dir = os.environ.get("BIZTALK_DR_TEST_BACKUP_DIR", "")
    else:
        standin = request.getfixturevalue("standin_sql")
        conn_id, backup_dir = standin.conn_id, str(tmp_path)
    with SqlServer(conn_id) as srv:
        if not backup_dir:
            [row] = srv.query("SELECT CAST(SERVERPROPERTY('InstanceDefaultBackupPath') AS nvarchar(260)) AS p")
            backup_dir = row["p"]
        yield srv, backup_dir.rstrip("\\/")


def _path(backup_dir: str, name: str) -> str:
    sep = "\\" if "\\" in backup_dir else "/"
    return f"{backup_dir}{sep}{name}"


@pytest.fixture
def scratch(server):
    srv, backup_dir = server
    name = f"bdr_conformance_{uuid.uuid4().hex[:8]}"
    srv.run(f"CREATE DATABASE {tsql.quote_name(name)}")
    srv.run(f"ALTER DATABASE {tsql.quote_name(name)} SET RECOVERY FULL")
    yield srv, backup_dir, name
    for db in (name, name + "_copy"):
        try:
            srv.run(f"IF DB_ID({tsql.quote_string(db)}) IS NOT NULL DROP DATABASE {tsql.quote_name(db)}")
        except SqlServerError:
            pass


def test_server_identifies_itself(server):
    srv, _ = server
    [row] = srv.query("SELECT @@SERVERNAME AS name, CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)) AS v")
    assert row["name"] and row["v"].split(".")[0].isdigit()


def test_backup_restore_chain_to_a_mark_with_typed_errors(scratch):
    srv, backup_dir, db = scratch
    q = tsql.quote_name(db)
    full = _path(backup_dir, f"{db}_full.bak")
    logs = [_path(backup_dir, f"{db}_log{i}.trn") for i in (1, 2)]
    srv.run(f"CREATE TABLE {q}.dbo.t (id int)")
    srv.run(tsql.backup_database(db, full), kind=CallKind.BACKUP)
    srv.run(f"INSERT INTO {q}.dbo.t VALUES (1)")
    srv.run(tsql.backup_log(db, logs[0]), kind=CallKind.BACKUP)
    srv.run(f"BEGIN TRANSACTION M1 WITH MARK; INSERT INTO {q}.dbo.t VALUES (2); COMMIT TRANSACTION M1")
    srv.run(f"INSERT INTO {q}.dbo.t VALUES (3)")
    srv.run(tsql.backup_log(db, logs[1]), kind=CallKind.BACKUP)

    [header] = srv.run(tsql.restore_headeronly(logs[1]), kind=CallKind.RESTORE).rows
    assert header["DatabaseName"] == db and header["BackupType"] == 2

    copy = db + "_copy"
    files = srv.run(tsql.restore_filelistonly(full), kind=CallKind.RESTORE).rows
    moves = [tsql.Move(f["LogicalName"], _path(backup_dir, f"{copy}_{f['Type']}.dat")) for f in files]
    srv.run(tsql.restore_database(copy, full, moves=moves), kind=CallKind.RESTORE)
    with pytest.raises(LogTooRecent):  # logs[0] skipped: a gap
        srv.run(tsql.restore_log(copy, logs[1]), kind=CallKind.RESTORE)
    srv.run(tsql.restore_log(copy, logs[0]), kind=CallKind.RESTORE)
    with pytest.raises(LogAlreadyApplied):
        srv.run(tsql.restore_log(copy, logs[0]), kind=CallKind.RESTORE)
    srv.run(tsql.restore_log(copy, logs[1], recovery=tsql.Recovery.RECOVERY, stop_at_mark="M1"),
            kind=CallKind.RESTORE)
    rows = srv.query(f"SELECT id FROM {tsql.quote_name(copy)}.dbo.t ORDER BY id")
    assert [r["id"] for r in rows] == [1, 2]  # STOPATMARK includes the marked transaction, nothing after it
    [state] = srv.query(tsql.render("SELECT state_desc FROM {t} WHERE name = {n}", t=tsql.Name("sys", "databases"),
                                    n=copy))
    assert state["state_desc"] == "ONLINE"
    [hist] = srv.query(tsql.render(
        "SELECT TOP (1) stop_at_mark_name FROM {t} WHERE destination_database_name = {n} ORDER BY restore_history_id DESC",
        t=tsql.Name("msdb", "dbo", "restorehistory"), n=copy))
    assert hist["stop_at_mark_name"] == "M1"
    srv.run(tsql.dbcc_checkdb(copy), kind=CallKind.CHECK)


def test_backup_to_a_missing_folder_is_error_3201(server):
    from biztalk_dr.domain.errors import BackupDeviceError

    srv, backup_dir = server
    with pytest.raises(BackupDeviceError) as info:
        srv.run(tsql.backup_database("master", _path(backup_dir + "/no/such/folder", "x.bak"), copy_only=True),
                kind=CallKind.BACKUP)
    assert info.value.numbers[0] == 3201  # 3013 follows on the wire; pyodbc 5.5 reports the first record only
