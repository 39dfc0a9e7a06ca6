"""The contract between the TDS protocol layer and the behaviour model (the engine).

The protocol layer (``tds``) decodes packets into calls on an :class:`Engine`; the engine answers
with a stream of events, which the protocol layer encodes as TDS tokens:

    ResultSet        -> COLMETADATA + ROW tokens
    Message          -> INFO (severity <= 10) or ERROR token (severity >= 11)
    StatementDone    -> DONE (batch) / DONEINPROC (inside a procedure call)
    ReturnStatus     -> RETURNSTATUS
    OutputParameter  -> RETURNVALUE (sp_prepexec handles and OUTPUT parameters)
    DatabaseChanged  -> ENVCHANGE type 1 (USE, login database)

The protocol layer adds the final DONE/DONEPROC of the request itself. An engine never raises
for a SQL error: it yields a Message with severity >= 11 followed by StatementDone(error=True), as
SQL Server does; whether the batch goes on after an error follows SQL Server's rules (the engine
decides). Exceptions out of an engine are bugs and become error 50000 severity 20 at the protocol layer.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "SqlType",
    "Column",
    "ResultSet",
    "Message",
    "StatementDone",
    "ReturnStatus",
    "OutputParameter",
    "DatabaseChanged",
    "Event",
    "Session",
    "LoginFailed",
    "ConnectionDropped",
    "Engine",
]


class SqlType(enum.Enum):
    """Column types the stand-in can send (the ones the product's queries need)."""

    BIT = "bit"
    TINYINT = "tinyint"
    SMALLINT = "smallint"
    INT = "int"
    BIGINT = "bigint"
    FLOAT = "float"
    NUMERIC = "numeric"  # precision/scale on Column; LSNs are numeric(25,0)
    NVARCHAR = "nvarchar"  # length in characters on Column; None = nvarchar(max)
    VARBINARY = "varbinary"  # length in bytes; None = varbinary(max)
    DATETIME = "datetime"
    DATETIME2 = "datetime2"  # scale 7
    UNIQUEIDENTIFIER = "uniqueidentifier"


@dataclass(frozen=True)
class Column:
    name: str
    type: SqlType
    nullable: bool = True
    length: int | None = 256  # NVARCHAR chars / VARBINARY bytes; None = (max)
    precision: int = 25  # NUMERIC only
    scale: int = 0  # NUMERIC only


@dataclass(frozen=True)
class ResultSet:
    """Rows are tuples of Python values: bool, int, float, decimal.Decimal, str, bytes,
    datetime.datetime (naive, server local time), uuid.UUID, or None."""

    columns: Sequence[Column]
    rows: Sequence[tuple]


@dataclass(frozen=True)
class Message:
    number: int
    severity: int
    state: int
    text: str
    procedure: str = ""
    line: int = 1

    @property
    def is_error(self) -> bool:
        return self.severity >= 11


@dataclass(frozen=True)
class StatementDone:
    rowcount: int | None = None  # None: no count (DONE_COUNT flag off)
    error: bool = False


@dataclass(frozen=True)
class ReturnStatus:
    value: int


@dataclass(frozen=True)
class OutputParameter:
    name: str  # with the leading @
    type: SqlType
    value: object


@dataclass(frozen=True)
class DatabaseChanged:
    old: str
    new: str


Event = ResultSet | Message | StatementDone | ReturnStatus | OutputParameter | DatabaseChanged


@dataclass
class Session:
    """One client connection as the engine sees it."""

    spid: int
    login: str
    database: str
    host_name: str = ""
    program_name: str = ""
    cancelled: bool = False  # set by the protocol layer on ATTENTION; engines check it between steps
    options: dict[str, object] = field(default_factory=dict)  # SET options (ansi_nulls, ...)
    transaction_count: int = 0  # @@TRANCOUNT; BACKUP/RESTORE fail with 3021 when > 0


class LoginFailed(Exception):
    """Raised by Engine.login; the protocol layer sends ERROR 18456 and closes."""

    def __init__(self, login: str, reason: str = "") -> None:
        super().__init__(f"Login failed for user '{login}'.")
        self.login = login
        self.reason = reason


class ConnectionDropped(Exception):
    """Raised from an engine's event iterator (after the events before it): the protocol layer closes
    the socket without a DONE, as when a server's connection breaks mid-statement (fault injection)."""


class Engine(Protocol):
    instance_name: str  # @@SERVERNAME, e.g. "PRIMARY" or "HOST\\INSTANCE"

    def login(self, *, user: str, password: str, database: str | None, host_name: str,
              program_name: str) -> Session: ...

    def execute(self, session: Session, sql: str,
                params: Mapping[str, object] | None = None) -> Iterator[Event]:
        """A SQL batch (SQL_BATCH packet), or sp_executesql/sp_prepexec text with its parameters
        (names with the leading @, values already decoded to Python)."""
        ...

    def call_procedure(self, session: Session, name: str,
                       args: Sequence[tuple[str | None, object]]) -> Iterator[Event]:
        """An RPC request for a procedure other than the sp_execute*/sp_prep* family, which the
        protocol layer handles itself. args: (parameter name or None, value) in order."""
        ...

    def logout(self, session: Session) -> None: ...

    def accepting_connections(self) -> bool:
        """False while connections are refused (fault injection): the listener closes new sockets."""
        ...


# Values the protocol layer must be able to encode, for reference by both sides.
PYTHON_VALUE_TYPES = (bool, int, float, decimal.Decimal, str, bytes, dt.datetime)
