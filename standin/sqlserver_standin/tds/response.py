"""From engine events to the token stream of one response (see ``events.py`` for the mapping).

SQL Server ends every statement with a DONE (DONEINPROC inside an RPC); all but the last carry
DONE_MORE, so a DONE is held back until the next event shows whether more follows. Transaction
ENVCHANGEs (begin/commit/rollback, 2.2.7.9) are derived from ``Session.transaction_count`` moving
to or from zero, since a client in manual-commit mode tracks the transaction descriptor from them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from ..events import (
    DatabaseChanged,
    Event,
    Message,
    OutputParameter,
    ResultSet,
    ReturnStatus,
    Session,
    StatementDone,
)
from . import tokens
from .tokens import CurCmd, DoneStatus, EnvChange, Token

__all__ = ["TransactionDescriptors", "ResponseEncoder", "database_changed_message"]


def database_changed_message(database: str) -> Message:
    return Message(number=5701, severity=0, state=2, text=f"Changed database context to '{database}'.")


class TransactionDescriptors:
    """The 8-byte descriptors of one connection's transactions; 0 means none (2.2.5.3.2)."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.current = bytes(8)

    def begin(self) -> bytes:
        self.current = next(self._ids).to_bytes(8, "little")
        return self.current

    def end(self) -> bytes:
        old, self.current = self.current, bytes(8)
        return old


@dataclass
class _HeldDone:
    status: DoneStatus
    rowcount: int
    curcmd: int


@dataclass
class ResponseEncoder:
    """Encodes the events of one batch or one RPC; call :meth:`feed` per event, then ``finish_*``."""

    session: Session
    server_name: str
    descriptors: TransactionDescriptors
    in_procedure: bool = False  # RPC: statements end with DONEINPROC, the call with DONEPROC
    rollback_hint: bool = False  # the request asked for a rollback (TM request): a count drop is one
    had_error: bool = False
    return_status: int | None = None
    outputs: dict[str, OutputParameter] = field(default_factory=dict)  # by lower-cased name
    _held: _HeldDone | None = None
    _open_rows: int | None = None  # rows sent since the last COLMETADATA with no DONE yet
    _trancount: int = -1

    def __post_init__(self) -> None:
        self._trancount = self.session.transaction_count

    @property
    def _done_token(self) -> Token:
        return Token.DONEINPROC if self.in_procedure else Token.DONE

    def _release_held(self, more: bool) -> bytes:
        out = b""
        if self._open_rows is not None:  # a result set the engine closed without StatementDone
            self._held = _HeldDone(self._status(DoneStatus.COUNT), self._open_rows, CurCmd.SELECT)
            self._open_rows = None
        if self._held is not None:
            status = self._held.status | (DoneStatus.MORE if more else 0)
            out = tokens.done(self._done_token, status, self._held.rowcount, self._held.curcmd)
            self._held = None
        return out

    def _status(self, status: DoneStatus) -> DoneStatus:
        return status | (DoneStatus.INXACT if self.session.transaction_count > 0 else 0)

    def transaction_changes(self) -> bytes:
        """ENVCHANGE for a transaction begun or ended since the last call (at a statement boundary)."""
        before, after = self._trancount, self.session.transaction_count
        self._trancount = after
        if before == 0 and after > 0:
            return tokens.env_change(EnvChange.BEGIN_TRANSACTION, self.descriptors.begin(), b"")
        if before > 0 and after == 0:
            kind = EnvChange.ROLLBACK_TRANSACTION if (self.rollback_hint or self.had_error) \
                else EnvChange.COMMIT_TRANSACTION
            return tokens.env_change(kind, b"", self.descriptors.end())
        return b""

    def feed(self, event: Event) -> bytes:
        if isinstance(event, StatementDone):
            held_rows, self._open_rows = self._open_rows, None
            out = self._release_held(more=True) + self.transaction_changes()
            status = DoneStatus.FINAL
            if event.rowcount is not None:
                status |= DoneStatus.COUNT
            if event.error:
                status |= DoneStatus.ERROR
                self.had_error = True
            curcmd = CurCmd.SELECT if held_rows is not None else CurCmd.NONE
            self._held = _HeldDone(self._status(status), event.rowcount or 0, curcmd)
            return out
        if isinstance(event, ReturnStatus):
            self.return_status = event.value
            return b""
        if isinstance(event, OutputParameter):
            self.outputs[event.name.lower()] = event
            return b""
        out = self._release_held(more=True)
        if isinstance(event, ResultSet):
            metadata, infos = tokens.colmetadata(event.columns)
            names = [c.name for c in event.columns]
            body = bytearray(metadata)
            for values in event.rows:
                body += tokens.row(infos, tuple(values), names)
            self._open_rows = len(event.rows)
            return out + bytes(body)
        if isinstance(event, Message):
            if event.is_error:
                self.had_error = True
            return out + tokens.message(event, self.server_name)
        if isinstance(event, DatabaseChanged):
            return (out + tokens.env_change(EnvChange.DATABASE, event.new, event.old)
                    + tokens.message(database_changed_message(event.new), self.server_name))
        raise TypeError(f"the engine produced {type(event).__name__}, which is not an Event")

    def finish_batch(self) -> bytes:
        """The last DONE of a SQL batch, without DONE_MORE (an empty batch still gets one)."""
        changes = self.transaction_changes()
        if self._held is None and self._open_rows is None:
            status = DoneStatus.ERROR if self.had_error else DoneStatus.FINAL
            return changes + tokens.done(Token.DONE, self._status(status))
        return changes + self._release_held(more=False)

    def finish_statements(self) -> bytes:
        """Inside an RPC: the last DONEINPROC, which DONEPROC always follows."""
        return self.transaction_changes() + self._release_held(more=True)
