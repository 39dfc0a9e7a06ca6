"""Token encoders for the server's responses (MS-TDS 2.2.7), TDS 7.2+ layouts.

Each function returns the bytes of one token; the connection concatenates them into a response
message. Status bits of DONE/DONEPROC/DONEINPROC follow 2.2.7.6.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence

from ..events import Column, Message
from .datatypes import TypeInfo, encode_value, type_info_for
from .wire import b_varbyte, b_varchar, us_varchar

__all__ = [
    "Token",
    "DoneStatus",
    "EnvChange",
    "CurCmd",
    "done",
    "message",
    "loginack",
    "featureextack",
    "env_change",
    "colmetadata",
    "row",
    "returnstatus",
    "returnvalue",
    "returnvalue_echo",
]


class Token(enum.IntEnum):
    RETURNSTATUS = 0x79
    COLMETADATA = 0x81
    ERROR = 0xAA
    INFO = 0xAB
    RETURNVALUE = 0xAC
    LOGINACK = 0xAD
    FEATUREEXTACK = 0xAE
    ROW = 0xD1
    NBCROW = 0xD2
    ENVCHANGE = 0xE3
    DONE = 0xFD
    DONEPROC = 0xFE
    DONEINPROC = 0xFF


class DoneStatus(enum.IntFlag):
    FINAL = 0x000
    MORE = 0x001  # more results follow in this response
    ERROR = 0x002  # the statement failed
    INXACT = 0x004  # a transaction is in progress
    COUNT = 0x010  # DoneRowCount is valid
    ATTN = 0x020  # acknowledges an ATTENTION
    SRVERROR = 0x100  # a severe error: the client must discard the results


class CurCmd(enum.IntEnum):
    """Token stream CurCmd values SQL Server puts in DONE tokens (the statement kind)."""

    NONE = 0x00
    SELECT = 0xC1
    EXECUTE = 0xE0


class EnvChange(enum.IntEnum):
    DATABASE = 1
    LANGUAGE = 2
    PACKET_SIZE = 4
    SQL_COLLATION = 7
    BEGIN_TRANSACTION = 8
    COMMIT_TRANSACTION = 9
    ROLLBACK_TRANSACTION = 10
    RESET_CONNECTION_ACK = 18


def done(token: Token, status: DoneStatus, rowcount: int = 0, curcmd: int = CurCmd.NONE) -> bytes:
    return struct.pack("<BHHQ", token, status, curcmd, rowcount)


def message(msg: Message, server_name: str) -> bytes:
    """ERROR for severity >= 11, INFO otherwise (2.2.7.10, 2.2.7.13: same layout)."""
    body = (struct.pack("<iBB", msg.number, msg.state, msg.severity) + us_varchar(msg.text)
            + b_varchar(server_name) + b_varchar(msg.procedure) + struct.pack("<i", msg.line))
    token = Token.ERROR if msg.is_error else Token.INFO
    return struct.pack("<BH", token, len(body)) + body


def loginack(tds_version: int, program: str, version: tuple[int, int, int, int]) -> bytes:
    """Interface 1 = T-SQL; the TDS version is big-endian here, unlike in LOGIN7."""
    major, minor, build, _sub = version
    body = (b"\x01" + struct.pack(">I", tds_version) + b_varchar(program)
            + struct.pack(">BBH", major, minor, build))
    return struct.pack("<BH", Token.LOGINACK, len(body)) + body


def featureextack() -> bytes:
    """No feature acknowledged: the client falls back to plain behaviour for each one it asked for."""
    return bytes([Token.FEATUREEXTACK, 0xFF])


def env_change(kind: EnvChange, new: str | bytes, old: str | bytes) -> bytes:
    """String-valued kinds (database, language, packet size) as B_VARCHAR; the others as B_VARBYTE."""
    def field(value: str | bytes) -> bytes:
        return b_varchar(value) if isinstance(value, str) else b_varbyte(value)

    body = bytes([kind]) + field(new) + field(old)
    return struct.pack("<BH", Token.ENVCHANGE, len(body)) + body


def colmetadata(columns: Sequence[Column]) -> tuple[bytes, list[TypeInfo]]:
    """The COLMETADATA token and each column's TYPE_INFO (the row encoder needs them)."""
    infos = [type_info_for(c) for c in columns]
    out = bytearray(struct.pack("<BH", Token.COLMETADATA, len(columns)))
    for column, info in zip(columns, infos, strict=True):
        flags = 0x0001 if column.nullable else 0x0000  # fNullable; never updateable, not an identity
        out += struct.pack("<IH", 0, flags) + info.encode() + b_varchar(column.name)
    return bytes(out), infos


def row(infos: Sequence[TypeInfo], values: tuple, names: Sequence[str]) -> bytes:
    """ROW, or NBCROW (2.2.7.17, TDS 7.3+) when some values are NULL: a bitmap replaces their bytes."""
    if len(values) != len(infos):
        raise ValueError(f"a row has {len(values)} values for {len(infos)} columns ({', '.join(names)})")
    if any(v is None for v in values):
        bitmap = bytearray((len(values) + 7) // 8)
        out = bytearray()
        for index, (info, value, name) in enumerate(zip(infos, values, names, strict=True)):
            if value is None:
                if not info.accepts_null:
                    raise ValueError(f"column {name!r} is NOT NULL but the engine produced NULL")
                bitmap[index // 8] |= 1 << (index % 8)
            else:
                out += encode_value(info, value, name=name)
        return bytes([Token.NBCROW]) + bytes(bitmap) + bytes(out)
    return bytes([Token.ROW]) + b"".join(
        encode_value(info, value, name=name) for info, value, name in zip(infos, values, names, strict=True))


def returnstatus(value: int) -> bytes:
    return struct.pack("<Bi", Token.RETURNSTATUS, value)


def returnvalue(ordinal: int, name: str, column: Column, value: object) -> bytes:
    """An OUTPUT parameter's value after the call (2.2.7.19); status 0x01 = output parameter."""
    info = type_info_for(column)
    return (struct.pack("<BH", Token.RETURNVALUE, ordinal) + b_varchar(name) + b"\x01"
            + struct.pack("<IH", 0, 0x0001) + info.encode() + encode_value(info, value, name=name))


def returnvalue_echo(ordinal: int, name: str, wire: bytes) -> bytes:
    """An OUTPUT parameter the call did not change: its TYPE_INFO and value as the client sent them."""
    return (struct.pack("<BH", Token.RETURNVALUE, ordinal) + b_varchar(name) + b"\x01"
            + struct.pack("<IH", 0, 0x0001) + wire)
