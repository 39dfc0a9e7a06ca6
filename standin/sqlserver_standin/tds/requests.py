"""Client requests after login: SQL_BATCH (2.2.6.7), RPC (2.2.6.6), transaction manager (2.2.6.9).

All three start with ALL_HEADERS (TDS 7.2+, 2.2.5.3), which carries the client's view of the
transaction descriptor; the stand-in runs no MARS, so it reads the headers only to skip them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .datatypes import TypeInfo, read_type_info, read_value
from .wire import ByteReader, ProtocolError

__all__ = [
    "ProcId",
    "RpcParam",
    "RpcCall",
    "TmRequestType",
    "TmRequest",
    "decode_sql_batch",
    "decode_rpc",
    "decode_tm_request",
]

_TDS_72 = 0x72090002
_PARAM_BY_REF = 0x01  # fByRefValue: an OUTPUT parameter
_PARAM_DEFAULT = 0x02  # fDefaultValue: the procedure's default applies
_PARAM_ENCRYPTED = 0x08  # Always Encrypted: not supported
_BATCH_SEPARATORS = {0xFF, 0x80}  # 0x80 before TDS 7.2
_NO_EXEC = 0xFE


class ProcId(enum.IntEnum):
    """Well-known stored procedures a client can name by number (2.2.6.6)."""

    SP_CURSOR = 1
    SP_CURSOROPEN = 2
    SP_CURSORPREPARE = 3
    SP_CURSOREXECUTE = 4
    SP_CURSORPREPEXEC = 5
    SP_CURSORUNPREPARE = 6
    SP_CURSORFETCH = 7
    SP_CURSOROPTION = 8
    SP_CURSORCLOSE = 9
    SP_EXECUTESQL = 10
    SP_PREPARE = 11
    SP_EXECUTE = 12
    SP_PREPEXEC = 13
    SP_PREPEXECRPC = 14
    SP_UNPREPARE = 15


@dataclass(frozen=True)
class RpcParam:
    name: str  # with the leading @, or "" when the client passes it by position
    value: object
    type_info: TypeInfo
    output: bool = False
    default: bool = False
    wire: bytes = b""  # TYPE_INFO and value exactly as sent: an unchanged OUTPUT value is echoed from it


@dataclass(frozen=True)
class RpcCall:
    procedure: str  # as named by the client (e.g. "sp_executesql", "[dbo].[x]"), or sp_* for a ProcID
    params: tuple[RpcParam, ...]


class TmRequestType(enum.IntEnum):
    GET_DTC_ADDRESS = 0
    PROPAGATE_XACT = 1
    BEGIN_XACT = 5
    PROMOTE_XACT = 6
    COMMIT_XACT = 7
    ROLLBACK_XACT = 8
    SAVE_XACT = 9


@dataclass(frozen=True)
class TmRequest:
    type: TmRequestType
    name: str = ""  # transaction or savepoint name
    isolation_level: int = 0  # 0 = unchanged; 1..5 = read uncommitted .. snapshot
    begin_new: bool = False  # COMMIT/ROLLBACK with fBeginXact: start the next transaction at once


def _skip_all_headers(reader: ByteReader, tds_version: int) -> None:
    if tds_version < _TDS_72:
        return
    total = reader.u32()
    if total < 4:
        raise ProtocolError(f"ALL_HEADERS length {total} is shorter than the length field")
    reader.take(total - 4)


def decode_sql_batch(payload: bytes, tds_version: int) -> str:
    reader = ByteReader(payload, "SQL_BATCH")
    _skip_all_headers(reader, tds_version)
    data = reader.take(reader.remaining())
    if len(data) % 2:
        raise ProtocolError("SQL_BATCH text has an odd number of bytes: it is not UCS-2")
    return data.decode("utf-16-le")


def decode_rpc(payload: bytes, tds_version: int) -> list[RpcCall]:
    """Every call of the request, in order (a client may batch several RPCs in one message)."""
    reader = ByteReader(payload, "RPC")
    _skip_all_headers(reader, tds_version)
    calls = []
    while not reader.at_end():
        name_len = reader.u16()
        if name_len == 0xFFFF:
            proc_id = reader.u16()
            try:
                procedure = ProcId(proc_id).name.lower()
            except ValueError as exc:
                raise ProtocolError(f"RPC names procedure id {proc_id}, which is not defined") from exc
        else:
            procedure = reader.ucs2(name_len)
        reader.u16()  # OptionFlags: WITH RECOMPILE, no metadata: nothing to change here
        params = []
        while not reader.at_end():
            marker = payload[reader.pos]
            if marker in _BATCH_SEPARATORS or marker == _NO_EXEC:
                reader.u8()
                break
            params.append(_read_param(reader, procedure))
        calls.append(RpcCall(procedure, tuple(params)))
    return calls


def _read_param(reader: ByteReader, procedure: str) -> RpcParam:
    name = reader.b_varchar()
    status = reader.u8()
    if status & _PARAM_ENCRYPTED:
        raise ProtocolError(f"parameter {name or '(unnamed)'} of {procedure} is Always Encrypted; "
                            "the stand-in does not support column encryption")
    start = reader.pos
    info = read_type_info(reader)
    value = read_value(reader, info)
    wire = reader.data_between(start, reader.pos)
    return RpcParam(name, value, info, output=bool(status & _PARAM_BY_REF),
                    default=bool(status & _PARAM_DEFAULT), wire=wire)


def decode_tm_request(payload: bytes, tds_version: int) -> TmRequest:
    reader = ByteReader(payload, "TRANSACTION_MANAGER")
    _skip_all_headers(reader, tds_version)
    raw = reader.u16()
    try:
        kind = TmRequestType(raw)
    except ValueError as exc:
        raise ProtocolError(f"transaction manager request type {raw} is not defined") from exc
    if kind == TmRequestType.BEGIN_XACT:
        isolation = reader.u8()
        return TmRequest(kind, reader.b_varchar(), isolation_level=isolation)
    if kind in (TmRequestType.COMMIT_XACT, TmRequestType.ROLLBACK_XACT):
        name = reader.b_varchar()
        begin_new = bool(reader.u8() & 0x01)
        isolation = 0
        if begin_new:
            isolation = reader.u8()
            reader.b_varchar()  # the new transaction's name
        return TmRequest(kind, name, isolation_level=isolation, begin_new=begin_new)
    if kind == TmRequestType.SAVE_XACT:
        return TmRequest(kind, reader.b_varchar())
    return TmRequest(kind)
