"""End to end: the three real client stacks against the TDS server, on loopback.

pyodbc + FreeTDS, pyodbc + Microsoft ODBC Driver 18, and pymssql (FreeTDS's DB-Library) each
connect, run batches and parameterised statements, and see what a SQL Server would show them.
The engine behind the server is the scripted test double from conftest.py.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pymssql
import pyodbc
import pytest

from sqlserver_standin.events import Column, DatabaseChanged, Message, ResultSet, SqlType, StatementDone
from sqlserver_standin.server import BackgroundServer

if TYPE_CHECKING:
    from conftest import ScriptedEngine  # the test double (tests/sqlserver_standin/tds/conftest.py)

# Canned rows with the column types the product's queries need.
TYPED_COLUMNS = (
    Column("id", SqlType.INT, nullable=False),
    Column("big", SqlType.BIGINT),
    Column("lsn", SqlType.NUMERIC, precision=25, scale=0),
    Column("name", SqlType.NVARCHAR, length=128),
    Column("note", SqlType.NVARCHAR, length=None),
    Column("finished", SqlType.DATETIME),
    Column("started", SqlType.DATETIME2),
    Column("is_copy_only", SqlType.BIT),
)
TYPED_ROWS = (
    (1, 9_000_000_000, decimal.Decimal("39000000012300001"), "BizTalkMsgBoxDb", "x" * 10_000,
     dt.datetime(2024, 5, 17, 23, 59, 59, 997000), dt.datetime(2024, 5, 17, 1, 2, 3, 456789), True),
    (2, None, None, "Größe – 日本語 ✓", "", None, None, False),
    (3, -1, decimal.Decimal("1"), None, None, dt.datetime(1753, 1, 1), dt.datetime(1, 1, 1), None),
)

pytestmark = pytest.mark.timeout(60)

STACKS = ["freetds", "msodbc", "pymssql"]
ODBC_STACKS = ["freetds", "msodbc"]

TEXT_4305 = ("The log in this backup set begins at LSN 39000000012300001, which is too recent to apply to "
             "the database. An earlier log backup that includes LSN 39000000011800001 can be restored.")
TEXT_3013 = "RESTORE LOG is terminating abnormally."


def error_number(exc: Exception) -> int:
    """SQL Server's error number as each driver reports it."""
    if isinstance(exc, pymssql.Error):
        return exc.args[0]
    return int(re.findall(r"\((\d+)\) \(SQL", str(exc))[0])


def script_restore_failure(engine: ScriptedEngine) -> str:
    """A statement whose result set is followed by errors, as RESTORE after a SELECT would be."""
    sql = "SELECT 1 AS ok; RESTORE LOG [BizTalkMsgBoxDb] FROM DISK = N'x.trn' WITH NORECOVERY"
    engine.script[sql] = [
        ResultSet([Column("ok", SqlType.INT)], [(1,)]), StatementDone(rowcount=1),
        Message(4305, 16, 1, TEXT_4305), StatementDone(error=True),
        Message(3013, 16, 1, TEXT_3013), StatementDone(error=True),
    ]
    return sql


@pytest.fixture(params=STACKS)
def stack(request) -> str:
    return request.param


# -- login -----------------------------------------------------------------------------------------
def test_login_and_a_query(connect: Callable, stack: str, server: BackgroundServer, engine: ScriptedEngine) -> None:
    engine.script["SELECT @@SERVERNAME"] = [ResultSet([Column("", SqlType.NVARCHAR, length=128)],
                                                      [("STANDIN-TDS-TEST",)]), StatementDone(1)]
    with connect(stack, server.port) as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT @@SERVERNAME")
        assert cursor.fetchall()[0][0] == "STANDIN-TDS-TEST"
        assert len(engine.live) == 1


def test_wrong_password_is_refused_with_18456(connect: Callable, stack: str, server: BackgroundServer,
                                               engine: ScriptedEngine) -> None:
    with pytest.raises((pyodbc.Error, pymssql.Error)) as caught:
        connect(stack, server.port, password="not-it")
    assert "18456" in str(caught.value)
    assert f"Login failed for user '{engine.login_name}'." in str(caught.value)
    assert engine.live == {}


def test_the_login_database_is_the_sessions_and_a_use_changes_it(connect: Callable, stack: str, server: BackgroundServer,
                                                                  engine: ScriptedEngine) -> None:
    engine.script["USE [msdb]"] = [DatabaseChanged("master", "msdb"), StatementDone()]
    engine.script["SELECT DB_NAME()"] = lambda session, _: [
        ResultSet([Column("", SqlType.NVARCHAR)], [(session.database,)]), StatementDone(1)]
    with connect(stack, server.port) as conn:
        cursor = conn.cursor()
        cursor.execute("USE [msdb]")
        if stack != "pymssql":
            assert any("Changed database context to 'msdb'." in m[1] for m in cursor.messages)
        engine.live[next(iter(engine.live))].database = "msdb"  # the double does not model USE itself
        cursor.execute("SELECT DB_NAME()")
        assert cursor.fetchone()[0] == "msdb"


# -- result sets -----------------------------------------------------------------------------------
def test_column_types_decode_in_each_driver(connect: Callable, stack: str, server: BackgroundServer, engine: ScriptedEngine) -> None:
    engine.script["SELECT typed"] = [ResultSet(TYPED_COLUMNS, TYPED_ROWS), StatementDone(rowcount=3)]
    with connect(stack, server.port) as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT typed")
        assert [d[0] for d in cursor.description] == [c.name for c in TYPED_COLUMNS]
        rows = [tuple(r) for r in cursor.fetchall()]
    first, second, third = rows
    assert first[:4] == (1, 9_000_000_000, decimal.Decimal("39000000012300001"), "BizTalkMsgBoxDb")
    assert first[4] == "x" * 10_000
    assert first[5] == dt.datetime(2024, 5, 17, 23, 59, 59, 997000)
    # datetime2(7): ODBC returns the microseconds; DB-Library (pymssql) too
    assert first[6] == dt.datetime(2024, 5, 17, 1, 2, 3, 456789)
    assert first[7] in (True, 1)
    assert second == (2, None, None, "Größe – 日本語 ✓", "", None, None, False)
    assert third[:4] == (3, -1, decimal.Decimal("1"), None) and third[4] is None
    assert third[5] == dt.datetime(1753, 1, 1) and third[6] == dt.datetime(1, 1, 1) and third[7] is None


def test_several_result_sets_and_row_counts_in_one_batch(connect: Callable, stack: str, server: BackgroundServer,
                                                          engine: ScriptedEngine) -> None:
    engine.script["SELECT a; UPDATE b; SELECT c"] = [
        ResultSet([Column("a", SqlType.INT)], [(1,), (2,)]), StatementDone(rowcount=2),
        StatementDone(rowcount=7),
        ResultSet([Column("c", SqlType.NVARCHAR, length=10)], [("x",)]), StatementDone(rowcount=1),
    ]
    with connect(stack, server.port) as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT a; UPDATE b; SELECT c")
        assert [tuple(r) for r in cursor.fetchall()] == [(1,), (2,)]
        assert cursor.nextset()
        if stack != "pymssql":  # DB-Library folds the count-only result into the next one
            assert cursor.rowcount == 7
            assert cursor.nextset()
        assert [tuple(r) for r in cursor.fetchall()] == [("x",)]
        assert not cursor.nextset()


def test_row_count_of_a_statement_without_rows(connect: Callable, stack: str, server: BackgroundServer,
                                               engine: ScriptedEngine) -> None:
    engine.script["DELETE FROM adm_BackupHistory"] = [StatementDone(rowcount=12)]
    with connect(stack, server.port) as conn:
        cursor = conn.cursor()
        cursor.execute("DELETE FROM adm_BackupHistory")
        assert cursor.rowcount == 12


# -- messages and errors ---------------------------------------------------------------------------
def test_info_messages_reach_the_client(connect: Callable, stack: str, server: BackgroundServer, engine: ScriptedEngine) -> None:
    sql = "BACKUP LOG [BizTalkMgmtDb] TO DISK = N'x.trn'"
    engine.script[sql] = [
        Message(3211, 0, 1, "50 percent processed."), Message(3211, 0, 1, "100 percent processed."),
        Message(4035, 0, 1, "Processed 7 pages for database 'BizTalkMgmtDb', file 'BizTalkMgmtDb_log' on file 1."),
        StatementDone(),
    ]
    with connect(stack, server.port) as conn:
        cursor = conn.cursor()
        if stack == "pymssql":
            seen: list[tuple] = []
            # DB-Library's message handler: (state, severity, server, procedure, line, text)
            conn._conn.set_msghandler(lambda *args: seen.append(args))
            cursor.execute(sql)
            assert [(a[1], a[5].decode()) for a in seen][-1] == (
                0, "Processed 7 pages for database 'BizTalkMgmtDb', file 'BizTalkMgmtDb_log' on file 1.")
            assert seen[0][2] == b"STANDIN-TDS-TEST"
            return
        cursor.execute(sql)
        messages = list(cursor.messages)
        while cursor.nextset():
            messages += cursor.messages
        texts = [m[1] for m in messages]
        assert any(t.endswith("[SQL Server]50 percent processed.") for t in texts), texts
        assert any("Processed 7 pages for database 'BizTalkMgmtDb'" in t for t in texts), texts
        assert any("(3211)" in m[0] for m in messages)


def test_an_error_is_raised_with_its_number_and_text(connect: Callable, stack: str, server: BackgroundServer,
                                                     engine: ScriptedEngine) -> None:
    sql = "RESTORE LOG [BizTalkMsgBoxDb] FROM DISK = N'x.trn' WITH NORECOVERY"
    engine.script[sql] = [Message(4305, 16, 1, TEXT_4305), StatementDone(error=True),
                          Message(3013, 16, 1, TEXT_3013), StatementDone(error=True)]
    with connect(stack, server.port) as conn:
        cursor = conn.cursor()
        with pytest.raises((pyodbc.Error, pymssql.Error)) as caught:
            cursor.execute(sql)
        assert error_number(caught.value) == 4305
        assert "is too recent to apply to the database" in str(caught.value)
        if stack != "pymssql":
            assert caught.value.args[0] == "42000"
        # the connection is still usable after a severity-16 error
        engine.script["SELECT 1"] = [ResultSet([Column("", SqlType.INT)], [(1,)]), StatementDone(1)]
        cursor = conn.cursor()
        cursor.execute("SELECT 1")
        assert cursor.fetchone()[0] == 1


@pytest.mark.parametrize("odbc_stack", ODBC_STACKS)
def test_an_error_after_a_result_set_is_raised_by_nextset(connect: Callable, odbc_stack: str, server: BackgroundServer,
                                                          engine: ScriptedEngine) -> None:
    sql = script_restore_failure(engine)
    with connect(odbc_stack, server.port) as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        assert cursor.fetchall()[0][0] == 1
        with pytest.raises(pyodbc.Error) as caught:
            while cursor.nextset():
                pass
        assert error_number(caught.value) == 4305


def test_an_error_after_a_result_set_reaches_pymssql(connect: Callable, server: BackgroundServer, engine: ScriptedEngine) -> None:
    sql = script_restore_failure(engine)
    with connect("pymssql", server.port) as conn:
        cursor = conn.cursor()
        with pytest.raises(pymssql.Error) as caught:
            cursor.execute(sql)
            cursor.fetchall()
            while cursor.nextset():
                pass
        assert error_number(caught.value) == 4305


def test_an_unknown_procedure_fails_with_2812(connect: Callable, stack: str, server: BackgroundServer) -> None:
    with connect(stack, server.port) as conn:
        cursor = conn.cursor()
        with pytest.raises((pyodbc.Error, pymssql.Error)) as caught:
            if stack == "pymssql":
                cursor.callproc("sp_NoSuchThing", (1,))
            else:
                cursor.execute("{CALL sp_NoSuchThing (?)}", 1)
        assert error_number(caught.value) == 2812
        assert "Could not find stored procedure 'sp_NoSuchThing'." in str(caught.value)


# -- RPC: parameters and procedures ----------------------------------------------------------------
@pytest.mark.parametrize("odbc_stack", ODBC_STACKS)
def test_parameters_arrive_typed_through_sp_prepexec(connect: Callable, odbc_stack: str, server: BackgroundServer,
                                                      engine: ScriptedEngine) -> None:
    sql = "SELECT name FROM t WHERE id = ? AND lsn = ? AND name = ? AND at = ? AND flag = ? AND blob = ?"
    expected_sql = ("SELECT name FROM t WHERE id = @P1 AND lsn = @P2 AND name = @P3 AND at = @P4 AND flag = @P5 "
                    "AND blob = @P6")
    engine.script[expected_sql] = lambda session, params: [
        ResultSet([Column("echo", SqlType.NVARCHAR, length=None)], [(repr(sorted(params.items())),)]),
        StatementDone(1)]
    args = (7, decimal.Decimal("39000000012300001"), "Größe", dt.datetime(2024, 5, 17, 1, 2, 3), True, b"\x00\xff")
    with connect(odbc_stack, server.port) as conn:
        cursor = conn.cursor()
        cursor.execute(sql, *args)
        assert cursor.fetchall()
        cursor.execute(sql, *args)  # the second execution reuses or re-prepares: both must work
        cursor.fetchall()
    kind, text, params = engine.requests[-1]
    assert (kind, text) == ("execute", expected_sql)
    values = [params[f"@P{i}"] for i in range(1, 7)]
    assert values[0] == 7 and values[1] == decimal.Decimal("39000000012300001") and values[2] == "Größe"
    assert values[3] == dt.datetime(2024, 5, 17, 1, 2, 3) and values[4] in (True, 1) and values[5] == b"\x00\xff"


@pytest.mark.parametrize("odbc_stack", ODBC_STACKS)
def test_a_null_parameter_arrives_as_none(connect: Callable, odbc_stack: str, server: BackgroundServer,
                                          engine: ScriptedEngine) -> None:
    engine.script["UPDATE t SET a = @P1"] = [StatementDone(rowcount=3)]
    with connect(odbc_stack, server.port) as conn:
        cursor = conn.cursor()
        cursor.execute("UPDATE t SET a = ?", None)
        assert cursor.rowcount == 3
    assert engine.requests[-1][2] == {"@P1": None}


@pytest.mark.parametrize("odbc_stack", ODBC_STACKS)
def test_a_procedure_call_reaches_the_engine_with_its_arguments(connect: Callable, odbc_stack: str, server: BackgroundServer,
                                                                engine: ScriptedEngine) -> None:
    engine.procedures["sp_markall"] = [Message(0, 0, 1, "marked"), StatementDone()]
    with connect(odbc_stack, server.port) as conn:
        conn.cursor().execute("{CALL sp_MarkAll (?)}", "BTS_2024_05_17")
    assert engine.requests[-1] == ("procedure", "sp_MarkAll", [("@P1", "BTS_2024_05_17")]) or \
        engine.requests[-1][:2] == ("procedure", "sp_MarkAll")


def test_pymssql_parameters_are_inlined_into_a_batch(connect: Callable, server: BackgroundServer, engine: ScriptedEngine) -> None:
    engine.script["SELECT N'it''s'"] = [ResultSet([Column("", SqlType.NVARCHAR)], [("it's",)]), StatementDone(1)]
    with connect("pymssql", server.port) as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT %s", ("it's",))
        assert cursor.fetchone()[0] == "it's"


# -- transactions ----------------------------------------------------------------------------------
def test_autocommit_off_opens_a_transaction_and_commit_ends_it(connect: Callable, stack: str, server: BackgroundServer,
                                                               engine: ScriptedEngine) -> None:
    engine.script["SELECT 1"] = [ResultSet([Column("", SqlType.INT)], [(1,)]), StatementDone(1)]
    with connect(stack, server.port, autocommit=False) as conn:
        (session,) = engine.live.values()
        cursor = conn.cursor()
        cursor.execute("SELECT 1")
        cursor.fetchall()
        assert session.transaction_count == 1
        conn.commit()  # commits, and the driver begins the next transaction at once
        assert session.transaction_count == 1
        conn.rollback()
        assert session.transaction_count == 1
        if stack != "pymssql":
            conn.autocommit = True
            assert session.transaction_count == 0
    kinds = [text for kind, text, _ in engine.requests if kind == "execute"]
    assert any(text.upper().startswith("COMMIT") for text in kinds)
    assert any(text.upper().startswith("ROLLBACK") for text in kinds)


def test_autocommit_on_never_opens_a_transaction(connect: Callable, stack: str, server: BackgroundServer,
                                                 engine: ScriptedEngine) -> None:
    engine.script["SELECT 1"] = [ResultSet([Column("", SqlType.INT)], [(1,)]), StatementDone(1)]
    with connect(stack, server.port, autocommit=True) as conn:
        (session,) = engine.live.values()
        conn.cursor().execute("SELECT 1")
        assert session.transaction_count == 0
    assert not [t for k, t, _ in engine.requests if "TRAN" in t.upper()]


# -- attention -------------------------------------------------------------------------------------
@pytest.mark.parametrize("odbc_stack", ODBC_STACKS)
def test_cancel_from_another_thread_stops_a_slow_statement(connect: Callable, odbc_stack: str, server: BackgroundServer,
                                                           engine: ScriptedEngine) -> None:
    engine.script["SELECT 1"] = [ResultSet([Column("", SqlType.INT)], [(1,)]), StatementDone(1)]
    with connect(odbc_stack, server.port) as conn:
        cursor = conn.cursor()

        def cancel_when_running() -> None:
            assert engine.statement_started.wait(10)
            cursor.cancel()

        canceller = threading.Thread(target=cancel_when_running)
        canceller.start()
        started = time.monotonic()
        with pytest.raises(pyodbc.Error) as caught:
            cursor.execute("WAITFOR DELAY '00:00:20'")
        canceller.join()
        assert time.monotonic() - started < 5
        assert caught.value.args[0] == "HY008"  # Operation canceled
        (session,) = engine.live.values()
        assert session.cancelled
        cursor = conn.cursor()
        cursor.execute("SELECT 1")  # the connection is in step again after the DONE_ATTN
        assert cursor.fetchone()[0] == 1
        assert not session.cancelled


def test_query_timeout_sends_attention_and_the_connection_survives(connect: Callable, stack: str, server: BackgroundServer,
                                                                   engine: ScriptedEngine) -> None:
    engine.script["SELECT 1"] = [ResultSet([Column("", SqlType.INT)], [(1,)]), StatementDone(1)]
    with connect(stack, server.port, timeout=1) as conn:
        cursor = conn.cursor()
        started = time.monotonic()
        with pytest.raises((pyodbc.Error, pymssql.Error)) as caught:
            cursor.execute("WAITFOR DELAY '00:00:20'")
        assert time.monotonic() - started < 6
        if stack != "pymssql":
            assert caught.value.args[0] == "HYT00"
        else:  # DB-Library reports the timeout (20003) and then gives the connection up itself (20047)
            assert b"20003" in caught.value.args[1] or error_number(caught.value) == 20003
            return
        cursor = conn.cursor()
        cursor.execute("SELECT 1")
        assert cursor.fetchone()[0] == 1


# -- connections -----------------------------------------------------------------------------------
def test_disconnect_logs_the_session_out(connect: Callable, stack: str, server: BackgroundServer, engine: ScriptedEngine) -> None:
    conn = connect(stack, server.port)
    assert len(engine.live) == 1
    conn.close()
    _wait_until(lambda: not engine.live and server.open_connections() == 0)


def test_many_sequential_connections_leak_nothing(connect: Callable, stack: str, server: BackgroundServer,
                                                  engine: ScriptedEngine) -> None:
    engine.script["SELECT 1"] = [ResultSet([Column("", SqlType.INT)], [(1,)]), StatementDone(1)]
    threads_before = threading.active_count()
    for _ in range(25):
        conn = connect(stack, server.port)
        conn.cursor().execute("SELECT 1")
        conn.close()  # pyodbc's context manager commits but does not close
    _wait_until(lambda: not engine.live and server.open_connections() == 0)
    assert threading.active_count() <= threads_before + 32  # the engine pool is bounded


def test_concurrent_connections_run_side_by_side(connect: Callable, stack: str, server: BackgroundServer) -> None:
    def slow_statement(_: int) -> tuple[float, float]:
        with connect(stack, server.port) as conn:
            started = time.monotonic()
            conn.cursor().execute("WAITFOR DELAY '00:00:01'")
            return started, time.monotonic()

    with ThreadPoolExecutor(4) as pool:
        spans = list(pool.map(slow_statement, range(4)))
    assert all(end - start >= 0.9 for start, end in spans)
    assert max(start for start, _ in spans) < min(end for _, end in spans)  # all four ran at the same time


def test_several_instances_side_by_side_answer_as_themselves(connect: Callable, make_engine: Callable) -> None:
    first, second = make_engine(), make_engine()
    second.instance_name = "STANDBY"
    for engine in (first, second):
        engine.script["SELECT @@SERVERNAME"] = lambda session, _, e=engine: [
            ResultSet([Column("", SqlType.NVARCHAR)], [(e.instance_name,)]), StatementDone(1)]
    with BackgroundServer(first) as a, BackgroundServer(second) as b:
        assert a.port != b.port
        for srv, name in ((a, "STANDIN-TDS-TEST"), (b, "STANDBY")):
            with connect("freetds", srv.port) as conn:
                cursor = conn.cursor()
                cursor.execute("SELECT @@SERVERNAME")
                assert cursor.fetchone()[0] == name


def _wait_until(condition: Callable[[], bool], seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)
