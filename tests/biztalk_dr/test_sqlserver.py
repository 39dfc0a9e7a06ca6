"""SQL Server access: autocommit, draining, typed errors, retries — without a server.

The connection below is a scripted DB-API object that raises real ``pyodbc.Error`` instances with the
message layout the FreeTDS and Microsoft drivers produce. End-to-end runs through the real drivers
against the SQL Server stand-in are in tests/sqlserver_standin/.
"""

from __future__ import annotations

import logging

import pyodbc
import pytest

from biztalk_dr.domain.errors import (
    BackupDeviceError,
    DatabaseInUse,
    LogAlreadyApplied,
    LogTooRecent,
    SqlConnectionError,
    SqlServerError,
)
from biztalk_dr.ops.sqlserver import (
    CALL_POLICIES,
    CallKind,
    SqlServer,
    parse_driver_error,
    parse_driver_message,
)

FREETDS_4305 = pyodbc.ProgrammingError(
    "42000",
    "[42000] [FreeTDS][SQL Server]The log in this backup set begins at LSN 41000000044800001, which is too recent "
    "to apply to the database. An earlier log backup that includes LSN 41000000040000001 can be restored. (4305) "
    "(SQLExecDirectW); [42000] [FreeTDS][SQL Server]RESTORE LOG is terminating abnormally. (3013)")
MSODBC_3101 = pyodbc.ProgrammingError(
    "42000",
    "[42000] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Exclusive access could not be obtained because "
    "the database is in use. (3101) (SQLExecDirectW); [42000] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]"
    "RESTORE DATABASE is terminating abnormally. (3013)")
UNREACHABLE = pyodbc.OperationalError(
    "08001", "[08001] [FreeTDS][SQL Server]Unable to connect to data source (0) (SQLDriverConnect)")
LINK_LOST = pyodbc.OperationalError(
    "08S01", "[08S01] [FreeTDS][SQL Server]Communication link failure (0) (SQLExecDirectW)")
LOGIN_FAILED = pyodbc.InterfaceError(
    "28000", "[28000] [FreeTDS][SQL Server]Login failed for user 'bts'. (18456) (SQLDriverConnect)")


class ScriptedCursor:
    """Plays a list of steps: ('rows', columns, rows, messages) or ('error', exc)."""

    def __init__(self, steps):
        self.steps = list(steps)
        self.description = None
        self.messages = []
        self.executed = []
        self._rows = []

    def _play(self):
        step = self.steps.pop(0)
        if step[0] == "error":
            raise step[1]
        _, columns, rows, messages = step
        self.description = [(c, None) for c in columns] if columns else None
        self._rows = rows
        self.messages = list(messages)
        return True

    def execute(self, sql, *params):
        self.executed.append((sql, params))
        self._play()

    def fetchall(self):
        return self._rows

    def nextset(self):
        if not self.steps:
            self.description, self.messages = None, []
            return False
        return self._play()

    def close(self):
        pass


class ScriptedConnection:
    def __init__(self, *cursors):
        self.cursors = list(cursors)
        self.autocommit = False
        self.timeout = 0
        self.timeouts = []
        self.closed = False

    def cursor(self):
        self.timeouts.append(self.timeout)
        return self.cursors.pop(0)

    def close(self):
        self.closed = True


def server_with(*outcomes, sleeps=None):
    """A SqlServer whose connect() returns/raises each outcome in turn."""
    outcomes = list(outcomes)

    def connect(login_timeout):
        item = outcomes.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return SqlServer("biztalk_standby", connect=connect, sleep=(sleeps.append if sleeps is not None else None)
                     or (lambda s: None))


def test_restore_drains_every_result_set_and_logs_messages(caplog):
    cursor = ScriptedCursor([
        ("rows", None, [], [("[01000] (3211)", "[FreeTDS][SQL Server]10 percent processed.")]),
        ("rows", None, [], [("[01000] (3211)", "[FreeTDS][SQL Server]100 percent processed.")]),
        ("rows", None, [], [("[01000] (4035)", "[FreeTDS][SQL Server]Processed 2 pages for database 'SSODB'.")]),
    ])
    conn = ScriptedConnection(cursor)
    caplog.set_level(logging.INFO, "biztalk_dr.sql")
    result = server_with(conn).run("RESTORE LOG [SSODB] FROM DISK = N'/l/x' WITH NORECOVERY", kind=CallKind.RESTORE)
    assert [m.number for m in result.messages] == [3211, 3211, 4035]
    assert cursor.steps == []  # every set was consumed
    assert conn.autocommit is True
    assert "biztalk_standby: [4035] Processed 2 pages for database 'SSODB'." in caplog.messages


def test_error_after_progress_messages_is_raised_typed_with_its_number():
    cursor = ScriptedCursor([("rows", None, [], [("[01000] (3211)", "10 percent processed.")]),
                             ("error", FREETDS_4305)])
    with pytest.raises(LogTooRecent) as info:
        server_with(ScriptedConnection(cursor)).run("RESTORE LOG ...", kind=CallKind.RESTORE)
    err = info.value
    assert err.number == 4305  # the primary error, not the 3013 that follows it
    assert err.numbers == (4305, 3013)
    assert "too recent to apply" in err.text
    assert err.conn_id == "biztalk_standby" and err.statement == "RESTORE LOG ..."


def test_microsoft_driver_errors_are_typed_the_same_way():
    with pytest.raises(DatabaseInUse) as info:
        server_with(ScriptedConnection(ScriptedCursor([("error", MSODBC_3101)]))).run("RESTORE DATABASE ...")
    assert info.value.number == 3101
    assert info.value.text == "Exclusive access could not be obtained because the database is in use."


def test_unknown_error_number_is_still_a_sql_server_error():
    exc = pyodbc.ProgrammingError("42S02", "[42S02] [FreeTDS][SQL Server]Invalid object name 'x'. (208) (SQLExecDirectW)")
    with pytest.raises(SqlServerError) as info:
        server_with(ScriptedConnection(ScriptedCursor([("error", exc)]))).query("SELECT * FROM x")
    assert type(info.value) is SqlServerError and info.value.number == 208


def test_query_returns_rows_as_dicts():
    cursor = ScriptedCursor([("rows", ["name", "state_desc"], [("SSODB", "RESTORING"), ("BizTalkMgmtDb", "ONLINE")], [])])
    rows = server_with(ScriptedConnection(cursor)).query("SELECT name, state_desc FROM sys.databases")
    assert rows == [{"name": "SSODB", "state_desc": "RESTORING"}, {"name": "BizTalkMgmtDb", "state_desc": "ONLINE"}]


def test_several_result_sets_are_all_returned():
    cursor = ScriptedCursor([("rows", ["a"], [(1,)], []), ("rows", None, [], []), ("rows", ["b"], [(2,), (3,)], [])])
    result = server_with(ScriptedConnection(cursor)).run("EXEC x")
    assert [rs.rows for rs in result.result_sets] == [((1,),), ((2,), (3,))]


def test_parameters_are_passed_to_the_driver_not_formatted():
    cursor = ScriptedCursor([("rows", ["n"], [(1,)], [])])
    server_with(ScriptedConnection(cursor)).query("SELECT 1 WHERE name = ?", ["it's"])
    assert cursor.executed == [("SELECT 1 WHERE name = ?", ("it's",))]


def test_timeouts_follow_the_kind_of_call():
    conn = ScriptedConnection(ScriptedCursor([("rows", None, [], [])]), ScriptedCursor([("rows", None, [], [])]))
    server = server_with(conn)
    server.query("SELECT 1")
    server.run("BACKUP LOG ...", kind=CallKind.BACKUP)
    assert conn.timeouts == [CALL_POLICIES[CallKind.QUERY].timeout_seconds,
                             CALL_POLICIES[CallKind.BACKUP].timeout_seconds]


def test_unreachable_instance_is_retried_with_backoff_then_reached():
    sleeps = []
    conn = ScriptedConnection(ScriptedCursor([("rows", ["x"], [(1,)], [])]))
    server = server_with(UNREACHABLE, UNREACHABLE, conn, sleeps=sleeps)
    assert server.query("SELECT 1 AS x") == [{"x": 1}]
    assert sleeps == [2.0, 4.0]


def test_unreachable_instance_gives_up_after_the_policy_attempts():
    sleeps = []
    attempts = CALL_POLICIES[CallKind.QUERY].connect_attempts
    server = server_with(*[UNREACHABLE] * attempts, sleeps=sleeps)
    with pytest.raises(SqlConnectionError, match=rf"cannot be reached after {attempts} attempt\(s\)"):
        server.query("SELECT 1")
    assert len(sleeps) == attempts - 1


def test_refused_login_is_not_retried():
    sleeps = []
    with pytest.raises(SqlConnectionError) as info:
        server_with(LOGIN_FAILED, sleeps=sleeps).query("SELECT 1")
    assert info.value.number == 18456 and "refused the login" in str(info.value)
    assert sleeps == []


def test_a_read_is_sent_again_once_after_the_connection_drops():
    first = ScriptedConnection(ScriptedCursor([("error", LINK_LOST)]))
    second = ScriptedConnection(ScriptedCursor([("rows", ["x"], [(1,)], [])]))
    server = server_with(first, second)
    assert server.query("SELECT 1 AS x") == [{"x": 1}]
    assert first.closed


def test_a_backup_is_never_sent_again_after_the_connection_drops():
    first = ScriptedConnection(ScriptedCursor([("error", LINK_LOST)]))
    server = server_with(first, ScriptedConnection(ScriptedCursor([("rows", None, [], [])])))
    with pytest.raises(SqlConnectionError, match="connection lost during the statement"):
        server.run("EXEC dbo.sp_MarkAll ...", kind=CallKind.PROCEDURE)


def test_bugs_in_our_code_are_not_disguised_as_sql_errors():
    with pytest.raises(ZeroDivisionError):
        server_with(ScriptedConnection(ScriptedCursor([("error", ZeroDivisionError())]))).query("SELECT 1")


def test_parse_driver_error_handles_text_with_parentheses_and_semicolons():
    exc = pyodbc.ProgrammingError(
        "42000", "[42000] [FreeTDS][SQL Server]Cannot open backup device 'X:\\a (1);b.bak'. Operating system error "
                 "3(The system cannot find the path specified.). (3201) (SQLExecDirectW); [42000] [FreeTDS][SQL "
                 "Server]BACKUP LOG is terminating abnormally. (3013)")
    messages = parse_driver_error(exc)
    assert [m.number for m in messages] == [3201, 3013]
    assert messages[0].text.startswith("Cannot open backup device 'X:\\a (1);b.bak'.")


def test_backup_device_error_class():
    exc = pyodbc.ProgrammingError("42000", "[42000] [FreeTDS][SQL Server]Cannot open backup device. (3201)")
    with pytest.raises(BackupDeviceError):
        server_with(ScriptedConnection(ScriptedCursor([("error", exc)]))).run("BACKUP ...", kind=CallKind.BACKUP)


def test_parse_driver_message():
    msg = parse_driver_message(("[01000] (4326)", "[Microsoft][ODBC Driver 18 for SQL Server][SQL Server]too early"))
    assert (msg.number, msg.text, msg.sqlstate) == (4326, "too early", "01000")


def test_log_already_applied_is_distinguishable():
    exc = pyodbc.ProgrammingError("42000", "[42000] [FreeTDS][SQL Server]The log in this backup set terminates at "
                                           "LSN 1, which is too early to apply to the database. (4326)")
    with pytest.raises(LogAlreadyApplied):
        server_with(ScriptedConnection(ScriptedCursor([("error", exc)]))).run("RESTORE LOG ...", kind=CallKind.RESTORE)
