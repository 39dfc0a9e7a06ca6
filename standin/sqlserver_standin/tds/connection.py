"""One client connection: PRELOGIN, LOGIN7, then requests answered one at a time (no MARS).

Engine calls run in a thread pool so a slow statement never blocks the event loop; the loop keeps
reading the socket meanwhile, because the only thing a client may send during a request is an
ATTENTION (2.2.1.7). An ATTENTION sets ``Session.cancelled`` (engines check it between steps), the
engine's event generator is closed at its next yield, the response ends as it stands, and the
acknowledgement (DONE with DONE_ATTN) follows as a message of its own. ODBC Driver 18 reads the
acknowledgement only after the end of the response: put in the same message, the cancelled call
returns as if it had succeeded; FreeTDS accepts both.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..events import Column, Engine, Event, LoginFailed, Message, Session, SqlType, StatementDone
from . import tokens
from .datatypes import SERVER_COLLATION
from .login7 import FEATURE_FEDAUTH, Login7, decode_login7, tds_version_name
from .packets import (
    DEFAULT_PACKET_SIZE,
    HEADER_SIZE,
    MAX_PACKET_SIZE,
    MIN_PACKET_SIZE,
    PacketType,
    Status,
    encode_message,
    read_message,
)
from .packets import Message as TdsMessage
from .prelogin import SERVER_VERSION, Encryption, decode_prelogin, encode_prelogin_response
from .procedures import Plan, PreparedStatements, plan_call
from .requests import RpcCall, TmRequest, TmRequestType, decode_rpc, decode_sql_batch, decode_tm_request
from .response import ResponseEncoder, TransactionDescriptors, database_changed_message
from .tokens import DoneStatus, EnvChange, Token
from .wire import ProtocolError

__all__ = ["Connection", "TDS_74"]

log = logging.getLogger("sqlserver_standin.tds")

TDS_74 = 0x74000004
_TDS_72 = 0x72090002
_PROGRAM_NAME = "Microsoft SQL Server"
_LANGUAGE = "us_english"
_ISOLATION_LEVELS = {1: "READ UNCOMMITTED", 2: "READ COMMITTED", 3: "REPEATABLE READ", 4: "SERIALIZABLE",
                     5: "SNAPSHOT"}
Emit = Callable[[bytes], None]


class _Fatal(Exception):
    """The response has been ended with a severity-20 error: close the connection after sending it."""


@dataclass
class _Request:
    """The request being answered; an ATTENTION marks it cancelled."""

    session: Session
    cancelled: bool = False
    chunks: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)

    def cancel(self) -> None:
        self.cancelled = True
        self.session.cancelled = True


class _ResponseWriter:
    """Streams a response as packets of the negotiated size; the EOM packet goes out last."""

    def __init__(self, connection: Connection) -> None:
        self._conn = connection
        self._buffer = bytearray()
        self._packet_id = 1

    async def add(self, data: bytes) -> None:
        self._buffer += data
        room = self._conn.packet_size - HEADER_SIZE
        if len(self._buffer) > room:  # keep the tail: the EOM packet must carry data
            whole = (len(self._buffer) - 1) // room * room
            await self._send(bytes(self._buffer[:whole]), last=False)
            del self._buffer[:whole]

    async def end(self) -> None:
        await self._send(bytes(self._buffer), last=True)
        self._buffer.clear()

    async def _send(self, payload: bytes, *, last: bool) -> None:
        packets = encode_message(PacketType.TABULAR_RESULT, payload, self._conn.packet_size, self._conn.spid,
                                 last=last, first_packet_id=self._packet_id)
        self._packet_id += -(-len(payload) // (self._conn.packet_size - HEADER_SIZE)) or 1
        await self._conn.write(packets)


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, engine: Engine, *,
                 executor: concurrent.futures.Executor) -> None:
        self._reader = reader
        self._writer = writer
        self._engine = engine
        self._executor = executor
        self._loop = asyncio.get_running_loop()
        self.packet_size = DEFAULT_PACKET_SIZE
        self.spid = 0
        self.session: Session | None = None
        self._login: Login7 | None = None
        self.tds_version = TDS_74
        self._prepared = PreparedStatements()
        self._descriptors = TransactionDescriptors()
        self._inbox: asyncio.Queue[TdsMessage | None] = asyncio.Queue()
        self._active: _Request | None = None
        self._write_lock = asyncio.Lock()
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"

    @property
    def server_name(self) -> str:
        return self._engine.instance_name

    async def write(self, data: bytes) -> None:
        async with self._write_lock:
            self._writer.write(data)
            await self._writer.drain()

    async def _send_message(self, payload: bytes) -> None:
        writer = _ResponseWriter(self)
        await writer.add(payload)
        await writer.end()

    async def _in_thread(self, fn: Callable[..., object], *args: object) -> object:
        return await self._loop.run_in_executor(self._executor, fn, *args)

    # -- lifecycle ---------------------------------------------------------------------------------
    async def serve(self) -> None:
        reader_task: asyncio.Task | None = None
        try:
            if not await self._handshake():
                return
            reader_task = asyncio.create_task(self._read_loop())
            while (message := await self._inbox.get()) is not None:
                if not await self._answer(message):
                    break
        except ProtocolError as exc:
            log.warning("%s: closing: %s", self.peer, exc)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info("%s: connection lost: %s", self.peer, exc)
        finally:
            if reader_task is not None:
                reader_task.cancel()
            await self._close()

    async def _close(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            try:
                await self._in_thread(self._engine.logout, session)
            except Exception:
                log.exception("%s: engine.logout failed for spid %s", self.peer, session.spid)
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass

    async def _read_loop(self) -> None:
        """Reads requests into the inbox; ATTENTION is handled at once, even while a request runs."""
        try:
            while (message := await read_message(self._reader)) is not None:
                if message.type == PacketType.ATTENTION:
                    await self._on_attention()
                else:
                    await self._inbox.put(message)
        except ProtocolError as exc:
            log.warning("%s: closing: %s", self.peer, exc)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info("%s: connection lost: %s", self.peer, exc)
        await self._inbox.put(None)

    def shut_down(self) -> None:
        """The server is stopping: the running request stops as on an ATTENTION, then the socket closes."""
        if self._active is not None:
            self._active.cancel()
        self._inbox.put_nowait(None)

    async def _on_attention(self) -> None:
        log.debug("%s: ATTENTION", self.peer)
        if self._active is not None:
            self._active.cancel()
        else:  # the response was complete already: the acknowledgement is a message of its own
            await self._send_message(tokens.done(Token.DONE, DoneStatus.ATTN))

    # -- login -------------------------------------------------------------------------------------
    async def _handshake(self) -> bool:
        first = await read_message(self._reader)
        if first is None:
            return False
        if first.type == PacketType.PRELOGIN:
            prelogin = decode_prelogin(first.payload)
            log.debug("%s: PRELOGIN %s", self.peer, prelogin)
            await self._send_message(encode_prelogin_response(prelogin))
            if prelogin.encryption in (Encryption.ON, Encryption.REQ):
                log.info("%s: the client requires encryption, which the stand-in does not offer: "
                         "connect with Encrypt=no", self.peer)
            first = await read_message(self._reader)
            if first is None:
                return False
        if first.type != PacketType.LOGIN7:
            raise ProtocolError(f"expected LOGIN7, got packet type 0x{first.type:02X}")
        return await self._login7(decode_login7(first.payload))

    async def _login7(self, login: Login7) -> bool:
        log.debug("%s: %r", self.peer, login)
        if login.tds_version < _TDS_72:
            raise ProtocolError(f"the client speaks TDS {tds_version_name(login.tds_version)}; the stand-in "
                                "speaks TDS 7.2 to 7.4 (set TDS_Version=7.4)")
        self.tds_version = min(login.tds_version, TDS_74)
        refusal = None
        if login.integrated_security:
            refusal = Message(18452, 14, 1, "Login failed. The login is from an untrusted domain and cannot "
                                            "be used with Integrated authentication.")
        elif FEATURE_FEDAUTH in login.features:
            refusal = Message(18456, 14, 1, "Login failed for user '<token-identified principal>'.")
        else:
            try:
                self.session = await self._in_thread(self._log_in, login)
            except LoginFailed as exc:
                log.info("%s: login failed for %r: %s", self.peer, exc.login, exc.reason or "-")
                refusal = Message(18456, 14, 1, str(exc))
        if refusal is not None:
            await self._send_message(tokens.message(refusal, self.server_name)
                                     + tokens.done(Token.DONE, DoneStatus.ERROR))
            return False
        self._login = login
        session = self.session
        self.spid = session.spid
        requested = login.packet_size or DEFAULT_PACKET_SIZE
        new_size = max(MIN_PACKET_SIZE, min(MAX_PACKET_SIZE, requested))
        reply = (
            tokens.env_change(EnvChange.DATABASE, session.database, "master")
            + tokens.message(database_changed_message(session.database), self.server_name)
            + tokens.env_change(EnvChange.SQL_COLLATION, SERVER_COLLATION, b"")
            + tokens.env_change(EnvChange.LANGUAGE, _LANGUAGE, "")
            + tokens.message(Message(5703, 0, 1, f"Changed language setting to {_LANGUAGE}."), self.server_name)
            + tokens.loginack(self.tds_version, _PROGRAM_NAME, SERVER_VERSION)
            + (tokens.featureextack() if login.features else b"")
            + tokens.env_change(EnvChange.PACKET_SIZE, str(new_size), str(DEFAULT_PACKET_SIZE))
            + tokens.done(Token.DONE, DoneStatus.FINAL)
        )
        await self._send_message(reply)
        self.packet_size = new_size
        log.info("%s: spid %s logged in as %r (%s, TDS %s, packet size %s)", self.peer, self.spid,
                 session.login, login.app_name or login.client_interface,
                 tds_version_name(self.tds_version), new_size)
        return True

    def _log_in(self, login: Login7) -> Session:
        return self._engine.login(user=login.user_name, password=login.password,
                                  database=login.database or None, host_name=login.host_name,
                                  program_name=login.app_name)

    # -- requests ----------------------------------------------------------------------------------
    async def _answer(self, message: TdsMessage) -> bool:
        """Answers one request; False when the connection must close (a severity-20 error)."""
        prefix = b""
        if message.status & (Status.RESET_CONNECTION | Status.RESET_CONNECTION_SKIP_TRAN):
            prefix = await self._reset_connection()
        if message.type == PacketType.SQL_BATCH:
            sql = decode_sql_batch(message.payload, self.tds_version)
            log.debug("%s: SQL_BATCH %r", self.peer, sql[:2000])
            work: Callable[[Emit, _Request], bytes] = lambda emit, req: self._batch(sql, emit, req)  # noqa: E731
        elif message.type == PacketType.RPC:
            calls = decode_rpc(message.payload, self.tds_version)
            for call in calls:
                log.debug("%s: RPC %s(%s)", self.peer, call.procedure,
                          ", ".join(f"{p.name or '?'} {p.type_info.type_id.name}"
                                    f"{' OUTPUT' if p.output else ''}={p.value!r:.200}" for p in call.params))
            work = lambda emit, req: self._rpcs(calls, emit, req)  # noqa: E731
        elif message.type == PacketType.TRANSACTION_MANAGER:
            tm = decode_tm_request(message.payload, self.tds_version)
            log.debug("%s: TRANSACTION_MANAGER %s", self.peer, tm)
            work = lambda emit, req: self._tm_request(tm, emit, req)  # noqa: E731
        else:
            raise ProtocolError(f"packet type 0x{message.type:02X} is not supported after login "
                                "(bulk load, SSPI and federated authentication are not modelled)")
        return await self._run(work, prefix)

    async def _reset_connection(self) -> bytes:
        """sp_reset_connection semantics: a fresh session for the same login (2.2.3.1.2)."""
        old = self.session
        login = self._login
        await self._in_thread(self._engine.logout, old)
        self.session = await self._in_thread(self._log_in, login)
        self.spid = self.session.spid
        self._descriptors = TransactionDescriptors()
        return tokens.env_change(EnvChange.RESET_CONNECTION_ACK, b"", b"")

    async def _run(self, work: Callable[[Emit, _Request], bytes], prefix: bytes) -> bool:
        request = _Request(self.session)
        self.session.cancelled = False
        self._active = request
        writer = _ResponseWriter(self)
        chunks = request.chunks

        def emit(data: bytes) -> None:
            if data:
                self._loop.call_soon_threadsafe(chunks.put_nowait, data)

        def run() -> tuple[bytes, bool]:
            try:
                return work(emit, request), True
            except _Fatal as fatal:
                return fatal.args[0], False
            finally:
                self._loop.call_soon_threadsafe(chunks.put_nowait, None)

        future = self._loop.run_in_executor(self._executor, run)
        await writer.add(prefix)
        while (chunk := await chunks.get()) is not None:
            await writer.add(chunk)
        final, keep_open = await future
        await writer.add(final)
        await writer.end()
        self._active = None
        if request.cancelled:  # also when the ATTENTION came as the response was being sent
            await self._send_message(tokens.done(Token.DONE, DoneStatus.ATTN))
        return keep_open

    def _drain(self, events: Iterator[Event], encoder: ResponseEncoder, emit: Emit, request: _Request) -> bool:
        """Feeds the engine's events to the encoder; False if an ATTENTION stopped it (the rest of
        the events are never asked for)."""
        try:
            for event in events:
                emit(encoder.feed(event))
                if request.cancelled:
                    return False
        except Exception as exc:
            log.exception("%s: engine failure", self.peer)
            error = Message(50000, 20, 1, f"The SQL Server stand-in's engine failed: {type(exc).__name__}: {exc}")
            raise _Fatal(tokens.message(error, self.server_name)
                         + tokens.done(Token.DONE, DoneStatus.ERROR | DoneStatus.SRVERROR)) from exc
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # GeneratorExit at the engine's current yield: its finally blocks run
        return not request.cancelled

    def _encoder(self, *, in_procedure: bool = False, rollback_hint: bool = False) -> ResponseEncoder:
        return ResponseEncoder(self.session, self.server_name, self._descriptors, in_procedure=in_procedure,
                               rollback_hint=rollback_hint)

    def _batch(self, sql: str, emit: Emit, request: _Request) -> bytes:
        encoder = self._encoder()
        self._drain(self._engine.execute(self.session, sql), encoder, emit, request)
        return encoder.finish_batch()

    def _tm_request(self, tm: TmRequest, emit: Emit, request: _Request) -> bytes:
        encoder = self._encoder(rollback_hint=tm.type == TmRequestType.ROLLBACK_XACT)
        sql = _tm_sql(tm)
        if sql is None:
            emit(encoder.feed(Message(8501, 16, 3, f"MSDTC on server '{self.server_name}' is unavailable.")))
            emit(encoder.feed(StatementDone(error=True)))
        else:
            self._drain(self._engine.execute(self.session, sql), encoder, emit, request)
        return encoder.finish_batch()

    def _rpcs(self, calls: list[RpcCall], emit: Emit, request: _Request) -> bytes:
        final = b""
        for index, call in enumerate(calls):
            emit(final)
            encoder = self._encoder(in_procedure=True)
            plan = plan_call(call, self._prepared)
            if plan.error is not None:
                emit(encoder.feed(plan.error))
            elif plan.sql is not None or plan.procedure is not None:
                events = (self._engine.execute(self.session, plan.sql, plan.params) if plan.sql is not None
                          else self._engine.call_procedure(self.session, plan.procedure, list(plan.args)))
                if not self._drain(events, encoder, emit, request):  # cancelled: no further calls
                    return self._end_procedure(plan, encoder, more=False)
            final = self._end_procedure(plan, encoder, more=index < len(calls) - 1)
        return final

    def _end_procedure(self, plan: Plan, encoder: ResponseEncoder, *, more: bool) -> bytes:
        """Last DONEINPROC, RETURNSTATUS, RETURNVALUEs, then DONEPROC (as SQL Server orders them)."""
        out = bytearray(encoder.finish_statements())
        status = encoder.return_status
        if status is None and not encoder.had_error:
            status = 0
        if status is not None and plan.error is None:
            out += tokens.returnstatus(status)
        if plan.error is None:
            for slot in plan.outputs:
                if slot.handle is not None:
                    out += tokens.returnvalue(slot.ordinal, slot.name, Column(slot.name, SqlType.INT), slot.handle)
                elif (new := encoder.outputs.get(slot.declared_name.lower())) is not None:
                    column = Column(slot.name, new.type, length=None if new.type in _UNBOUNDED else 256)
                    out += tokens.returnvalue(slot.ordinal, slot.name, column, new.value)
                else:
                    out += tokens.returnvalue_echo(slot.ordinal, slot.name, slot.wire)
        done_status = (DoneStatus.MORE if more else DoneStatus.FINAL) | (
            DoneStatus.ERROR if encoder.had_error else DoneStatus.FINAL)
        if self.session.transaction_count > 0:
            done_status |= DoneStatus.INXACT
        out += tokens.done(Token.DONEPROC, done_status)
        return bytes(out)


_UNBOUNDED = {SqlType.NVARCHAR, SqlType.VARBINARY}


def _quote_name(name: str) -> str:
    return "[" + name.replace("]", "]]") + "]"


def _tm_sql(tm: TmRequest) -> str | None:
    """The T-SQL a transaction manager request stands for; None for the DTC requests (not modelled)."""
    name = f" {_quote_name(tm.name)}" if tm.name else ""
    isolation = _ISOLATION_LEVELS.get(tm.isolation_level)
    set_isolation = f"SET TRANSACTION ISOLATION LEVEL {isolation}; " if isolation else ""
    if tm.type == TmRequestType.BEGIN_XACT:
        return f"{set_isolation}BEGIN TRANSACTION{name}"
    if tm.type in (TmRequestType.COMMIT_XACT, TmRequestType.ROLLBACK_XACT):
        verb = "COMMIT" if tm.type == TmRequestType.COMMIT_XACT else "ROLLBACK"
        then = f"; {set_isolation}BEGIN TRANSACTION" if tm.begin_new else ""
        return f"{verb} TRANSACTION{name}{then}"
    if tm.type == TmRequestType.SAVE_XACT:
        return f"SAVE TRANSACTION{name}"
    return None
