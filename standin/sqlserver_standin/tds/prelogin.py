"""PRELOGIN (MS-TDS 2.2.6.5): the first exchange, which settles encryption before LOGIN7.

The stand-in answers ENCRYPT_NOT_SUP: it has no TLS, so LOGIN7 and everything after travel in clear.
A client that requires encryption (ENCRYPT_ON/ENCRYPT_REQ; ODBC Driver 18 unless ``Encrypt=no``)
then closes the connection itself, as it would with a SQL Server that has no certificate.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from .wire import ByteReader, ProtocolError

__all__ = ["Encryption", "Prelogin", "decode_prelogin", "encode_prelogin_response", "SERVER_VERSION"]

# SQL Server 2022 RTM: 16.0.1000.6 (what @@VERSION of the stand-in reports too).
SERVER_VERSION = (16, 0, 1000, 6)


class _Option(enum.IntEnum):
    VERSION = 0x00
    ENCRYPTION = 0x01
    INSTOPT = 0x02
    THREADID = 0x03
    MARS = 0x04
    TRACEID = 0x05
    FEDAUTHREQUIRED = 0x06
    NONCEOPT = 0x07
    TERMINATOR = 0xFF


class Encryption(enum.IntEnum):
    OFF = 0x00  # client can encrypt but does not want to: only LOGIN7 would be encrypted
    ON = 0x01
    NOT_SUP = 0x02
    REQ = 0x03


@dataclass(frozen=True)
class Prelogin:
    client_version: tuple[int, int, int, int] | None
    encryption: Encryption
    instance: str
    mars: bool
    fedauth_required_sent: bool


def decode_prelogin(payload: bytes) -> Prelogin:
    if payload[:1] == b"\x16":
        raise ProtocolError("the client opened with a TLS handshake (TDS 8 / Encrypt=strict); "
                            "the stand-in has no TLS: connect with Encrypt=no")
    reader = ByteReader(payload, "PRELOGIN")
    options: dict[int, bytes] = {}
    while True:
        token = reader.u8()
        if token == _Option.TERMINATOR:
            break
        offset, length = struct.unpack(">HH", reader.take(4))
        if offset + length > len(payload):
            raise ProtocolError(f"PRELOGIN option 0x{token:02X} points past the end of the message")
        options[token] = payload[offset:offset + length]
    version = None
    if len(raw := options.get(_Option.VERSION, b"")) >= 6:
        major, minor, build, sub = struct.unpack(">BBHH", raw[:6])
        version = (major, minor, build, sub)
    enc_raw = options.get(_Option.ENCRYPTION, b"\x02")
    try:
        encryption = Encryption(enc_raw[0] & 0x0F) if enc_raw else Encryption.NOT_SUP
    except ValueError as exc:
        raise ProtocolError(f"PRELOGIN ENCRYPTION value 0x{enc_raw[0]:02X} is not defined") from exc
    instance = options.get(_Option.INSTOPT, b"").split(b"\x00", 1)[0].decode("ascii", "replace")
    return Prelogin(
        client_version=version,
        encryption=encryption,
        instance=instance,
        mars=options.get(_Option.MARS, b"\x00")[:1] == b"\x01",
        fedauth_required_sent=_Option.FEDAUTHREQUIRED in options,
    )


def encode_prelogin_response(request: Prelogin) -> bytes:
    """VERSION, ENCRYPTION=NOT_SUP, INSTOPT=0 (any instance name is accepted), THREADID, MARS=off."""
    major, minor, build, sub = SERVER_VERSION
    items: list[tuple[int, bytes]] = [
        (_Option.VERSION, struct.pack(">BBHH", major, minor, build, sub)),
        (_Option.ENCRYPTION, bytes([Encryption.NOT_SUP])),
        (_Option.INSTOPT, b"\x00"),
        (_Option.THREADID, b""),
        (_Option.MARS, b"\x00"),
    ]
    if request.fedauth_required_sent:
        items.append((_Option.FEDAUTHREQUIRED, b"\x00"))
    offset = 5 * len(items) + 1
    head, data = bytearray(), bytearray()
    for token, value in items:
        head += struct.pack(">BHH", token, offset + len(data), len(value))
        data += value
    return bytes(head) + b"\xff" + bytes(data)
