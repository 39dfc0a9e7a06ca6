"""TDS data types (MS-TDS 2.2.5.4-2.2.5.6): TYPE_INFO and values, both directions.

Decoding covers what the three client stacks send as RPC parameters (pyodbc with FreeTDS or ODBC
Driver 18, pymssql): the integer family, bit, float/real, money, numeric/decimal, char/varchar/
nchar/nvarchar (incl. PLP ``(max)``), text/ntext/image, binary/varbinary, datetime, smalldatetime,
datetime2, date, time, datetimeoffset, uniqueidentifier, xml, and NULLs of each.
Encoding covers the column types of :class:`~sqlserver_standin.events.SqlType`, chosen as SQL Server
chooses them: fixed-length types (INT4, BIT, ...) for NOT NULL columns, the nullable ``N`` variants
otherwise.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import struct
import uuid
from dataclasses import dataclass

from ..events import Column, SqlType
from .wire import ByteReader, ProtocolError

__all__ = [
    "TypeId",
    "TypeInfo",
    "SERVER_COLLATION",
    "read_type_info",
    "read_value",
    "type_info_for",
    "encode_value",
]

# SQL_Latin1_General_CP1_CI_AS: LCID 0x0409, IgnoreCase|IgnoreKana|IgnoreWidth, sort id 52.
SERVER_COLLATION = bytes([0x09, 0x04, 0xD0, 0x00, 0x34])

_PLP_NULL = 0xFFFFFFFFFFFFFFFF
_PLP_UNKNOWN_LENGTH = 0xFFFFFFFFFFFFFFFE
_USHORT_NULL = 0xFFFF
_MAX = 0xFFFF  # a USHORTLEN type's max length of 0xFFFF means (max): values are PLP
_DATETIME_EPOCH = dt.datetime(1900, 1, 1)
_DATE_EPOCH = dt.date(1, 1, 1)
_TICKS_PER_DAY = 300 * 86400  # datetime's time part counts 1/300 seconds


class TypeId(enum.IntEnum):
    NULL = 0x1F
    INT1 = 0x30
    BIT = 0x32
    INT2 = 0x34
    INT4 = 0x38
    DATETIM4 = 0x3A
    FLT4 = 0x3B
    MONEY = 0x3C
    DATETIME = 0x3D
    FLT8 = 0x3E
    MONEY4 = 0x7A
    INT8 = 0x7F
    GUID = 0x24
    INTN = 0x26
    DECIMAL = 0x37
    NUMERIC = 0x3F
    BITN = 0x68
    DECIMALN = 0x6A
    NUMERICN = 0x6C
    FLTN = 0x6D
    MONEYN = 0x6E
    DATETIMN = 0x6F
    DATEN = 0x28
    TIMEN = 0x29
    DATETIME2N = 0x2A
    DATETIMEOFFSETN = 0x2B
    CHAR = 0x2F
    VARCHAR = 0x27
    BINARY = 0x2D
    VARBINARY = 0x25
    BIGVARBIN = 0xA5
    BIGVARCHR = 0xA7
    BIGBINARY = 0xAD
    BIGCHAR = 0xAF
    NVARCHAR = 0xE7
    NCHAR = 0xEF
    XML = 0xF1
    UDT = 0xF0
    TEXT = 0x23
    IMAGE = 0x22
    NTEXT = 0x63
    SSVARIANT = 0x62


_FIXED_SIZES = {TypeId.NULL: 0, TypeId.INT1: 1, TypeId.BIT: 1, TypeId.INT2: 2, TypeId.INT4: 4,
                TypeId.DATETIM4: 4, TypeId.FLT4: 4, TypeId.MONEY: 8, TypeId.DATETIME: 8, TypeId.FLT8: 8,
                TypeId.MONEY4: 4, TypeId.INT8: 8}
_BYTELEN = {TypeId.GUID, TypeId.INTN, TypeId.BITN, TypeId.FLTN, TypeId.MONEYN, TypeId.DATETIMN,
            TypeId.DECIMAL, TypeId.NUMERIC, TypeId.DECIMALN, TypeId.NUMERICN}
_SCALED_TIME = {TypeId.TIMEN, TypeId.DATETIME2N, TypeId.DATETIMEOFFSETN}
_USHORTLEN = {TypeId.BIGVARBIN, TypeId.BIGVARCHR, TypeId.BIGBINARY, TypeId.BIGCHAR, TypeId.NVARCHAR,
              TypeId.NCHAR}
_COLLATED = {TypeId.BIGVARCHR, TypeId.BIGCHAR, TypeId.NVARCHAR, TypeId.NCHAR, TypeId.TEXT, TypeId.NTEXT}
_UNICODE = {TypeId.NVARCHAR, TypeId.NCHAR, TypeId.NTEXT}
_LONGLEN = {TypeId.TEXT, TypeId.IMAGE, TypeId.NTEXT}


@dataclass(frozen=True)
class TypeInfo:
    type_id: TypeId
    size: int = 0  # max length in bytes for variable types; value size for BYTELEN types
    precision: int = 0
    scale: int = 0
    collation: bytes = b""

    @property
    def accepts_null(self) -> bool:
        """False for the fixed-length types, which SQL Server only uses for NOT NULL columns."""
        return self.type_id not in _FIXED_SIZES

    @property
    def is_plp(self) -> bool:
        return (self.type_id in _USHORTLEN and self.size == _MAX) or self.type_id == TypeId.XML

    def encode(self) -> bytes:
        t = self.type_id
        if t in _FIXED_SIZES:
            return bytes([t])
        if t in (TypeId.DECIMAL, TypeId.NUMERIC, TypeId.DECIMALN, TypeId.NUMERICN):
            return bytes([t, self.size, self.precision, self.scale])
        if t in _BYTELEN:
            return bytes([t, self.size])
        if t == TypeId.DATEN:
            return bytes([t])
        if t in _SCALED_TIME:
            return bytes([t, self.scale])
        if t in _USHORTLEN:
            return bytes([t]) + struct.pack("<H", self.size) + (self.collation if t in _COLLATED else b"")
        raise ValueError(f"the stand-in does not send columns of TDS type {t.name}")


# ------------------------------------------------------------------------------------------ decoding
def read_type_info(reader: ByteReader) -> TypeInfo:
    raw = reader.u8()
    try:
        t = TypeId(raw)
    except ValueError as exc:
        raise ProtocolError(f"unknown TDS data type 0x{raw:02X}") from exc
    if t in _FIXED_SIZES:
        return TypeInfo(t, _FIXED_SIZES[t])
    if t in (TypeId.DECIMAL, TypeId.NUMERIC, TypeId.DECIMALN, TypeId.NUMERICN):
        return TypeInfo(t, reader.u8(), precision=reader.u8(), scale=reader.u8())
    if t in _BYTELEN:
        return TypeInfo(t, reader.u8())
    if t == TypeId.DATEN:
        return TypeInfo(t, 3)
    if t in _SCALED_TIME:
        return TypeInfo(t, scale=reader.u8())
    if t in _USHORTLEN:
        size = reader.u16()
        return TypeInfo(t, size, collation=reader.take(5) if t in _COLLATED else b"")
    if t in _LONGLEN:
        size = reader.u32()
        return TypeInfo(t, size, collation=reader.take(5) if t in _COLLATED else b"")
    if t == TypeId.XML:
        if reader.u8():  # schema present: database, owning schema, schema collection
            reader.b_varchar()
            reader.b_varchar()
            reader.us_varchar()
        return TypeInfo(t, _MAX)
    raise ProtocolError(f"parameters of TDS type {t.name} are not supported by the stand-in")


def read_value(reader: ByteReader, info: TypeInfo) -> object:
    """One value as the client sent it, as a Python object (None for NULL)."""
    t = info.type_id
    if t == TypeId.NULL:
        return None
    if t in _FIXED_SIZES:
        return _decode_fixed(t, reader.take(_FIXED_SIZES[t]), info)
    if t in _BYTELEN or t == TypeId.DATEN or t in _SCALED_TIME:
        length = reader.u8()
        return None if length == 0 else _decode_fixed(t, reader.take(length), info)
    if info.is_plp:
        data = _read_plp(reader)
        return None if data is None else _decode_text_or_binary(t, data, info)
    if t in _USHORTLEN:
        length = reader.u16()
        return None if length == _USHORT_NULL else _decode_text_or_binary(t, reader.take(length), info)
    if t in _LONGLEN:
        length = reader.u32()
        return None if length == 0xFFFFFFFF else _decode_text_or_binary(t, reader.take(length), info)
    raise ProtocolError(f"values of TDS type {t.name} are not supported by the stand-in")


def _read_plp(reader: ByteReader) -> bytes | None:
    total = reader.u64()
    if total == _PLP_NULL:
        return None
    chunks = []
    while (size := reader.u32()) != 0:
        chunks.append(reader.take(size))
    return b"".join(chunks)


def _decode_text_or_binary(t: TypeId, data: bytes, info: TypeInfo) -> object:
    if t in _UNICODE or t == TypeId.XML:
        return data.decode("utf-16-le")
    if t in _COLLATED:
        return data.decode(collation_codec(info.collation), errors="replace")
    return data


def _decode_fixed(t: TypeId, data: bytes, info: TypeInfo) -> object:
    n = len(data)
    if t in (TypeId.INT1, TypeId.INT2, TypeId.INT4, TypeId.INT8, TypeId.INTN):
        return int.from_bytes(data, "little", signed=n != 1)  # tinyint is the unsigned one
    if t in (TypeId.BIT, TypeId.BITN):
        return data != b"\x00"
    if t in (TypeId.FLT4, TypeId.FLT8, TypeId.FLTN):
        return struct.unpack("<f" if n == 4 else "<d", data)[0]
    if t in (TypeId.MONEY, TypeId.MONEY4, TypeId.MONEYN):
        units = struct.unpack("<i", data)[0] if n == 4 else (
            (struct.unpack("<i", data[:4])[0] << 32) | struct.unpack("<I", data[4:])[0])
        return decimal.Decimal(units).scaleb(-4)
    if t in (TypeId.DECIMAL, TypeId.NUMERIC, TypeId.DECIMALN, TypeId.NUMERICN):
        magnitude = int.from_bytes(data[1:], "little")
        return decimal.Decimal(magnitude if data[0] == 1 else -magnitude).scaleb(-info.scale)
    if t in (TypeId.DATETIME, TypeId.DATETIMN) and n == 8:
        days, ticks = struct.unpack("<iI", data)
        return _DATETIME_EPOCH + dt.timedelta(days=days, microseconds=round(ticks * 10000 / 3))
    if t in (TypeId.DATETIM4, TypeId.DATETIMN):
        days, minutes = struct.unpack("<HH", data)
        return _DATETIME_EPOCH + dt.timedelta(days=days, minutes=minutes)
    if t == TypeId.GUID:
        return uuid.UUID(bytes_le=data)
    if t == TypeId.DATEN:
        return _DATE_EPOCH + dt.timedelta(days=int.from_bytes(data, "little"))
    if t in _SCALED_TIME:
        time_len = _time_length(info.scale)
        units = int.from_bytes(data[:time_len], "little")
        since_midnight = dt.timedelta(microseconds=units * 10 ** (6 - info.scale) if info.scale <= 6
                                      else units // 10)
        if t == TypeId.TIMEN:
            return (dt.datetime.min + since_midnight).time()
        date = _DATE_EPOCH + dt.timedelta(days=int.from_bytes(data[time_len:time_len + 3], "little"))
        value = dt.datetime.combine(date, dt.time()) + since_midnight
        if t == TypeId.DATETIME2N:
            return value
        offset = dt.timedelta(minutes=struct.unpack("<h", data[time_len + 3:time_len + 5])[0])
        return (value + offset).replace(tzinfo=dt.timezone(offset))  # stored in UTC
    raise ProtocolError(f"a {t.name} value of {n} bytes is not valid")


def _time_length(scale: int) -> int:
    return 3 if scale <= 2 else 4 if scale <= 4 else 5


_LCID_CODEPAGES = {0x0401: "cp1256", 0x0404: "cp950", 0x0405: "cp1250", 0x0408: "cp1253",
                   0x040D: "cp1255", 0x040E: "cp1250", 0x0411: "cp932", 0x0412: "cp949",
                   0x0415: "cp1250", 0x0419: "cp1251", 0x041E: "cp874", 0x041F: "cp1254",
                   0x0422: "cp1251", 0x0425: "cp1257", 0x0426: "cp1257", 0x0427: "cp1257",
                   0x042A: "cp1258", 0x0804: "cp936"}


def collation_codec(collation: bytes) -> str:
    """The code page a varchar value in this collation is encoded in (cp1252 for Latin1_General)."""
    if len(collation) != 5:
        return "cp1252"
    info = int.from_bytes(collation[:4], "little")
    if info & (1 << 26):  # fUTF8: a *_UTF8 collation
        return "utf-8"
    sort_id = collation[4]
    if sort_id:  # SQL collations; the ones not listed here are all code page 1252 variants
        return {30: "cp437", 31: "cp437", 32: "cp437", 33: "cp437", 34: "cp437",
                40: "cp850", 41: "cp850", 42: "cp850", 43: "cp850", 44: "cp850", 49: "cp850"}.get(
            sort_id, "cp1252")
    return _LCID_CODEPAGES.get(info & 0xFFFFF, "cp1252")


# ------------------------------------------------------------------------------------------ encoding
_INT_SIZES = {SqlType.TINYINT: 1, SqlType.SMALLINT: 2, SqlType.INT: 4, SqlType.BIGINT: 8}
_FIXED_INT_IDS = {1: TypeId.INT1, 2: TypeId.INT2, 4: TypeId.INT4, 8: TypeId.INT8}


def type_info_for(column: Column) -> TypeInfo:
    """The TYPE_INFO SQL Server sends for a column of this type and nullability."""
    t, nullable = column.type, column.nullable
    if t in _INT_SIZES:
        size = _INT_SIZES[t]
        return TypeInfo(TypeId.INTN, size) if nullable else TypeInfo(_FIXED_INT_IDS[size], size)
    if t == SqlType.BIT:
        return TypeInfo(TypeId.BITN, 1) if nullable else TypeInfo(TypeId.BIT, 1)
    if t == SqlType.FLOAT:
        return TypeInfo(TypeId.FLTN, 8) if nullable else TypeInfo(TypeId.FLT8, 8)
    if t == SqlType.DATETIME:
        return TypeInfo(TypeId.DATETIMN, 8) if nullable else TypeInfo(TypeId.DATETIME, 8)
    if t == SqlType.NUMERIC:
        if not 1 <= column.precision <= 38 or not 0 <= column.scale <= column.precision:
            raise ValueError(f"column {column.name!r}: numeric({column.precision},{column.scale}) "
                             "is not a valid SQL Server type")
        return TypeInfo(TypeId.NUMERICN, 1 + _numeric_bytes(column.precision), column.precision, column.scale)
    if t == SqlType.NVARCHAR:
        if column.length is not None and not 1 <= column.length <= 4000:
            raise ValueError(f"column {column.name!r}: nvarchar({column.length}) is not valid (1..4000 or max)")
        size = _MAX if column.length is None else 2 * column.length
        return TypeInfo(TypeId.NVARCHAR, size, collation=SERVER_COLLATION)
    if t == SqlType.VARBINARY:
        if column.length is not None and not 1 <= column.length <= 8000:
            raise ValueError(f"column {column.name!r}: varbinary({column.length}) is not valid (1..8000 or max)")
        return TypeInfo(TypeId.BIGVARBIN, _MAX if column.length is None else column.length)
    if t == SqlType.DATETIME2:
        return TypeInfo(TypeId.DATETIME2N, scale=7)
    if t == SqlType.UNIQUEIDENTIFIER:
        return TypeInfo(TypeId.GUID, 16)
    raise ValueError(f"column {column.name!r}: type {t} has no TDS encoding in the stand-in")


def _numeric_bytes(precision: int) -> int:
    return 4 if precision <= 9 else 8 if precision <= 19 else 12 if precision <= 28 else 16


def encode_value(info: TypeInfo, value: object, *, name: str = "") -> bytes:
    """``value`` in the row/RETURNVALUE format of ``info``. ``name`` only makes errors say which column."""
    t = info.type_id
    if value is None:
        if t in _FIXED_SIZES:
            raise ValueError(f"column {name!r} is NOT NULL but the engine produced NULL")
        if info.is_plp:
            return struct.pack("<Q", _PLP_NULL)
        if t in _USHORTLEN:
            return struct.pack("<H", _USHORT_NULL)
        return b"\x00"
    data = _encode_non_null(info, value, name)
    if t in _FIXED_SIZES:
        return data
    if info.is_plp:
        return _plp(data)
    if t in _USHORTLEN:
        if len(data) > info.size:
            raise ValueError(f"column {name!r}: value of {len(data)} bytes is longer than the column "
                             f"({info.size} bytes)")
        return struct.pack("<H", len(data)) + data
    return bytes([len(data)]) + data


def _plp(data: bytes) -> bytes:
    out = bytearray(struct.pack("<Q", len(data)))
    for start in range(0, len(data), 0x7FFFFFFF):
        chunk = data[start:start + 0x7FFFFFFF]
        out += struct.pack("<I", len(chunk)) + chunk
    return bytes(out + b"\x00\x00\x00\x00")


def _require(value: object, types: type | tuple[type, ...], name: str, sql_type: str) -> None:
    if not isinstance(value, types):
        raise ValueError(f"column {name!r} ({sql_type}): the engine produced {type(value).__name__} "
                         f"{value!r}")


def _encode_non_null(info: TypeInfo, value: object, name: str) -> bytes:
    t = info.type_id
    if t in (TypeId.INTN, TypeId.INT1, TypeId.INT2, TypeId.INT4, TypeId.INT8):
        _require(value, int, name, "integer")
        try:
            return int(value).to_bytes(info.size, "little", signed=info.size != 1)
        except OverflowError as exc:
            raise ValueError(f"column {name!r}: {value} does not fit in {info.size} bytes") from exc
    if t in (TypeId.BITN, TypeId.BIT):
        _require(value, (bool, int), name, "bit")
        return b"\x01" if value else b"\x00"
    if t in (TypeId.FLTN, TypeId.FLT8):
        _require(value, (float, int, decimal.Decimal), name, "float")
        return struct.pack("<d", float(value))
    if t in (TypeId.DATETIMN, TypeId.DATETIME):
        _require(value, dt.datetime, name, "datetime")
        return _encode_datetime(value, name)
    if t == TypeId.NUMERICN:
        _require(value, (int, decimal.Decimal), name, "numeric")
        return _encode_numeric(decimal.Decimal(value), info, name)
    if t == TypeId.NVARCHAR:
        _require(value, str, name, "nvarchar")
        return value.encode("utf-16-le")
    if t == TypeId.BIGVARBIN:
        _require(value, (bytes, bytearray, memoryview), name, "varbinary")
        return bytes(value)
    if t == TypeId.DATETIME2N:
        _require(value, dt.datetime, name, "datetime2")
        if value.tzinfo is not None:
            raise ValueError(f"column {name!r}: datetime2 values are naive (server local time)")
        midnight = value.replace(hour=0, minute=0, second=0, microsecond=0)
        units = (value - midnight) // dt.timedelta(microseconds=1) * 10  # 100 ns units at scale 7
        days = (value.date() - _DATE_EPOCH).days
        return units.to_bytes(5, "little") + days.to_bytes(3, "little")
    if t == TypeId.GUID:
        _require(value, (uuid.UUID, str), name, "uniqueidentifier")
        return (value if isinstance(value, uuid.UUID) else uuid.UUID(value)).bytes_le
    raise ValueError(f"column {name!r}: no encoder for TDS type {t.name}")


def _encode_datetime(value: dt.datetime, name: str) -> bytes:
    """SQL Server's datetime: days since 1900-01-01 and 1/300 s ticks, rounded as SQL Server rounds."""
    if value.tzinfo is not None:
        raise ValueError(f"column {name!r}: datetime values are naive (server local time)")
    if value.year < 1753:
        raise ValueError(f"column {name!r}: {value} is before 1753-01-01, outside datetime's range")
    midnight = value.replace(hour=0, minute=0, second=0, microsecond=0)
    micro = (value - midnight) // dt.timedelta(microseconds=1)
    ticks = (micro * 300 + 500_000) // 1_000_000
    days = (midnight - _DATETIME_EPOCH).days
    if ticks >= _TICKS_PER_DAY:
        days, ticks = days + 1, 0
    return struct.pack("<iI", days, ticks)


def _encode_numeric(value: decimal.Decimal, info: TypeInfo, name: str) -> bytes:
    scaled = value.scaleb(info.scale).to_integral_value(rounding=decimal.ROUND_HALF_UP)
    magnitude = int(abs(scaled))
    if magnitude >= 10 ** info.precision:
        raise ValueError(f"column {name!r}: {value} does not fit numeric({info.precision},{info.scale})")
    return (b"\x00" if scaled < 0 else b"\x01") + magnitude.to_bytes(info.size - 1, "little")
