"""Fixtures for the TDS layer's tests: a scripted engine (a test double) behind a real server.

The engine here is deliberately not the stand-in's behaviour model: it answers each SQL text from
a script of canned events, so these tests pin down the protocol layer alone. The server, the
sockets and the three client stacks are all real.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import pymssql
import pyodbc
import pytest

from sqlserver_standin.events import (
    Event,
    LoginFailed,
    Message,
    Session,
    StatementDone,
)
from sqlserver_standin.server import BackgroundServer

LOGIN = "dr_tester"
PASSWORD = "S3cret;pa'ss"  # a ; and a ' on purpose: drivers must quote it, the server must de-obfuscate it


def _msodbc_library() -> Path | None:
    """Microsoft ODBC Driver 18 as shipped in the mssql-python-odbc wheel (loaded by path)."""
    spec = importlib.util.find_spec("mssql_python_odbc")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    return next(iter(sorted(root.glob("libs/linux/*/x86_64/lib/libmsodbcsql-18*.so*"))), None)


MSODBC_LIBRARY = _msodbc_library()

Answer = Sequence[Event] | Callable[[Session, Mapping[str, object] | None], Iterable[Event]]

class ScriptedEngine:
    """Implements the Engine protocol from a script: exact SQL text -> events (or a function)."""

    instance_name = "STANDIN-TDS-TEST"
    login_name = LOGIN
    password = PASSWORD

    def __init__(self) -> None:
        self.script: dict[str, Answer] = {}
        self.procedures: dict[str, Answer] = {}
        self.requests: list[tuple[str, str, object]] = []  # (kind, sql or procedure, params/args)
        self.live: dict[int, Session] = {}
        self._spids = itertools.count(51)
        self._lock = threading.Lock()
        self.statement_started = threading.Event()

    # -- Engine protocol ---------------------------------------------------------------------------
    def login(self, *, user: str, password: str, database: str | None, host_name: str,
              program_name: str) -> Session:
        if user != LOGIN or password != PASSWORD:
            raise LoginFailed(user, f"wrong password {password!r}" if user == LOGIN else "no such login")
        with self._lock:
            session = Session(spid=next(self._spids), login=user, database=database or "master",
                              host_name=host_name, program_name=program_name)
            self.live[session.spid] = session
        return session

    def logout(self, session: Session) -> None:
        with self._lock:
            self.live.pop(session.spid, None)

    def execute(self, session: Session, sql: str, params: Mapping[str, object] | None = None) -> Iterator[Event]:
        with self._lock:
            self.requests.append(("execute", sql, dict(params or {})))
        return self._answer(session, sql, params)

    def call_procedure(self, session: Session, name: str,
                       args: Sequence[tuple[str | None, object]]) -> Iterator[Event]:
        with self._lock:
            self.requests.append(("procedure", name, list(args)))
        answer = self.procedures.get(name.lower())
        if answer is None:
            return iter([Message(2812, 16, 62, f"Could not find stored procedure '{name}'."),
                         StatementDone(error=True)])
        return iter(answer(session, dict(args)) if callable(answer) else answer)

    # -- the script --------------------------------------------------------------------------------
    def _answer(self, session: Session, sql: str, params: Mapping[str, object] | None) -> Iterator[Event]:
        text = sql.strip()
        answer = self.script.get(text)
        if answer is not None:
            yield from (answer(session, params) if callable(answer) else answer)
            return
        upper = " ".join(text.upper().split())
        if match := re.fullmatch(r"WAITFOR DELAY '00:00:(\d+)'", upper):
            self.statement_started.set()
            deadline = time.monotonic() + int(match.group(1))
            while time.monotonic() < deadline and not session.cancelled:
                time.sleep(0.02)
            yield StatementDone()
            return
        if transaction := _transaction_statement(session, upper):
            yield from transaction
            return
        if all(s.strip().startswith("SET ") for s in re.split(r"[;\n]", upper) if s.strip()):
            yield StatementDone()
            return
        yield Message(50001, 16, 1, f"The scripted test engine has no answer for: {text[:200]}")
        yield StatementDone(error=True)


def _transaction_statement(session: Session, upper: str) -> list[Event] | None:
    """BEGIN/COMMIT/ROLLBACK and IMPLICIT_TRANSACTIONS, the way drivers send them, on the session."""
    events: list[Event] = []
    for statement in (s.strip() for s in upper.split(";") if s.strip()):
        if statement == "SET IMPLICIT_TRANSACTIONS ON":
            session.options["implicit_transactions"] = True
        elif statement == "SET IMPLICIT_TRANSACTIONS OFF":
            session.options["implicit_transactions"] = False
        elif re.fullmatch(r"BEGIN TRAN(SACTION)?( \S+)?", statement) or statement.startswith(
                "SET TRANSACTION ISOLATION LEVEL"):
            if statement.startswith("BEGIN"):
                session.transaction_count += 1
        elif re.fullmatch(r"(IF @@TRANCOUNT > 0 )?COMMIT( TRAN(SACTION)?)?( \S+)?", statement):
            session.transaction_count = max(0, session.transaction_count - 1)
        elif re.fullmatch(r"(IF @@TRANCOUNT > 0 )?ROLLBACK( TRAN(SACTION)?)?( \S+)?", statement):
            session.transaction_count = 0
        else:
            return None
        events.append(StatementDone())
    return events


@pytest.fixture
def make_engine() -> Callable[[], ScriptedEngine]:
    return ScriptedEngine


@pytest.fixture
def engine() -> ScriptedEngine:
    return ScriptedEngine()


@pytest.fixture
def client_connections() -> list[ClosingConnection]:
    """Every client connection a test opened through ``connect``."""
    return []


@pytest.fixture
def server(engine: ScriptedEngine, client_connections: list[ClosingConnection]) -> Iterator[BackgroundServer]:
    with BackgroundServer(engine) as running:
        yield running
        # before the server stops, on this thread: a connection left to the garbage collector is closed on
        # whichever thread collects it, and FreeTDS's close waits for the server's answer — on the server's
        # own event-loop thread that wait never ends (the server cannot answer while that thread waits)
        for conn in client_connections:
            conn.close()


def _odbc_password(password: str) -> str:
    return "{" + password.replace("}", "}}") + "};"  # FreeTDS needs the ; after a braced value


def odbc_connection_string(stack: str, port: int, login: str, password: str, database: str | None = None) -> str:
    """pyodbc's connection string for the "freetds" or "msodbc" stack (skips when Driver 18 is missing)."""
    if stack == "freetds":
        text = f"DRIVER={{FreeTDS}};SERVER=127.0.0.1;PORT={port};TDS_Version=7.4;"
    elif MSODBC_LIBRARY is None:
        pytest.skip("Microsoft ODBC Driver 18 (PyPI mssql-python-odbc) is not installed")
    else:
        text = f"DRIVER={{{MSODBC_LIBRARY}}};SERVER=127.0.0.1,{port};Encrypt=no;"
    if database:
        text += f"DATABASE={database};"
    return text + f"UID={login};PWD=" + _odbc_password(password)


class ClosingConnection:
    """A client connection (pyodbc or pymssql) that ``with`` closes on exit — pyodbc's own context manager
    only commits — so it never outlives its block, e.g. held by the traceback a ``pytest.raises`` keeps."""

    def __init__(self, conn: object) -> None:
        object.__setattr__(self, "_conn", conn)
        object.__setattr__(self, "closed", False)

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: object) -> None:
        setattr(self._conn, name, value)

    def __enter__(self) -> object:
        return self._conn.__enter__()

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._conn.__exit__(*exc_info)
        finally:
            self.close()

    def close(self) -> None:
        if not self.closed:
            object.__setattr__(self, "closed", True)
            self._conn.close()


@pytest.fixture
def connect(client_connections: list[ClosingConnection]) -> Callable[..., ClosingConnection]:
    """connect(stack, port, password=..., autocommit=True, timeout=0) -> a DB-API connection.

    stack: "freetds" (pyodbc + FreeTDS ODBC), "msodbc" (pyodbc + ODBC Driver 18), "pymssql".
    ``with connect(...) as conn`` closes it at the end of the block; any left open close before the
    ``server`` fixture stops its server.
    """

    def open_connection(stack: str, port: int, *, password: str = PASSWORD, autocommit: bool = True,
                        timeout: int = 0) -> ClosingConnection:
        if stack == "pymssql":
            conn = pymssql.connect(server="127.0.0.1", port=port, user=LOGIN, password=password,
                                   login_timeout=5, timeout=timeout or 60, autocommit=autocommit)
        else:
            conn = pyodbc.connect(odbc_connection_string(stack, port, LOGIN, password), autocommit=autocommit,
                                  timeout=5)
            conn.timeout = timeout
        client_connections.append(ClosingConnection(conn))
        return client_connections[-1]

    return open_connection
