"""LOGIN7 (MS-TDS 2.2.6.4): who the client is, which database it wants, and its packet size.

Only SQL Server authentication is accepted (user name and password in the message, the password
obfuscated, not encrypted). Integrated (SSPI) and Azure AD (FEDAUTH) logins are refused, as a
SQL Server in SQL-authentication-only mode would refuse them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .wire import ByteReader, ProtocolError

__all__ = ["Login7", "decode_login7", "deobfuscate_password", "obfuscate_password", "tds_version_name"]

_FIXED = struct.Struct("<IIIIIIBBBBiI")  # Length .. ClientLCID: 36 bytes
_FIELDS = ("host_name", "user_name", "password", "app_name", "server_name", "extension",
           "client_interface", "language", "database")
_OPTION_FLAGS2_INTEGRATED_SECURITY = 0x80
_OPTION_FLAGS3_EXTENSION = 0x10
_FEATURE_TERMINATOR = 0xFF
FEATURE_FEDAUTH = 0x02

_TDS_VERSIONS = {0x70000000: "7.0", 0x71000000: "7.1", 0x71000001: "7.1 SP1", 0x72090002: "7.2",
                 0x730A0003: "7.3A", 0x730B0003: "7.3B", 0x74000004: "7.4"}


def tds_version_name(version: int) -> str:
    return _TDS_VERSIONS.get(version, f"0x{version:08X}")


@dataclass(frozen=True)
class Login7:
    tds_version: int  # e.g. 0x74000004 for TDS 7.4
    packet_size: int  # 0: the client takes the server's
    client_pid: int
    host_name: str
    user_name: str
    password: str
    app_name: str
    server_name: str
    client_interface: str  # "ODBC", "DB-Library", ...
    language: str
    database: str
    integrated_security: bool
    features: tuple[int, ...]  # FeatureExt ids the client asked for

    def __repr__(self) -> str:  # never show the password in logs
        return (f"Login7(tds={tds_version_name(self.tds_version)}, packet_size={self.packet_size}, "
                f"user={self.user_name!r}, app={self.app_name!r}, host={self.host_name!r}, "
                f"interface={self.client_interface!r}, database={self.database!r}, "
                f"features={[hex(f) for f in self.features]})")


def deobfuscate_password(data: bytes) -> str:
    """Undo 2.2.6.4's scrambling: each byte had its nibbles swapped, then was XORed with 0xA5."""
    plain = bytes((((b ^ 0xA5) << 4) & 0xF0) | ((b ^ 0xA5) >> 4) for b in data)
    return plain.decode("utf-16-le")


def obfuscate_password(password: str) -> bytes:
    return bytes(((((b << 4) & 0xF0) | (b >> 4)) ^ 0xA5) for b in password.encode("utf-16-le"))


def decode_login7(payload: bytes) -> Login7:
    if len(payload) < _FIXED.size + 4 * len(_FIELDS):
        raise ProtocolError(f"LOGIN7 is {len(payload)} bytes, shorter than its fixed part")
    (_length, tds_version, packet_size, _prog_ver, client_pid, _conn_id,
     _flags1, flags2, _type_flags, flags3, _tz, _lcid) = _FIXED.unpack_from(payload, 0)
    reader = ByteReader(payload, "LOGIN7")
    reader.pos = _FIXED.size
    spans = {name: (reader.u16(), reader.u16()) for name in _FIELDS}

    def text(name: str) -> bytes:
        offset, count = spans[name]
        size = count * (1 if name == "extension" else 2)
        if offset + size > len(payload):
            raise ProtocolError(f"LOGIN7 field {name} points past the end of the message")
        return payload[offset:offset + size]

    features: tuple[int, ...] = ()
    if flags3 & _OPTION_FLAGS3_EXTENSION and spans["extension"][1] >= 4:
        (feature_offset,) = struct.unpack("<I", text("extension")[:4])
        features = _feature_ids(payload, feature_offset)
    return Login7(
        tds_version=tds_version,
        packet_size=packet_size,
        client_pid=client_pid,
        host_name=text("host_name").decode("utf-16-le"),
        user_name=text("user_name").decode("utf-16-le"),
        password=deobfuscate_password(text("password")),
        app_name=text("app_name").decode("utf-16-le"),
        server_name=text("server_name").decode("utf-16-le"),
        client_interface=text("client_interface").decode("utf-16-le"),
        language=text("language").decode("utf-16-le"),
        database=text("database").decode("utf-16-le"),
        integrated_security=bool(flags2 & _OPTION_FLAGS2_INTEGRATED_SECURITY),
        features=features,
    )


def _feature_ids(payload: bytes, offset: int) -> tuple[int, ...]:
    reader = ByteReader(payload, "LOGIN7 FeatureExt")
    reader.pos = offset
    ids = []
    while not reader.at_end():
        feature = reader.u8()
        if feature == _FEATURE_TERMINATOR:
            break
        reader.take(reader.u32())
        ids.append(feature)
    return tuple(ids)
