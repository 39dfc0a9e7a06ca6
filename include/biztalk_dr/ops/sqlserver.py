"""Run T-SQL on a SQL Server instance named by an Airflow connection, the way recovery needs it.

The connection itself comes from ``connections`` (the Airflow edge) or, in tests, from ``connect``.

Why not ``DbApiHook.run()``: it leaves autocommit off and never calls ``cursor.nextset()``. BACKUP and
RESTORE fail inside a transaction (3021), and with ODBC their progress messages come back as extra
result sets: a statement whose sets are not drained is not finished and its errors are not seen.
So every call here runs in autocommit, drains every result set and message, logs the messages,
and turns SQL Server's errors into typed exceptions carrying the error number (``errors.py``).

Timeouts and retries are explicit per kind of call (``CALL_POLICIES``): reaching the server is
always retried with backoff; a statement is re-sent only when it is a read (QUERY), never a
BACKUP, RESTORE or procedure that may already have done its work.
"""

from __future__ import annotations

import enum
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from biztalk_dr.domain.errors import (
    LoginRefused,
    SqlConnectionError,
    SqlMessage,
    SqlServerError,
    sql_error_class,
    sql_error_for,
)

__all__ = [
    "CallKind",
    "CallPolicy",
    "CALL_POLICIES",
    "ResultSet",
    "StatementResult",
    "SqlServer",
    "parse_driver_error",
    "parse_driver_message",
]

log = logging.getLogger("biztalk_dr.sql")


class CallKind(enum.Enum):
    QUERY = "query"  # a read: short, safe to re-send
    PROCEDURE = "procedure"  # a BizTalk or msdb procedure: may write, never re-sent
    BACKUP = "backup"
    RESTORE = "restore"
    CHECK = "check"  # DBCC CHECKDB: long, read-only but heavy; not re-sent automatically


@dataclass(frozen=True)
class CallPolicy:
    timeout_seconds: int  # query timeout; 0 = none
    connect_attempts: int  # reaching the server (and logging in)
    backoff_seconds: float  # first pause; doubles each attempt
    resend_on_connection_loss: bool


CALL_POLICIES: dict[CallKind, CallPolicy] = {
    CallKind.QUERY: CallPolicy(timeout_seconds=60, connect_attempts=4, backoff_seconds=2.0,
                               resend_on_connection_loss=True),
    CallKind.PROCEDURE: CallPolicy(timeout_seconds=6 * 3600, connect_attempts=4, backoff_seconds=5.0,
                                   resend_on_connection_loss=False),
    CallKind.BACKUP: CallPolicy(timeout_seconds=12 * 3600, connect_attempts=4, backoff_seconds=5.0,
                                resend_on_connection_loss=False),
    CallKind.RESTORE: CallPolicy(timeout_seconds=12 * 3600, connect_attempts=4, backoff_seconds=5.0,
                                 resend_on_connection_loss=False),
    CallKind.CHECK: CallPolicy(timeout_seconds=12 * 3600, connect_attempts=4, backoff_seconds=5.0,
                               resend_on_connection_loss=False),
}
LOGIN_TIMEOUT_SECONDS = 15

# ODBC SQLSTATEs that mean "the connection, not the statement": 08xxx connection exceptions,
# HYT00/HYT01 timeouts while connecting.
_CONNECTION_STATES = ("08", "HYT")


class DbApiCursor(Protocol):
    description: Any
    messages: Any

    def execute(self, sql: str, *params: Any) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def nextset(self) -> bool | None: ...
    def close(self) -> None: ...


class DbApiConnection(Protocol):
    autocommit: bool
    timeout: int

    def cursor(self) -> DbApiCursor: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class ResultSet:
    columns: tuple[str, ...]
    rows: tuple[tuple, ...]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass
class StatementResult:
    result_sets: list[ResultSet] = field(default_factory=list)
    messages: list[SqlMessage] = field(default_factory=list)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The rows of the first result set, as dicts (what most callers want)."""
        return self.result_sets[0].dicts() if self.result_sets else []


# "[42000] [FreeTDS][SQL Server]text (4305) (SQLExecDirectW); [42000] [FreeTDS][SQL Server]text (3013)"
_DIAG = re.compile(
    r"\[(?P<state>[0-9A-Z]{5})\] (?P<prefix>(?:\[[^\]]*\])+)(?P<text>.*?) \((?P<number>-?\d+)\)"
    r"(?: \(SQL\w+\))?(?=; \[[0-9A-Z]{5}\] \[|$)",
    re.DOTALL,
)
_PREFIXES = re.compile(r"^(?:\[[^\]]*\])+")


def parse_driver_error(exc: BaseException) -> list[SqlMessage]:
    """SQL Server's messages out of a pyodbc error (its only carrier of native error numbers)."""
    args = getattr(exc, "args", ())
    text = str(args[1]) if len(args) > 1 else str(exc)
    state = str(args[0]) if args else ""
    found = [SqlMessage(number=int(m["number"]), text=m["text"].strip(), sqlstate=m["state"])
             for m in _DIAG.finditer(text)]
    if found:
        return found
    return [SqlMessage(number=0, text=_PREFIXES.sub("", text).strip() or repr(exc), sqlstate=state)]


def parse_driver_message(message: Sequence[Any]) -> SqlMessage:
    """One entry of pyodbc's ``cursor.messages``: ``('[01000] (3211)', '[driver][SQL Server]text')``."""
    head, text = str(message[0]), str(message[1])
    match = re.match(r"\[(?P<state>[0-9A-Z]{5})\] \((?P<number>-?\d+)\)", head)
    number = int(match["number"]) if match else 0
    return SqlMessage(number=number, text=_PREFIXES.sub("", text).strip(), sqlstate=match["state"] if match else "")


def _is_connection_failure(messages: Sequence[SqlMessage]) -> bool:
    return any(m.sqlstate.startswith(_CONNECTION_STATES) for m in messages)


class SqlServer:
    """One SQL Server instance, reached through an Airflow connection id.

    ``connect`` (a function of the login timeout) and ``sleep`` are injectable so the retry and
    drain logic can be tested without a server; production uses the ODBC provider.
    """

    def __init__(self, conn_id: str, *, connect: Callable[[int], DbApiConnection] | None = None,
                 sleep: Callable[[float], None] = time.sleep, logger: logging.Logger | None = None) -> None:
        self.conn_id = conn_id
        if connect is None:  # production: the connection is Airflow's, looked up at the edge
            from biztalk_dr.edge.connections import airflow_connector

            connect = airflow_connector(conn_id)
        self._connect = connect
        self._sleep = sleep
        self._log = logger or log
        self._conn: DbApiConnection | None = None

    # -- connection -------------------------------------------------------------------------------
    def _connection(self, policy: CallPolicy) -> DbApiConnection:
        if self._conn is not None:
            return self._conn
        delay = policy.backoff_seconds
        for attempt in range(1, policy.connect_attempts + 1):
            try:
                conn = self._connect(LOGIN_TIMEOUT_SECONDS)
            except Exception as exc:
                if not _is_driver_error(exc):
                    raise
                messages = parse_driver_error(exc)
                login_refused = any(sql_error_class(m.number) is LoginRefused for m in messages) or any(
                    m.sqlstate == "28000" for m in messages)
                if login_refused or attempt == policy.connect_attempts:
                    first = messages[0]
                    what = "refused the login" if login_refused else "cannot be reached"
                    cls = sql_error_class(first.number)  # LoginRefused for 18456
                    raise (cls if issubclass(cls, SqlConnectionError) else SqlConnectionError)(
                        first.number, f"{what} after {attempt} attempt(s): {first.text}",
                        messages=messages, conn_id=self.conn_id) from None
                self._log.warning("%s: connection attempt %d/%d failed (%s); retrying in %.0f s",
                                  self.conn_id, attempt, policy.connect_attempts, messages[0].text, delay)
                self._sleep(delay)
                delay *= 2
                continue
            conn.autocommit = True  # BACKUP/RESTORE fail inside a transaction (3021)
            self._conn = conn
            return conn
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def __enter__(self) -> SqlServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- statements -------------------------------------------------------------------------------
    def run(self, sql: str, params: Sequence[Any] = (), *, kind: CallKind = CallKind.PROCEDURE) -> StatementResult:
        """Run one statement to its very end; every message goes to the log, errors raise typed."""
        policy = CALL_POLICIES[kind]
        resends = 1 if policy.resend_on_connection_loss else 0
        while True:
            conn = self._connection(policy)
            conn.timeout = policy.timeout_seconds
            try:
                return self._run_once(conn, sql, params)
            except SqlServerError as exc:
                if _is_connection_failure(exc.messages):
                    self.close()
                    if resends > 0:
                        resends -= 1
                        self._log.warning("%s: connection lost during a read (%s); sending it again",
                                          self.conn_id, exc.text)
                        continue
                    raise SqlConnectionError(exc.number, f"connection lost during the statement: {exc.text}",
                                             messages=exc.messages, conn_id=self.conn_id,
                                             statement=sql) from None
                raise

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """A read: the rows of its first result set as dicts."""
        return self.run(sql, params, kind=CallKind.QUERY).rows

    def _run_once(self, conn: DbApiConnection, sql: str, params: Sequence[Any]) -> StatementResult:
        self._log.info("%s: %s", self.conn_id, sql)
        result = StatementResult()
        cursor = conn.cursor()
        try:
            try:
                cursor.execute(sql, *params) if params else cursor.execute(sql)
                while True:
                    self._collect_messages(cursor, result)
                    if cursor.description:
                        columns = tuple(c[0] for c in cursor.description)
                        rows = tuple(tuple(r) for r in cursor.fetchall())
                        result.result_sets.append(ResultSet(columns, rows))
                    if not cursor.nextset():
                        break
                self._collect_messages(cursor, result)
            except Exception as exc:
                if not _is_driver_error(exc):
                    raise
                self._collect_messages(cursor, result)
                errors = parse_driver_error(exc)
                for message in errors:
                    self._log.error("%s: SQL Server error %d: %s", self.conn_id, message.number, message.text)
                raise sql_error_for(errors, conn_id=self.conn_id, statement=sql) from None
        finally:
            try:
                cursor.close()
            except Exception:  # noqa: BLE001 - closing a cursor on a dead connection must not hide the cause
                pass
        return result

    def _collect_messages(self, cursor: DbApiCursor, result: StatementResult) -> None:
        for raw in getattr(cursor, "messages", None) or ():
            message = parse_driver_message(raw)
            result.messages.append(message)
            self._log.info("%s: [%d] %s", self.conn_id, message.number, message.text)
        if isinstance(getattr(cursor, "messages", None), list):
            cursor.messages.clear()  # so a message is never logged twice across nextset() calls


def _is_driver_error(exc: BaseException) -> bool:
    """A DB-API error of the ODBC driver, not a bug in our code."""
    import pyodbc

    return isinstance(exc, pyodbc.Error)
