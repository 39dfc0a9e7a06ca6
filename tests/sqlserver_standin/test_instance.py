"""The instance as operators meet it: logins, catalog queries, crashes, and injected faults."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
import uuid

import pytest

from sqlserver_standin import faults
from tests.sqlserver_standin.conftest import STACKS, ServerError, new_instance, wait_until


@pytest.mark.parametrize("stack", STACKS)
def test_a_wrong_password_is_error_18456(instance, stack):
    with pytest.raises(ServerError) as caught:
        instance.connect(stack, password="wrong")
    assert caught.value.number == 18456


@pytest.mark.parametrize("stack", STACKS)
def test_server_identity_and_types(instance, stack):
    client = instance.connect(stack)
    try:
        [(name, version, product, lsn, when, flag, big)] = client.rows(
            "SELECT @@SERVERNAME, @@VERSION, CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)), "
            "CAST(34000000012300001 AS numeric(25,0)), GETDATE(), CAST(1 AS bit), CAST(9000000000 AS bigint)")
        assert name == "SQLPRD01" and "SQL Server" in version and product.startswith("16.")
        assert int(lsn) == 34000000012300001 and flag in (True, 1) and big == 9000000000
        assert when.year >= 2024
    finally:
        client.close()


def test_select_statements_are_evaluated_not_pattern_matched(sql):
    sql.run("CREATE DATABASE q1; CREATE DATABASE q2")
    rows = sql.rows("SELECT TOP (2) d.name, d.recovery_model_desc FROM sys.databases AS d "
                    "WHERE d.name LIKE N'q%' ORDER BY d.name DESC")
    assert rows == [("q2", "FULL"), ("q1", "FULL")] or rows == [("q2", "SIMPLE"), ("q1", "SIMPLE")]
    joined = sql.rows("SELECT s.name, COUNT(f.file_id) FROM sys.databases s JOIN sys.master_files f "
                      "ON f.database_id = s.database_id WHERE s.name IN (N'q1', N'q2') GROUP BY s.name ORDER BY s.name")
    assert joined == [("q1", 2), ("q2", 2)]


def test_unmodelled_things_fail_as_sql_server_would(sql):
    assert sql.error("SELECT * FROM dbo.NoSuchTable").number == 208
    assert sql.error("EXEC dbo.sp_who_knows").number == 2812
    assert sql.error("SELEC 1").number in (102, 156, 2812)
    assert sql.error("SELECT 1 FROM").number in (102, 156)


def test_sessions_are_visible_and_their_database_tracked(instance, sql):
    other = instance.connect("freetds", database="master")
    try:
        count = sql.value("SELECT COUNT(*) FROM sys.dm_exec_sessions WHERE is_user_process = 1")
        assert count >= 2
    finally:
        other.close()


def test_committed_state_survives_a_kill_during_a_workload(tmp_path):
    instance = new_instance(tmp_path / "data").start(workload=0.05)
    try:
        client = instance.connect()
        client.run("CREATE DATABASE durable; ALTER DATABASE durable SET RECOVERY FULL")
        client.run("USE durable; CREATE TABLE dbo.StandinActivity (id int IDENTITY PRIMARY KEY, at datetime NOT NULL, "
                   "payload nvarchar(4000) NOT NULL); CREATE TABLE dbo.T (id int NOT NULL PRIMARY KEY)")
        committed = []
        stop = threading.Event()

        def writer():
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    client.run(f"INSERT INTO durable.dbo.T (id) VALUES ({i})")
                    committed.append(i)
                except ServerError:
                    return

        thread = threading.Thread(target=writer)
        thread.start()
        wait_until(lambda: len(committed) > 30)
        instance.kill()  # SIGKILL mid-workload
        stop.set()
        thread.join(timeout=10)
        with contextlib.suppress(Exception):
            client.close()
        instance.start()
        again = instance.connect()
        present = {r[0] for r in again.rows("SELECT id FROM durable.dbo.T")}
        assert set(committed) <= present  # every acknowledged insert survived
        assert again.value("SELECT COUNT(*) FROM durable.dbo.StandinActivity") > 0  # the workload wrote too
        again.close()
    finally:
        instance.stop()


def test_refused_connections_and_a_dropped_connection(instance, sql):
    cli = [sys.executable, "-m", "sqlserver_standin.cli", "fault", "--data-dir", str(instance.data_dir)]
    subprocess.run([*cli, "refuse_connections"], check=True, capture_output=True)
    try:
        with pytest.raises(ServerError):
            instance.connect("freetds")
    finally:
        subprocess.run([*cli, "clear"], check=True, capture_output=True)
    instance.connect("freetds").close()
    victim = instance.connect("freetds")
    marker = f"drop_{uuid.uuid4().hex[:6]}"
    faults.inject(instance.data_dir, "drop_connection", match=marker)
    with pytest.raises(ServerError):
        victim.run(f"SELECT 1 AS {marker}")
    with pytest.raises(ServerError):
        victim.run("SELECT 1")  # the connection is gone, as after a network failure
    with contextlib.suppress(Exception):
        victim.close()
    sql.run("SELECT 1")  # other sessions are unaffected


def test_slow_io_slows_backups(instance, sql, tmp_path):
    sql.run("CREATE DATABASE slowdb")
    started = time.monotonic()
    sql.run(f"BACKUP DATABASE slowdb TO DISK = N'{tmp_path}/fast.bak'")
    fast = time.monotonic() - started
    faults.inject(instance.data_dir, "slow_io", seconds_per_mb=20)
    try:
        started = time.monotonic()
        sql.run(f"BACKUP DATABASE slowdb TO DISK = N'{tmp_path}/slow.bak'")
        slow = time.monotonic() - started
    finally:
        faults.clear(instance.data_dir)
    assert slow > fast + 0.1


def test_the_fault_command_rejects_bad_input(instance):
    result = subprocess.run([sys.executable, "-m", "sqlserver_standin.cli", "fault", "--data-dir",
                             str(instance.data_dir), "slow_io"], capture_output=True, text=True)
    assert result.returncode == 2 and "seconds_per_mb" in result.stdout
