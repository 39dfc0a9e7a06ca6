"""The behaviour model of one SQL Server instance: sessions, databases, T-SQL batches, errors.

``StandinEngine`` implements the ``Engine`` protocol of ``events.py``. A batch is parsed whole
first (a syntax error runs nothing, as on SQL Server), then run statement by statement; an error
ends the statement or the batch as SQL Server decides (``messages.Abort``). Calls from several
connection threads are serialised by one lock; a session that holds an open transaction on a
database makes the others wait for that database (they are blocked, as by SQL Server's locks),
and the wait ends on COMMIT/ROLLBACK, logout or an attention. See MODEL.md for what is modelled.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import shutil
import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from sqlserver_standin import commands as cmd
from sqlserver_standin import sql_query, txlog
from sqlserver_standin.batch import If, Simple, Statement, parse_batch, tokenize
from sqlserver_standin.catalog import (
    MASTER_SCHEMA,
    MSDB_SCHEMA,
    SYSTEM_DATABASES,
    Catalog,
    DatabaseInfo,
    now_text,
)
from sqlserver_standin.events import (
    ConnectionDropped,
    DatabaseChanged,
    Event,
    LoginFailed,
    Message,
    ReturnStatus,
    Session,
    StatementDone,
)
from sqlserver_standin.faults import Faults
from sqlserver_standin.messages import Abort, SqlError, sql_error
from sqlserver_standin.principals import SERVER_PRINCIPALS_SCHEMA, ensure_login
from sqlserver_standin.storage import (
    USER_DB_SCHEMA,
    DataDir,
    connect,
    install_log_triggers,
    is_internal_table,
)

__all__ = ["StandinEngine", "PRODUCT_VERSION"]

PRODUCT_VERSION = "16.0.1000.6"  # SQL Server 2022 RTM
_VERSION_TEXT = ("Microsoft SQL Server 2022 (RTM) - 16.0.1000.6 (X64) \n\tOct  8 2022 05:58:25 \n\t"
                 "Copyright (C) 2022 Microsoft Corporation\n\tDeveloper Edition (64-bit) on Linux "
                 "(SQL Server stand-in of biztalk-dr: a behaviour model, not SQL Server) <X64>")
_DML = {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"}
_SERVER_WIDE_SYS = {"databases": "sys.databases", "master_files": "sys.master_files",
                    "dm_exec_sessions": "sys.dm_exec_sessions", "server_principals": "sys.server_principals"}
_SESSIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS "sys.dm_exec_sessions" (
    session_id smallint NOT NULL PRIMARY KEY, login_time datetime NOT NULL, host_name nvarchar(128),
    program_name nvarchar(128), login_name nvarchar(128) NOT NULL, status nvarchar(30) NOT NULL,
    database_id smallint NOT NULL, is_user_process bit NOT NULL, open_transaction_count int NOT NULL);
DELETE FROM "sys.dm_exec_sessions";
"""


def _nocase(schema: str) -> str:
    """Character columns of the catalog compare case-insensitively, as under SQL Server's default collation."""
    schema = schema.replace(" COLLATE NOCASE", "")
    return re.sub(r"(\b(?:n?varchar|n?char)\((?:\d+|max)\))", r"\1 COLLATE NOCASE", schema)


@dataclass
class _Db:
    """An open database file and who holds a transaction in it."""

    info: DatabaseInfo
    conn: sqlite3.Connection
    owner: int | None = None  # spid holding an open SQLite transaction here


@dataclass
class _Transaction:
    name: str | None
    mark: bool
    description: str | None
    databases: dict[int, _Db] = field(default_factory=dict)  # database_id -> handle
    marks: dict[int, int] = field(default_factory=dict)  # database_id -> MARK record seq
    begun: str = ""


@dataclass
class SessionState:
    session: Session
    login_time: dt.datetime
    txn: _Transaction | None = None
    nocount: bool = False
    rowcount: int = 0
    error: int = 0
    identity: int | None = None
    variables: dict[str, tuple[str, object]] = field(default_factory=dict)  # per batch: name -> (type, value)
    internal: bool = False  # a session of the instance itself (is_user_process = 0)


class _Abort(Exception):
    """Ends the batch after an error that aborts it (the messages are already recorded)."""


class _Drop(Exception):
    """A drop_connection fault fired: the events so far go out, then the connection breaks."""


class StandinEngine:
    """One SQL Server instance whose state lives under ``data_dir``."""

    def __init__(self, data_dir: Path, instance_name: str, login: str, password: str, *,
                 workload: bool = False, workload_interval: float = 1.0) -> None:
        self.dir = DataDir(Path(data_dir))
        self.instance_name = instance_name
        self.machine_name = instance_name.split("\\")[0]
        self._login = login
        self._password = password
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.faults = Faults(self.dir.root)
        self._sessions: dict[int, SessionState] = {}
        self._spids = itertools.count(51)
        self._handles: dict[int, _Db] = {}
        self._local = threading.local()
        self.master = self._open(self.dir.master)
        self.master.executescript(_nocase(MASTER_SCHEMA) + _SESSIONS_SCHEMA + SERVER_PRINCIPALS_SCHEMA)
        ensure_login(self.master, login)
        self.catalog = Catalog(self.master)
        self.msdb = self._open(self.dir.msdb)
        self.msdb.executescript(_nocase(MSDB_SCHEMA))
        self._bootstrap()
        self._workload = None
        if workload:
            from sqlserver_standin.workload import Workload

            self._workload = Workload(self, interval=workload_interval)
            self._workload.start()

    # ------------------------------------------------------------------------------------------ files
    def _open(self, path: Path) -> sqlite3.Connection:
        conn = connect(path)
        conn.executescript(USER_DB_SCHEMA)
        self._register_functions(conn)
        return conn

    def _bootstrap(self) -> None:
        with self.lock:
            created = now_text()
            self.master.execute("BEGIN IMMEDIATE")
            for name, (database_id, recovery) in SYSTEM_DATABASES.items():
                if self.catalog.by_id(database_id) is None:
                    file = {"master": "master.sqlite", "msdb": "msdb.sqlite"}.get(name, f"data/{name}.sqlite")
                    self.catalog.add(database_id=database_id, name=name, file=file, recovery=recovery,
                                     state="ONLINE", create_date=created, files=self.default_files(name))
            self.master.execute("COMMIT")
            for name in ("tempdb", "model"):
                info = self.catalog.get(name)
                if name == "tempdb":  # tempdb is recreated at every start
                    (self.dir.root / info.file).unlink(missing_ok=True)
                self.handle(info)

    def default_files(self, name: str) -> list[tuple[str, str, str]]:
        """Logical and physical files a new database gets (the instance's default data path)."""
        folder = self.default_path()
        logical = "master" if name == "master" else name
        return [(logical, f"{folder}{name}.mdf", "ROWS"), (f"{logical}_log", f"{folder}{name}_log.ldf", "LOG")]

    def default_path(self) -> str:
        return str(self.dir.data) + "/"

    def handle(self, info: DatabaseInfo) -> _Db:
        """The open database file of ``info`` (opened on first use)."""
        db = self._handles.get(info.database_id)
        if db is not None and db.info.file == info.file:
            db.info = info
            return db
        if db is not None:
            db.conn.close()
        if info.name.lower() == "master":
            conn = self.master
        elif info.name.lower() == "msdb":
            conn = self.msdb
        else:
            conn = self._open(self.dir.root / info.file)
        db = _Db(info, conn)
        self._handles[info.database_id] = db
        return db

    def close_handle(self, database_id: int) -> None:
        db = self._handles.pop(database_id, None)
        if db is not None and db.conn not in (self.master, self.msdb):
            db.conn.close()

    def close(self) -> None:
        """Stop the workload and close every file (tests; a killed process needs no close)."""
        if self._workload is not None:
            self._workload.stop()
        with self.lock:
            for database_id in list(self._handles):
                self.close_handle(database_id)
            self.master.close()
            self.msdb.close()

    # ------------------------------------------------------------------------------------------ clock
    @staticmethod
    def now() -> dt.datetime:
        return dt.datetime.now()

    # ------------------------------------------------------------------------------------------ sessions
    def accepting_connections(self) -> bool:
        return self.faults.find("refuse_connections") is None

    def login(self, *, user: str, password: str, database: str | None, host_name: str,
              program_name: str) -> Session:
        if user != self._login or password != self._password:
            raise LoginFailed(user, "Password did not match that for the login provided." if user == self._login
                              else "Could not find a login matching the name provided.")
        with self.lock:
            target = "master"
            if database:
                info = self.catalog.get(database)
                if info is None or info.state_desc != "ONLINE":
                    raise LoginFailed(user, f'Cannot open database "{database}" requested by the login. '
                                            "The login failed.")
                target = info.name
            session = Session(spid=next(self._spids), login=user, database=target, host_name=host_name,
                              program_name=program_name)
            self._sessions[session.spid] = SessionState(session, self.now())
            self._sync_sessions()
            return session

    def internal_session(self, program_name: str) -> Session:
        """A session of the instance itself (the workload), which no client login can see or end."""
        with self.lock:
            session = Session(spid=next(self._spids), login=self._login, database="master", host_name="",
                              program_name=program_name)
            self._sessions[session.spid] = SessionState(session, self.now(), internal=True)
            return session

    def online_user_databases(self) -> list[str]:
        with self.lock:
            return [info.name for info in self.catalog.all()
                    if info.database_id > 4 and info.state_desc == "ONLINE" and not info.is_read_only]

    def logout(self, session: Session) -> None:
        with self.lock:
            state = self._sessions.pop(session.spid, None)
            if state is not None and state.txn is not None:
                self._rollback(state)
            self._sync_sessions()
            self.cond.notify_all()

    def sessions_using(self, database: str, *, besides: int | None = None) -> list[int]:
        return [spid for spid, s in self._sessions.items()
                if s.session.database.lower() == database.lower() and spid != besides and not s.internal]

    def _sync_sessions(self) -> None:
        self.master.execute("BEGIN IMMEDIATE")
        self.master.execute('DELETE FROM "sys.dm_exec_sessions"')
        for spid, state in self._sessions.items():
            info = self.catalog.get(state.session.database)
            self.master.execute(
                'INSERT INTO "sys.dm_exec_sessions" (session_id, login_time, host_name, program_name, login_name, '
                "status, database_id, is_user_process, open_transaction_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (spid, now_text(state.login_time), state.session.host_name, state.session.program_name,
                 state.session.login, "running" if getattr(self._local, "spid", None) == spid else "sleeping",
                 info.database_id if info else 1, 0 if state.internal else 1, state.session.transaction_count))
        self.master.execute("COMMIT")

    def state_of(self, session: Session) -> SessionState:
        state = self._sessions.get(session.spid)
        if state is None:
            raise RuntimeError(f"session {session.spid} is not logged in")
        return state

    # ------------------------------------------------------------------------------------------ requests
    def execute(self, session: Session, sql: str, params: Mapping[str, object] | None = None) -> Iterator[Event]:
        with self.lock:
            runner = Runner(self, self.state_of(session), dict(params or {}))
            events = runner.run_batch(sql)
        return _stream(events, runner.dropped)

    def call_procedure(self, session: Session, name: str, args: Sequence[tuple[str | None, object]]) -> Iterator[Event]:
        with self.lock:
            runner = Runner(self, self.state_of(session), {})
            events = runner.run_rpc(name, args)
        return _stream(events, runner.dropped)

    # ------------------------------------------------------------------------------------------ locking
    def wait_for(self, state: SessionState, db: _Db) -> None:
        """Block while another session holds an open transaction in ``db`` (SQL Server's lock wait)."""
        while db.owner is not None and db.owner != state.session.spid:
            if state.session.cancelled:
                raise _Abort()
            self.cond.wait(0.2)

    def begin_write(self, state: SessionState, db: _Db) -> None:
        """Make ``db`` part of the session's (or an autocommit) transaction."""
        self.wait_for(state, db)
        txn = state.txn
        if db.owner == state.session.spid:
            return
        db.conn.execute("BEGIN IMMEDIATE")
        db.owner = state.session.spid
        txlog.begin_transaction(db.conn)
        if txn is not None:
            txn.databases[db.info.database_id] = db
            if txn.mark:
                txn.marks[db.info.database_id] = txlog.write_record(
                    db.conn, "MARK", mark=txn.name, img=txn.description, at=now_text())

    def commit_db(self, db: _Db, *, mark: str | None = None) -> None:
        txlog.write_record(db.conn, "COMMIT", mark=mark, at=now_text())
        db.conn.execute("COMMIT")
        db.owner = None
        self.cond.notify_all()

    def rollback_db(self, db: _Db) -> None:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        db.owner = None
        self.cond.notify_all()

    def _rollback(self, state: SessionState) -> None:
        if state.txn is not None:
            for db in state.txn.databases.values():
                self.rollback_db(db)
        state.txn = None
        state.session.transaction_count = 0

    def commit_transaction(self, state: SessionState) -> None:
        txn = state.txn
        assert txn is not None
        for database_id, db in txn.databases.items():
            self.commit_db(db, mark=txn.name if database_id in txn.marks else None)
        if txn.mark and txn.marks:
            self.msdb.execute("BEGIN IMMEDIATE")
            for database_id, seq in txn.marks.items():
                info = self.catalog.by_id(database_id)
                self.msdb.execute(
                    'INSERT INTO "dbo.logmarkhistory" (database_name, mark_name, description, user_name, lsn, '
                    "mark_time) VALUES (?, ?, ?, ?, ?, ?)",
                    (info.name, txn.name, txn.description, state.session.login, int(txlog_lsn(seq)), now_text()))
            self.msdb.execute("COMMIT")
        state.txn = None
        state.session.transaction_count = 0

    # ------------------------------------------------------------------------------------------ SQL functions
    def _register_functions(self, conn: sqlite3.Connection) -> None:
        local = self._local
        engine = self

        def session() -> SessionState | None:
            return getattr(local, "state", None)

        def now_local() -> str:
            return now_text()

        def now_utc() -> str:
            return now_text(dt.datetime.now(dt.UTC).replace(tzinfo=None))

        def precise(value: dt.datetime) -> str:
            return value.strftime("%Y-%m-%d %H:%M:%S.%f")

        def db_name(database_id: int | None = None) -> str | None:
            if database_id is None:
                state = session()
                return state.session.database if state else "master"
            info = engine.catalog.by_id(int(database_id))
            return info.name if info else None

        def db_id(name: str | None = None) -> int | None:
            name = name if name is not None else db_name()
            info = engine.catalog.get(str(name))
            return info.database_id if info else None

        def sysvar(name: str) -> object:
            state = session()
            values = {
                "@@SERVERNAME": engine.instance_name,
                "@@SERVICENAME": engine.instance_name.split("\\")[1] if "\\" in engine.instance_name else "MSSQLSERVER",
                "@@VERSION": _VERSION_TEXT, "@@SPID": state.session.spid if state else 0,
                "@@TRANCOUNT": state.session.transaction_count if state else 0,
                "@@ROWCOUNT": state.rowcount if state else 0, "@@ERROR": state.error if state else 0,
                "@@IDENTITY": state.identity if state else None, "@@LANGUAGE": "us_english",
                "@@MAX_PRECISION": 38, "@@TEXTSIZE": 2147483647, "@@DATEFIRST": 7, "@@LOCK_TIMEOUT": -1,
                "@@OPTIONS": 5496, "@@MICROSOFTVERSION": 0x10000000 | 1000,
            }
            if name.upper() not in values:
                raise ValueError(f"{name} is not modelled")
            return values[name.upper()]

        def serverproperty(name: str) -> object:
            instance = engine.instance_name.split("\\")[1] if "\\" in engine.instance_name else None
            values = {
                "servername": engine.instance_name, "machinename": engine.machine_name, "instancename": instance,
                "productversion": PRODUCT_VERSION, "productlevel": "RTM", "edition": "Developer Edition (64-bit)",
                "engineedition": 3, "productmajorversion": "16", "productminorversion": "0",
                "collation": "SQL_Latin1_General_CP1_CI_AS", "isclustered": 0, "ishadrenabled": 0,
                "issingleuser": 0, "isintegratedsecurityonly": 0, "instancedefaultdatapath": engine.default_path(),
                "instancedefaultlogpath": engine.default_path(),
                "instancedefaultbackuppath": str(engine.dir.root / "backup") + "/",
                "computernamephysicalnetbios": socket.gethostname().upper(),
            }
            return values.get(str(name).lower())

        def object_id(name: str, kind: str | None = None) -> int | None:
            state = session()
            parts = [p.strip("[]") for p in str(name).split(".")]
            database = parts[-3] if len(parts) >= 3 and parts[-3] else (state.session.database if state else "master")
            schema = parts[-2] if len(parts) >= 2 and parts[-2] else "dbo"
            info = engine.catalog.get(database)
            if info is None or info.state_desc != "ONLINE":
                return None
            row = engine.handle(info).conn.execute(
                "SELECT rowid FROM sqlite_master WHERE type IN ('table', 'view') AND name = ? COLLATE NOCASE",
                (f"{schema}.{parts[-1]}",)).fetchone()
            return row[0] if row else None

        def quotename(value: str | None, quote: str = "[") -> str | None:
            if value is None:
                return None
            if quote in ("[", "]"):
                return "[" + value.replace("]", "]]") + "]"
            return quote + value.replace(quote, quote * 2) + quote

        def databasepropertyex(name: str, prop: str) -> object:
            info = engine.catalog.get(str(name))
            if info is None:
                return None
            return {"status": info.state_desc, "recovery": info.recovery_model_desc,
                    "updateability": "READ_ONLY" if info.is_read_only else "READ_WRITE",
                    "useraccess": "MULTI_USER", "collation": "SQL_Latin1_General_CP1_CI_AS"}.get(str(prop).lower())

        def dateadd(part: str, number: int, value: str) -> str:
            base = dt.datetime.fromisoformat(str(value))
            part = part.lower()
            units = {"year": None, "yy": None, "yyyy": None, "month": None, "mm": None, "m": None}
            if part in units:
                months = int(number) * (12 if part.startswith("y") else 1)
                year, month = divmod(base.month - 1 + months, 12)
                return precise(base.replace(year=base.year + year, month=month + 1))
            seconds = {"day": 86400, "dd": 86400, "d": 86400, "hour": 3600, "hh": 3600, "minute": 60, "mi": 60,
                       "n": 60, "second": 1, "ss": 1, "s": 1, "week": 604800, "wk": 604800, "millisecond": 0.001,
                       "ms": 0.001}[part]
            return precise(base + dt.timedelta(seconds=seconds * int(number)))

        def datediff(part: str, start: str, end: str) -> int:
            a, b = dt.datetime.fromisoformat(str(start)), dt.datetime.fromisoformat(str(end))
            part = part.lower()
            if part in ("year", "yy", "yyyy"):
                return b.year - a.year
            if part in ("month", "mm", "m"):
                return (b.year - a.year) * 12 + b.month - a.month
            if part in ("day", "dd", "d"):
                return (b.date() - a.date()).days
            if part in ("week", "wk", "ww"):
                return ((b.date() - a.date()).days + a.isoweekday() % 7) // 7
            floor = {"hour": 3600, "hh": 3600, "minute": 60, "mi": 60, "n": 60, "second": 1, "ss": 1, "s": 1}[part]
            return int(b.timestamp() // floor - a.timestamp() // floor)

        def login_name() -> str | None:
            state = session()
            return state.session.login if state else None

        functions = {
            "ST_GETDATE": (0, now_local), "ST_GETUTCDATE": (0, now_utc),
            "ST_SYSDATETIME": (0, lambda: precise(dt.datetime.now())),
            "ST_SYSUTCDATETIME": (0, lambda: precise(dt.datetime.now(dt.UTC).replace(tzinfo=None))),
            "ST_DB_NAME": (-1, db_name), "ST_DB_ID": (-1, db_id), "ST_SUSER_SNAME": (-1, lambda *a: login_name()),
            "ST_SUSER_NAME": (-1, lambda *a: login_name()), "ST_USER_NAME": (-1, lambda *a: "dbo"),
            "ST_ORIGINAL_LOGIN": (0, login_name), "ST_SYSTEM_USER": (0, login_name),
            "ST_CURRENT_USER": (0, lambda: "dbo"), "ST_SESSION_USER": (0, lambda: "dbo"),
            "ST_SYSVAR": (1, sysvar), "ST_SERVERPROPERTY": (1, serverproperty), "ST_OBJECT_ID": (-1, object_id),
            "ST_HOST_NAME": (0, lambda: session().session.host_name if session() else None),
            "ST_APP_NAME": (0, lambda: session().session.program_name if session() else None),
            "ST_NEWID": (0, lambda: str(uuid.uuid4()).upper()), "ST_QUOTENAME": (-1, quotename),
            "ST_DATABASEPROPERTYEX": (2, databasepropertyex),
            "ST_SCOPE_IDENTITY": (0, lambda: session().identity if session() else None),
            "ST_DATEADD": (3, dateadd), "ST_DATEDIFF": (3, datediff), "ST_IS_SRVROLEMEMBER": (-1, lambda *a: 1),
            "ST_FILE_NAME": (1, lambda i: None),
        }
        for name, (nargs, fn) in functions.items():
            conn.create_function(name, nargs, fn)
        conn.create_function("LEN", 1, lambda s: None if s is None else len(str(s).rstrip(" ")), deterministic=True)

    # ------------------------------------------------------------------------------------------ helpers for parts
    def database(self, name: str) -> DatabaseInfo | None:
        return self.catalog.get(name)

    def run_nested(self, state: SessionState, sql: str, params: Mapping[str, object] | None = None,
                   *, in_procedure: bool = True) -> tuple[list[Event], list[Message]]:
        """Run T-SQL on behalf of a procedure; returns its events and its error messages."""
        runner = Runner(self, state, dict(params or {}), in_procedure=in_procedure)
        events = runner.run_batch(sql)
        errors = [e for e in events if isinstance(e, Message) and e.is_error]
        return events, errors


def txlog_lsn(seq: int) -> Decimal:
    from sqlserver_standin.lsn import lsn_from_seq

    return lsn_from_seq(seq)


def _stream(events: list[Event], dropped: bool) -> Iterator[Event]:
    yield from events
    if dropped:
        raise ConnectionDropped("the connection was dropped mid-statement (fault injection)")


class Runner:
    """Runs one batch (or RPC) for one session."""

    def __init__(self, engine: StandinEngine, state: SessionState, params: dict[str, object], *,
                 in_procedure: bool = False) -> None:
        self.engine = engine
        self.state = state
        self.params = params
        self.in_procedure = in_procedure
        self.events: list[Event] = []
        self.dropped = False
        self.variables: dict[str, tuple[str, object]] = {}
        for name, value in params.items():
            key = name if name.startswith("@") else "@" + name
            self.variables[key.lower()] = ("sql_variant", value)

    # ------------------------------------------------------------------------------------------ entry points
    def run_batch(self, sql: str) -> list[Event]:
        previous = getattr(self.engine._local, "state", None)
        self.engine._local.state = self.state
        try:
            try:
                statements = parse_batch(sql)
                compiled = self._compile(statements)
            except SqlError as exc:
                self._error(exc)
                return self.events
            try:
                self._run_list(statements, compiled)
            except _Abort:
                pass
            except _Drop:
                self.dropped = True
            return self.events
        finally:
            self.engine._local.state = previous

    def run_rpc(self, name: str, args: Sequence[tuple[str | None, object]]) -> list[Event]:
        from sqlserver_standin.procedures import call

        self.engine._local.state = self.state
        try:
            parts = [p.strip("[]") for p in name.split(".")]
            try:
                status = call(self, parts, name, [(n, v) for n, v in args], rpc=True)
                self.events.append(ReturnStatus(status))
            except SqlError as exc:
                self._error(exc)
                self.events.append(ReturnStatus(-6 if exc.number == 2812 else -4))
            except _Abort:
                pass
            return self.events
        finally:
            self.engine._local.state = None

    # ------------------------------------------------------------------------------------------ compile
    def _compile(self, statements: Sequence[Statement]) -> dict[int, object]:
        compiled: dict[int, object] = {}
        for stmt in statements:
            if isinstance(stmt, If):
                compiled[id(stmt)] = self._prepare_expression(f"CASE WHEN {stmt.condition} THEN 1 ELSE 0 END")
                compiled.update(self._compile(stmt.then))
                compiled.update(self._compile(stmt.otherwise))
            elif stmt.kind in _DML or (stmt.kind in ("CREATE", "DROP") and len(stmt.tokens) > 1
                                       and stmt.tokens[1].is_word("TABLE")):
                compiled[id(stmt)] = sql_query.prepare(stmt.kind, stmt.text, stmt.tokens)
            else:
                compiled[id(stmt)] = cmd.parse_command(stmt.kind, stmt.tokens, stmt.text)
        return compiled

    @staticmethod
    def _prepare_expression(expression: str) -> sql_query.Prepared:
        text = "SELECT " + expression
        return sql_query.prepare("SELECT", text, tokenize(text))

    # ------------------------------------------------------------------------------------------ run
    def _run_list(self, statements: Sequence[Statement], compiled: dict[int, object]) -> None:
        for stmt in statements:
            if self.state.session.cancelled:
                raise _Abort()
            if isinstance(stmt, If):
                try:
                    value = self.evaluate(compiled[id(stmt)])
                except SqlError as exc:
                    self._error(exc)
                    if exc.abort == Abort.BATCH:
                        raise _Abort() from None
                    continue
                self._run_list(stmt.then if value == 1 else stmt.otherwise, compiled)
                continue
            self._run_statement(stmt, compiled[id(stmt)])

    def _run_statement(self, stmt: Simple, parsed: object) -> None:
        try:
            self.state.error = 0
            self._dispatch(stmt, parsed)
        except SqlError as exc:
            self._error(exc)
            if exc.abort == Abort.BATCH:
                raise _Abort() from None
        if self.engine.faults.consume("drop_connection", match=stmt.text) is not None:
            raise _Drop()

    def _error(self, exc: SqlError) -> None:
        self.state.error = exc.number
        self.events.extend(exc.messages())
        self.events.append(StatementDone(error=True))

    def done(self, rowcount: int | None = None) -> None:
        self.events.append(StatementDone(None if self.state.nocount else rowcount))

    # ------------------------------------------------------------------------------------------ dispatch
    def _dispatch(self, stmt: Simple, parsed: object) -> None:
        from sqlserver_standin import backup, principals, procedures, restore

        if isinstance(parsed, sql_query.Prepared):
            self._run_query(parsed)
        elif isinstance(parsed, cmd.Backup):
            self._no_transaction()
            self.events.extend(backup.run_backup(self, parsed))
            self.done()
        elif isinstance(parsed, cmd.Restore):
            if parsed.kind in ("DATABASE", "LOG"):
                self._no_transaction()
            self.events.extend(restore.run_restore(self, parsed))
            self.done()
        elif isinstance(parsed, cmd.Dbcc):
            self.events.extend(restore.run_checkdb(self, parsed))
            self.done()
        elif isinstance(parsed, cmd.Exec):
            status = procedures.call(self, parsed.procedure, parsed.written,
                                     [(n, self.value(v) if not v.is_default else procedures.DEFAULT)
                                      for n, v, _out in parsed.args])
            if parsed.return_variable:
                self.assign(parsed.return_variable, status)
            self.done()
        elif isinstance(parsed, cmd.ExecDynamic):
            text = "".join(str(self.value(p) or "") for p in parsed.parts)
            nested = Runner(self.engine, self.state, {}, in_procedure=True)
            self.events.extend(nested.run_batch(text))
            self.dropped = self.dropped or nested.dropped
        elif isinstance(parsed, cmd.SetOption):
            self._set_option(parsed)
        elif isinstance(parsed, cmd.SetVariable):
            self._set_variable(parsed)
        elif isinstance(parsed, cmd.Declare):
            for name, type_text, initial in parsed.variables:
                if name.lower() in self.variables:
                    raise sql_error(134, name, abort=Abort.BATCH)
                value = self.evaluate(self._prepare_expression(initial)) if initial else None
                self.variables[name.lower()] = (type_text, self._coerce(type_text, value))
        elif isinstance(parsed, cmd.Use):
            self.use(parsed.database)
        elif isinstance(parsed, cmd.BeginTran):
            self._begin_tran(parsed)
        elif isinstance(parsed, cmd.CommitTran):
            if self.state.session.transaction_count == 0:
                raise sql_error(3902)
            self.state.session.transaction_count -= 1
            if self.state.session.transaction_count == 0:
                self.engine.commit_transaction(self.state)
            self.done()
        elif isinstance(parsed, cmd.RollbackTran):
            if self.state.session.transaction_count == 0:
                raise sql_error(3903)
            self.engine._rollback(self.state)
            self.done()
        elif isinstance(parsed, cmd.CreateDatabase | cmd.AlterDatabase | cmd.DropDatabase):
            from sqlserver_standin import databases

            databases.run(self, parsed)
            self.done()
        elif isinstance(parsed, principals.CreateLogin | principals.CreateUser | principals.AlterUser):
            principals.run(self, parsed)
            self.done()
        elif isinstance(parsed, cmd.Print):
            value = self.evaluate(self._prepare_expression(parsed.expression))
            self.events.append(Message(0, 0, 1, "" if value is None else str(value)))
        elif isinstance(parsed, cmd.Raiserror):
            self._raiserror(parsed)
        else:
            raise cmd.not_modelled(f"the statement '{stmt.text[:40]}'")

    def _no_transaction(self) -> None:
        if self.state.session.transaction_count > 0:
            raise sql_error(3021)

    # ------------------------------------------------------------------------------------------ values
    def value(self, value: cmd.Value) -> object:
        if value.variable is not None:
            return self.variable(value.variable)
        if value.expression is not None:
            return self.evaluate(self._prepare_expression(value.expression))
        return value.literal

    def variable(self, name: str) -> object:
        key = name.lower()
        if key not in self.variables:
            raise sql_error(137, name, abort=Abort.BATCH)
        return self.variables[key][1]

    def assign(self, name: str, value: object) -> None:
        key = name.lower()
        if key not in self.variables:
            raise sql_error(137, name, abort=Abort.BATCH)
        type_text = self.variables[key][0]
        self.variables[key] = (type_text, self._coerce(type_text, value))

    @staticmethod
    def _coerce(type_text: str, value: object) -> object:
        spec = sql_query.spec_from_declared(type_text)
        if spec is None or value is None:
            return value
        return sql_query.convert_value(value, spec)

    def evaluate(self, prepared: sql_query.Prepared) -> object:
        result = sql_query.run(prepared, _Resolver(self), self._bound())
        if result.result is None or not result.result.rows:
            return None
        return result.result.rows[0][0]

    def _bound(self) -> dict[str, object]:
        return {name.lstrip("@"): value for name, (_t, value) in self.variables.items()}

    # ------------------------------------------------------------------------------------------ queries
    def _run_query(self, prepared: sql_query.Prepared) -> None:
        resolver = _Resolver(self)
        try:
            if prepared.kind in ("CREATE_TABLE", "DROP_TABLE"):
                self._ddl(prepared, resolver)
                self.done()
                return
            result = sql_query.run(prepared, resolver, self._bound())
            resolver.finish(success=True)
        except BaseException:
            resolver.finish(success=False)
            raise
        if result.assignments is not None:
            for name, value in result.assignments.items():
                if value is not sql_query._UNCHANGED:
                    self.assign(name, value)
            self.state.rowcount = result.rowcount
            self.done(result.rowcount)
            return
        if result.result is not None:
            self.events.append(result.result)
        if prepared.kind == "INSERT" and result.lastrowid:
            self.state.identity = result.lastrowid
        self.state.rowcount = result.rowcount
        self.done(result.rowcount)

    def _ddl(self, prepared: sql_query.Prepared, resolver: _Resolver) -> None:
        from sqlglot import exp

        tree = prepared.tree
        table = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        if prepared.kind == "DROP_TABLE":
            table = tree.find(exp.Table)
        info, db = resolver.database_for_write(table.catalog or None, table.db or None)
        name = f"{table.db or 'dbo'}.{table.name}"
        existing = db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE",
                                   (name,)).fetchone()
        if prepared.kind == "CREATE_TABLE":
            if existing:
                raise sql_error(2714, table.name)
            ddl, _columns = sql_query.create_table_ddl(prepared, name)
        else:
            if not existing:
                if tree.args.get("exists"):
                    return
                raise sql_error(3701, "table", _written(table))
            ddl = f'DROP TABLE "{existing[0]}"'
        self.engine.begin_write(self.state, db)
        try:
            db.conn.execute(ddl)
            if prepared.kind == "CREATE_TABLE":
                install_log_triggers(db.conn, name)
            txlog.write_record(db.conn, "DDL", tbl=name if prepared.kind == "CREATE_TABLE" else None, img=ddl)
            if self.state.txn is None:
                self.engine.commit_db(db)
        except BaseException:
            if self.state.txn is None:
                self.engine.rollback_db(db)
            raise

    # ------------------------------------------------------------------------------------------ SET / USE / TRAN
    def _set_option(self, parsed: cmd.SetOption) -> None:
        for option in parsed.options:
            if option == "NOCOUNT":
                self.state.nocount = parsed.value == "ON"
            self.state.session.options[option.lower()] = parsed.value
        self.done()

    def _set_variable(self, parsed: cmd.SetVariable) -> None:
        value = self.evaluate(self._prepare_expression(parsed.expression))
        if parsed.operator != "=":
            current = self.variable(parsed.variable)
            op = parsed.operator[0]
            value = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
                     "/": lambda a, b: a / b}[op](current, value) if current is not None and value is not None else None
        self.assign(parsed.variable, value)

    def use(self, name: str) -> None:
        info = self.engine.catalog.get(name)
        if info is None:
            raise sql_error(911, name, abort=Abort.BATCH)
        if info.state_desc == "RESTORING":
            raise sql_error(927, info.name, abort=Abort.BATCH)
        if info.state_desc == "OFFLINE":
            raise sql_error(942, info.name, abort=Abort.BATCH)
        old = self.state.session.database
        self.state.session.database = info.name
        self.events.append(DatabaseChanged(old, info.name))
        self.events.append(Message(5701, 0, 1, f"Changed database context to '{info.name}'."))
        self.engine._sync_sessions()

    def _begin_tran(self, parsed: cmd.BeginTran) -> None:
        name = self.value(parsed.name) if parsed.name is not None else None
        if name is not None and len(str(name)) > 32:
            raise sql_error(103, str(name)[:32], 32, abort=Abort.BATCH)
        if parsed.mark and name is None:
            raise sql_error(102, "MARK", abort=Abort.BATCH)
        description = self.value(parsed.description) if parsed.description is not None else None
        if self.state.txn is None:
            self.state.txn = _Transaction(str(name) if name is not None else None, parsed.mark,
                                          str(description) if description is not None else None, begun=now_text())
        self.state.session.transaction_count += 1
        self.done()

    def _raiserror(self, parsed: cmd.Raiserror) -> None:
        message = self.value(parsed.message)
        severity = int(self.value(parsed.severity))
        state = int(self.value(parsed.state))
        args = [self.value(a) for a in parsed.args]
        text = str(message)
        for arg in args:
            text = re.sub(r"%[-+ #0]*\d*(?:\.\d+)?[disuxXo]", lambda m, a=arg: str(a), text, count=1)
        if severity > 10:
            raise SqlError(50000, text, severity, state)
        self.events.append(Message(50000, severity, state, text))
        self.done()


def _written(table) -> str:  # noqa: ANN001 - a sqlglot Table
    return ".".join(p for p in (table.catalog, table.db, table.name) if p)


class _Resolver(sql_query.Resolver):
    """Name resolution and connections for the queries of one runner."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.engine = runner.engine
        self.state = runner.state
        self._autocommit: _Db | None = None

    def variable(self, name: str) -> object:
        return self.runner.variable(name)

    def _database(self, name: str | None) -> DatabaseInfo:
        info = self.engine.catalog.get(name or self.state.session.database)
        if info is None:
            raise sql_error(911, name or self.state.session.database, abort=Abort.BATCH)
        if info.state_desc == "RESTORING":
            raise sql_error(927, info.name, abort=Abort.BATCH)
        if info.state_desc == "OFFLINE":
            raise sql_error(942, info.name, abort=Abort.BATCH)
        return info

    def database_for_write(self, catalog: str | None, schema: str | None) -> tuple[DatabaseInfo, _Db]:
        info = self._database(catalog)
        if info.is_read_only:
            raise sql_error(3906, info.name)
        return info, self.engine.handle(info)

    def resolve(self, catalog, schema, name, written, args=()):  # noqa: ANN001, ANN201 - see base class
        schema_l = (schema or "dbo").lower()
        lname = name.lower()
        if schema_l == "sys" and lname in _SERVER_WIDE_SYS:
            table = _SERVER_WIDE_SYS[lname]
            if lname == "dm_exec_sessions":
                self.engine._sync_sessions()
            return sql_query.TableRef("master", table, columns=self._columns(self.engine.master, table))
        if schema_l == "sys" and lname == "dm_os_volume_stats":
            if len(args) != 2:
                raise sql_error(50000, "sys.dm_os_volume_stats takes two arguments: database_id, file_id")
            return sql_query.TableRef("", subquery=self._volume_stats_sql(args[0], args[1]), columns=(
                ("database_id", "int"), ("file_id", "int"), ("volume_mount_point", "nvarchar(256)"),
                ("total_bytes", "bigint"), ("available_bytes", "bigint")))
        if schema_l == "sys" and lname == "dm_os_file_exists":
            if len(args) != 1:
                raise sql_error(50000, "sys.dm_os_file_exists takes one argument: the path")
            return sql_query.TableRef("", subquery=_file_exists_sql(str(args[0])), columns=(
                ("file_exists", "int"), ("file_is_a_directory", "int"), ("parent_directory_exists", "int")))
        info = self._database(catalog)
        db = self.engine.handle(info)
        if schema_l in ("sys", "information_schema"):
            view = _DATABASE_VIEWS.get((schema_l, lname))
            if view is None:
                raise sql_error(208, written, abort=Abort.BATCH)
            sql, columns = view
            return sql_query.TableRef(info.name, subquery=sql.replace("{dbid}", str(info.database_id)), columns=columns)
        row = db.conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name = ? "
                              "COLLATE NOCASE", (f"{schema or 'dbo'}.{name}",)).fetchone()
        if row is None or is_internal_table(name):
            raise sql_error(208, written, abort=Abort.BATCH)
        return sql_query.TableRef(info.name, row[0], columns=self._columns(db.conn, row[0]))

    def _volume_stats_sql(self, database_id: object, file_id: object) -> str:
        """The volume of one database file, as the operating system reports it (like SQL Server does)."""
        row = self.engine.master.execute('SELECT physical_name FROM "sys.master_files" WHERE database_id = ? '
                                         "AND file_id = ?", (int(database_id or 0), int(file_id or 0))).fetchone()
        if row is None:
            return ("SELECT NULL AS database_id, NULL AS file_id, NULL AS volume_mount_point, NULL AS total_bytes, "
                    "NULL AS available_bytes WHERE 0")
        folder = Path(str(row[0]).replace("\\", "/")).parent
        while not folder.is_dir() and folder != folder.parent:
            folder = folder.parent
        usage = shutil.disk_usage(folder)
        mount = str(folder).replace("'", "''")
        return (f"SELECT {int(database_id)} AS database_id, {int(file_id)} AS file_id, '{mount}' AS volume_mount_point, "
                f"{usage.total} AS total_bytes, {usage.free} AS available_bytes")

    @staticmethod
    def _columns(conn: sqlite3.Connection, table: str) -> tuple[tuple[str, str], ...]:
        return tuple((r[1], r[2]) for r in conn.execute(f'PRAGMA table_info("{table}")'))

    def connection(self, databases, *, write):  # noqa: ANN001, ANN201 - see base class
        names = [d for d in databases if d]
        if write is not None:
            names = [write] + [d for d in names if d.lower() != write.lower()]
        if not names:
            names = [self.state.session.database]
        infos = [self._database(n) for n in dict.fromkeys(n.lower() for n in names)]
        handles = [self.engine.handle(i) for i in infos]
        for h in handles:
            self.engine.wait_for(self.state, h)
        main = handles[0]
        aliases = {infos[0].name: "main"}
        if len(handles) > 1:
            if main.conn.in_transaction:
                raise cmd.not_modelled("a cross-database statement inside an open transaction")
            for i, info in enumerate(infos[1:], start=1):
                alias = f"db{i}"
                main.conn.execute("ATTACH DATABASE ? AS " + alias, (str(self.engine.dir.root / info.file),))
                aliases[info.name] = alias
        if write is not None:
            if main.info.is_read_only or infos[0].is_read_only:
                raise sql_error(3906, infos[0].name)
            if main.owner != self.state.session.spid:
                self.engine.begin_write(self.state, main)
                if self.state.txn is None:
                    self._autocommit = main
        return main.conn, aliases

    def release(self, conn, aliases):  # noqa: ANN001, ANN201 - see base class
        for alias in aliases.values():
            if alias != "main":
                if conn.in_transaction:
                    continue  # detached after the commit in finish()
                conn.execute("DETACH DATABASE " + alias)
        self._pending_detach = (conn, [a for a in aliases.values() if a != "main"])

    def finish(self, *, success: bool) -> None:
        db = self._autocommit
        if db is not None:
            if success:
                self.engine.commit_db(db)
            else:
                self.engine.rollback_db(db)
            self._autocommit = None
        pending = getattr(self, "_pending_detach", None)
        if pending:
            conn, aliases = pending
            for alias in aliases:
                if not conn.in_transaction and alias in {r[1] for r in conn.execute("PRAGMA database_list")}:
                    conn.execute("DETACH DATABASE " + alias)
            self._pending_detach = None


def _file_exists_sql(path: str) -> str:
    p = Path(path)
    exists = 1 if p.exists() else 0
    is_dir = 1 if p.is_dir() else 0
    parent = 1 if p.parent.is_dir() else 0
    return f"SELECT {exists if not is_dir else 0} AS file_exists, {is_dir} AS file_is_a_directory, " \
           f"{parent} AS parent_directory_exists"


_USER_TABLES = ("FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_standin\\_%' ESCAPE '\\' "
                "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND instr(name, '.') > 0")
_DATABASE_VIEWS: dict[tuple[str, str], tuple[str, tuple[tuple[str, str], ...]]] = {
    ("sys", "tables"): (
        "SELECT substr(name, instr(name, '.') + 1) AS name, rowid AS object_id, 1 AS schema_id, 'U' AS type, "
        "'USER_TABLE' AS type_desc " + _USER_TABLES,
        (("name", "sysname"), ("object_id", "int"), ("schema_id", "int"), ("type", "char(2)"),
         ("type_desc", "nvarchar(60)"))),
    ("sys", "objects"): (
        "SELECT substr(name, instr(name, '.') + 1) AS name, rowid AS object_id, 1 AS schema_id, 'U' AS type, "
        "'USER_TABLE' AS type_desc " + _USER_TABLES,
        (("name", "sysname"), ("object_id", "int"), ("schema_id", "int"), ("type", "char(2)"),
         ("type_desc", "nvarchar(60)"))),
    ("information_schema", "tables"): (
        "SELECT '{dbname}' AS TABLE_CATALOG, substr(name, 1, instr(name, '.') - 1) AS TABLE_SCHEMA, "
        "substr(name, instr(name, '.') + 1) AS TABLE_NAME, 'BASE TABLE' AS TABLE_TYPE " + _USER_TABLES,
        (("TABLE_CATALOG", "nvarchar(128)"), ("TABLE_SCHEMA", "nvarchar(128)"), ("TABLE_NAME", "sysname"),
         ("TABLE_TYPE", "varchar(10)"))),
    ("sys", "database_principals"): (
        "SELECT name, principal_id, type, CASE type WHEN 'S' THEN 'SQL_USER' WHEN 'U' THEN 'WINDOWS_USER' "
        "WHEN 'G' THEN 'WINDOWS_GROUP' ELSE 'DATABASE_ROLE' END AS type_desc, sid, authentication_type, "
        "CASE authentication_type WHEN 1 THEN 'INSTANCE' WHEN 3 THEN 'WINDOWS' ELSE 'NONE' END "
        "AS authentication_type_desc FROM _standin_principals",
        (("name", "sysname"), ("principal_id", "int"), ("type", "char(1)"), ("type_desc", "nvarchar(60)"),
         ("sid", "varbinary(85)"), ("authentication_type", "int"), ("authentication_type_desc", "nvarchar(60)"))),
    ("sys", "database_files"): (
        "SELECT file_id, type, type_desc, name, physical_name, state_desc, size FROM \"sys.master_files\" "
        "WHERE database_id = {dbid}",
        (("file_id", "int"), ("type", "tinyint"), ("type_desc", "nvarchar(60)"), ("name", "sysname"),
         ("physical_name", "nvarchar(260)"), ("state_desc", "nvarchar(60)"), ("size", "int"))),
}

