"""TDS packet framing (MS-TDS 2.2.3.1): an 8-byte header, then up to packet-size minus 8 bytes of a message.

A message (a request or a response) spans one or more packets; the last one has the EOM status bit.
Reading assembles packets into messages; writing splits a message at the negotiated packet size.
"""

from __future__ import annotations

import asyncio
import enum
import struct
from dataclasses import dataclass

from .wire import ProtocolError

__all__ = [
    "HEADER_SIZE",
    "DEFAULT_PACKET_SIZE",
    "PacketType",
    "Status",
    "Message",
    "read_message",
    "encode_message",
]

HEADER_SIZE = 8
DEFAULT_PACKET_SIZE = 4096  # used until LOGIN7 negotiates another one
MIN_PACKET_SIZE = 512
MAX_PACKET_SIZE = 32767
_HEADER = struct.Struct(">BBHHBB")  # type, status, length, SPID, packet id, window (lengths are big-endian)


class PacketType(enum.IntEnum):
    SQL_BATCH = 0x01
    RPC = 0x03
    TABULAR_RESULT = 0x04
    ATTENTION = 0x06
    BULK_LOAD = 0x07
    FEDAUTH_TOKEN = 0x08
    TRANSACTION_MANAGER = 0x0E
    LOGIN7 = 0x10
    SSPI = 0x11
    PRELOGIN = 0x12


class Status(enum.IntFlag):
    NORMAL = 0x00
    EOM = 0x01
    IGNORE = 0x02  # the client abandons this message: discard it (2.2.3.1.2)
    RESET_CONNECTION = 0x08
    RESET_CONNECTION_SKIP_TRAN = 0x10


@dataclass(frozen=True)
class Message:
    type: int  # a PacketType value, or an unknown byte the caller rejects
    status: Status  # of the first packet: RESET_CONNECTION is only meaningful there
    payload: bytes


async def read_message(reader: asyncio.StreamReader, max_size: int = 64 * 1024 * 1024) -> Message | None:
    """The next complete message, or None when the client closed the connection between messages."""
    chunks: list[bytes] = []
    total = 0
    first_type: int | None = None
    first_status = Status.NORMAL
    while True:
        try:
            header = await reader.readexactly(HEADER_SIZE)
        except asyncio.IncompleteReadError as exc:
            if not exc.partial and first_type is None:
                return None
            raise ProtocolError("connection closed in the middle of a packet header") from exc
        ptype, status, length, _spid, _packet_id, _window = _HEADER.unpack(header)
        if length < HEADER_SIZE or length > MAX_PACKET_SIZE + HEADER_SIZE:
            raise ProtocolError(f"packet length {length} is outside {HEADER_SIZE}..{MAX_PACKET_SIZE}")
        try:
            body = await reader.readexactly(length - HEADER_SIZE)
        except asyncio.IncompleteReadError as exc:
            raise ProtocolError("connection closed in the middle of a packet") from exc
        if first_type is None:
            first_type, first_status = ptype, Status(status & 0x1F)
        elif ptype != first_type:
            raise ProtocolError(f"packet of type 0x{ptype:02X} inside a message of type 0x{first_type:02X}")
        total += len(body)
        if total > max_size:
            raise ProtocolError(f"message larger than {max_size} bytes")
        chunks.append(body)
        if status & Status.EOM:
            if status & Status.IGNORE:
                return await read_message(reader, max_size)
            return Message(first_type, first_status, b"".join(chunks))


def encode_message(ptype: int, payload: bytes, packet_size: int, spid: int = 0, *,
                   last: bool = True, first_packet_id: int = 1) -> bytes:
    """Split ``payload`` into packets of at most ``packet_size`` bytes; EOM on the final one if ``last``.

    A response streamed in several parts passes ``first_packet_id`` so packet ids keep counting.
    """
    room = packet_size - HEADER_SIZE
    out = bytearray()
    count = max(1, -(-len(payload) // room))
    for index in range(count):
        body = payload[index * room:(index + 1) * room]
        status = Status.EOM if (last and index == count - 1) else Status.NORMAL
        out += _HEADER.pack(ptype, status, len(body) + HEADER_SIZE, spid & 0xFFFF, (first_packet_id + index) & 0xFF, 0)
        out += body
    return bytes(out)
