"""A stand-in server process per test module, reached through the three real client stacks.

``Client`` hides only what differs between pyodbc and pymssql (how an error's number is carried);
everything else is the driver's own behaviour, so a test here is what a product query would see.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymssql
import pyodbc
import pytest

from sqlserver_standin.cli import PASSWORD_ENV_VAR
from tests.conftest import free_port
from tests.sqlserver_standin.tds.conftest import odbc_connection_string

STACKS = ("freetds", "msodbc", "pymssql")
LOGIN = "standin_tester"


class ServerError(Exception):
    def __init__(self, numbers: list[int], text: str) -> None:
        super().__init__(text)
        self.numbers = numbers

    @property
    def number(self) -> int:
        return self.numbers[0]


def _numbers(exc: BaseException) -> list[int]:
    if isinstance(exc, pymssql.Error):
        first = exc.args[0] if exc.args else None
        if isinstance(first, tuple) and first:  # connect errors: ((number, text), ...)
            first = first[0]
        return [int(first)] if isinstance(first, int) else [0]
    text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    return [int(n) for n in re.findall(r"\((\d+)\)(?: \(SQL\w+\))?(?:;|$)", text)] or [0]


class Client:
    """One connection: ``rows(sql)`` returns the first result set, ``run(sql)`` drains all of them."""

    def __init__(self, conn: object, stack: str) -> None:
        self.conn = conn
        self.stack = stack

    def run(self, sql: str, params: tuple = ()) -> list[list[tuple]]:
        cursor = self.conn.cursor()
        # DB-Library treats severity 7..10 messages (4035 "Processed N pages", 3014) as errors unless told
        # otherwise; SQL Server documents them as informational (severity 10 and lower).
        previous = pymssql._mssql.min_error_severity
        pymssql._mssql.min_error_severity = 11
        try:
            if self.stack == "pymssql":
                cursor.execute(sql, params or None)
            else:
                cursor.execute(sql, *params)
            sets = []
            while True:
                if cursor.description:
                    sets.append([tuple(r) for r in cursor.fetchall()])
                if not cursor.nextset():
                    break
            return sets
        except (pyodbc.Error, pymssql.Error) as exc:
            raise ServerError(_numbers(exc), str(exc)) from None
        finally:
            pymssql._mssql.min_error_severity = previous
            cursor.close()

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        sets = self.run(sql, params)
        return sets[0] if sets else []

    def value(self, sql: str, params: tuple = ()) -> object:
        return self.rows(sql, params)[0][0]

    def error(self, sql: str) -> ServerError:
        with pytest.raises(ServerError) as caught:
            self.run(sql)
        return caught.value

    def close(self) -> None:
        self.conn.close()


@dataclass
class Instance:
    name: str
    data_dir: Path
    port: int
    password: str
    process: subprocess.Popen | None = None

    def start(self, *, workload: float = 0) -> Instance:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sqlserver_standin.cli", "serve", "--data-dir", str(self.data_dir),
             "--port", str(self.port), "--name", self.name, "--login", LOGIN, "--workload-interval", str(workload)],
            env={**os.environ, PASSWORD_ENV_VAR: self.password},  # never on the command line (ps)
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.process.stdout.readline()
        if "ready" not in line:
            self.process.kill()
            raise RuntimeError(f"stand-in {self.name} did not start: {line}{self.process.stdout.read()[-3000:]}")
        return self

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as when a server loses power."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def connect(self, stack: str = "freetds", *, password: str | None = None, database: str | None = None) -> Client:
        password = self.password if password is None else password
        try:
            if stack == "pymssql":
                conn = pymssql.connect(server="127.0.0.1", port=self.port, user=LOGIN, password=password,
                                       database=database or "", login_timeout=5, autocommit=True)
            else:
                conn = pyodbc.connect(odbc_connection_string(stack, self.port, LOGIN, password, database),
                                      autocommit=True, timeout=5)
        except (pyodbc.Error, pymssql.Error) as exc:
            raise ServerError(_numbers(exc), str(exc)) from None
        return Client(conn, stack)


def new_instance(data_dir: Path, name: str = "SQLPRD01") -> Instance:
    return Instance(name, data_dir, free_port(), secrets.token_urlsafe(12))


@pytest.fixture(scope="module")
def instance(tmp_path_factory) -> Iterator[Instance]:
    running = new_instance(tmp_path_factory.mktemp("standin")).start()
    yield running
    running.stop()


@pytest.fixture
def sql(instance) -> Iterator[Client]:
    client = instance.connect("freetds")
    yield client
    client.close()


def wait_until(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)
