"""Little-endian readers and writers for the primitive types MS-TDS is built from (2.2.5.1).

Every structure of the protocol is a sequence of these: fixed-width integers, B_VARCHAR (a 1-byte
character count then UCS-2), US_VARCHAR (a 2-byte count then UCS-2), B_VARBYTE.
"""

from __future__ import annotations

import struct

__all__ = ["ProtocolError", "ByteReader", "b_varchar", "us_varchar", "b_varbyte"]


class ProtocolError(Exception):
    """The client sent bytes that are not valid TDS; the connection is closed."""


class ByteReader:
    """Reads a message payload front to back; running off the end is a ProtocolError, not IndexError."""

    def __init__(self, data: bytes, what: str = "message") -> None:
        self._data = memoryview(data)
        self.pos = 0
        self._what = what

    def remaining(self) -> int:
        return len(self._data) - self.pos

    def at_end(self) -> bool:
        return self.pos >= len(self._data)

    def data_between(self, start: int, end: int) -> bytes:
        return bytes(self._data[start:end])

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self._data):
            raise ProtocolError(f"{self._what} truncated: needed {n} bytes at offset {self.pos}, "
                                f"{self.remaining()} left")
        chunk = bytes(self._data[self.pos:self.pos + n])
        self.pos += n
        return chunk

    def _unpack(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size))[0]

    def u8(self) -> int:
        return self._unpack("<B")

    def u16(self) -> int:
        return self._unpack("<H")

    def u16_be(self) -> int:
        return self._unpack(">H")

    def u32(self) -> int:
        return self._unpack("<I")

    def i32(self) -> int:
        return self._unpack("<i")

    def u64(self) -> int:
        return self._unpack("<Q")

    def ucs2(self, chars: int) -> str:
        return self.take(2 * chars).decode("utf-16-le")

    def b_varchar(self) -> str:
        return self.ucs2(self.u8())

    def us_varchar(self) -> str:
        return self.ucs2(self.u16())


def b_varchar(text: str) -> bytes:
    data = text.encode("utf-16-le")
    if len(data) // 2 > 255:
        raise ValueError(f"B_VARCHAR holds at most 255 characters, got {len(data) // 2}: {text[:40]!r}...")
    return bytes([len(data) // 2]) + data


def us_varchar(text: str) -> bytes:
    data = text.encode("utf-16-le")
    if len(data) // 2 > 0xFFFF:
        raise ValueError(f"US_VARCHAR holds at most 65535 characters, got {len(data) // 2}")
    return struct.pack("<H", len(data) // 2) + data


def b_varbyte(data: bytes) -> bytes:
    if len(data) > 255:
        raise ValueError(f"B_VARBYTE holds at most 255 bytes, got {len(data)}")
    return bytes([len(data)]) + data
