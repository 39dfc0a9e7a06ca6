"""Unit tests of the TDS codecs: framing, LOGIN7, data types, RPC decoding, the sp_prepare family."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import struct
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sqlserver_standin.events import Column, SqlType
from sqlserver_standin.tds.datatypes import (
    TypeId,
    TypeInfo,
    collation_codec,
    encode_value,
    read_type_info,
    read_value,
    type_info_for,
)
from sqlserver_standin.tds.login7 import decode_login7, deobfuscate_password, obfuscate_password
from sqlserver_standin.tds.packets import PacketType, encode_message, read_message
from sqlserver_standin.tds.prelogin import Encryption, decode_prelogin, encode_prelogin_response
from sqlserver_standin.tds.procedures import PreparedStatements, parse_declarations, plan_call
from sqlserver_standin.tds.requests import RpcCall, RpcParam, decode_rpc, decode_tm_request
from sqlserver_standin.tds.wire import ByteReader, ProtocolError, b_varchar


def _read(wire: bytes):
    async def read():
        reader = asyncio.StreamReader()
        reader.feed_data(wire)
        reader.feed_eof()
        return await read_message(reader)

    return asyncio.run(read())


# -- framing ---------------------------------------------------------------------------------------
@given(st.binary(max_size=3000), st.integers(min_value=512, max_value=1200))
def test_a_message_split_into_packets_reads_back_whole(payload: bytes, packet_size: int) -> None:
    wire = encode_message(PacketType.SQL_BATCH, payload, packet_size)

    message = _read(wire)
    assert message.type == PacketType.SQL_BATCH and message.payload == payload
    assert all(len(chunk) <= packet_size for chunk in _packets(wire))


def _packets(wire: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(wire):
        length = struct.unpack(">H", wire[pos + 2:pos + 4])[0]
        out.append(wire[pos:pos + length])
        pos += length
    return out


def test_a_connection_closed_mid_packet_is_a_protocol_error() -> None:
    wire = encode_message(PacketType.SQL_BATCH, b"x" * 100, 4096)[:50]
    with pytest.raises(ProtocolError, match="middle of a packet"):
        _read(wire)


# -- PRELOGIN / LOGIN7 -----------------------------------------------------------------------------
def test_prelogin_answer_refuses_encryption_so_login_travels_in_clear() -> None:
    # VERSION at 16 (6 bytes), ENCRYPTION at 22 = ENCRYPT_OFF, MARS at 23 = off
    request = decode_prelogin(bytes.fromhex("0000100006" "0100160001" "0400170001" "ff" "090000000000" "00" "00"))
    assert request.encryption == Encryption.OFF
    answer = decode_prelogin(encode_prelogin_response(request))
    assert answer.encryption == Encryption.NOT_SUP
    assert answer.client_version == (16, 0, 1000, 6)


def test_a_tls_client_hello_is_refused_with_a_hint() -> None:
    with pytest.raises(ProtocolError, match="Encrypt=no"):
        decode_prelogin(b"\x16\x03\x01\x00\x10")


@given(st.text(max_size=64))
def test_password_obfuscation_round_trips(password: str) -> None:
    assert deobfuscate_password(obfuscate_password(password)) == password


def test_password_obfuscation_matches_the_spec_example() -> None:
    # MS-TDS 2.2.6.4: 'a' (0x61 0x00 in UCS-2) -> swap nibbles 0x16 0x00 -> XOR 0xA5 -> 0xB3 0xA5
    assert obfuscate_password("a") == b"\xb3\xa5"


def _login7(user: str, password: str, database: str, packet_size: int = 8192) -> bytes:
    """A LOGIN7 as a client builds it (2.2.6.4): fixed part, offset/length pairs, then the strings."""
    fixed_size = 94
    fields = [b"host", user, obfuscate_password(password), b"app", b"server", b"", b"ODBC", b"", database]
    data, spans = bytearray(), []
    for value in fields:
        raw = value.encode("utf-16-le") if isinstance(value, str) else (
            value.decode().encode("utf-16-le") if value in (b"host", b"app", b"server", b"ODBC") else value)
        spans.append((fixed_size + len(data) if raw else 0, len(raw) // 2))
        data += raw
    head = struct.pack("<IIIIIIBBBBiI", fixed_size + len(data), 0x74000004, packet_size, 7, 1234, 0,
                       0xE0, 0x03, 0, 0, 0, 0x409)
    head += b"".join(struct.pack("<HH", offset, count) for offset, count in spans)
    head += b"\x00" * 6 + struct.pack("<HHHHHHI", 0, 0, 0, 0, 0, 0, 0)
    assert len(head) == fixed_size
    return head + bytes(data)


def test_login7_fields_decode_and_the_password_is_recovered() -> None:
    login = decode_login7(_login7("dr_user", "pä;ss'w}", "BizTalkMgmtDb"))
    assert (login.user_name, login.password, login.database) == ("dr_user", "pä;ss'w}", "BizTalkMgmtDb")
    assert (login.tds_version, login.packet_size, login.client_interface) == (0x74000004, 8192, "ODBC")
    assert "pä;ss" not in repr(login)  # logs never show the password


def test_a_truncated_login7_is_refused() -> None:
    with pytest.raises(ProtocolError, match="LOGIN7"):
        decode_login7(_login7("u", "p", "db")[:60])


# -- data types ------------------------------------------------------------------------------------
def _round_trip(column: Column, value: object) -> object:
    info = type_info_for(column)
    reader = ByteReader(info.encode() + encode_value(info, value))
    decoded_info = read_type_info(reader)
    return read_value(reader, decoded_info)


@pytest.mark.parametrize(("column", "value"), [
    (Column("i", SqlType.INT), -2_147_483_648),
    (Column("i", SqlType.INT, nullable=False), 42),
    (Column("b", SqlType.BIGINT), 9_223_372_036_854_775_807),
    (Column("t", SqlType.TINYINT), 255),
    (Column("s", SqlType.SMALLINT), -32768),
    (Column("lsn", SqlType.NUMERIC, precision=25, scale=0), decimal.Decimal("39000000012300001")),
    (Column("lsn", SqlType.NUMERIC, precision=25, scale=0), decimal.Decimal("-9999999999999999999999999")),
    (Column("m", SqlType.NUMERIC, precision=10, scale=4), decimal.Decimal("123456.7891")),
    (Column("n", SqlType.NVARCHAR, length=40), "Größe – 日本語 ✓ 𝄞"),
    (Column("n", SqlType.NVARCHAR, length=None), "x" * 70_000),
    (Column("v", SqlType.VARBINARY, length=None), bytes(range(256)) * 40),
    (Column("bit", SqlType.BIT, nullable=False), True),
    (Column("f", SqlType.FLOAT), 0.1),
    (Column("d2", SqlType.DATETIME2), dt.datetime(2024, 2, 29, 23, 59, 59, 999999)),
    (Column("d2", SqlType.DATETIME2), dt.datetime(1, 1, 1)),
    (Column("g", SqlType.UNIQUEIDENTIFIER), uuid.UUID("6F9619FF-8B86-D011-B42D-00C04FC964FF")),
])
def test_column_values_round_trip(column: Column, value: object) -> None:
    assert _round_trip(column, value) == value


@pytest.mark.parametrize("sql_type", list(SqlType))
def test_null_round_trips_for_every_nullable_type(sql_type: SqlType) -> None:
    assert _round_trip(Column("c", sql_type), None) is None


@pytest.mark.parametrize(("given", "stored"), [
    # SQL Server rounds datetime to 1/300 s: .xx0, .xx3, .xx7 (and 23:59:59.999 to the next day)
    (dt.datetime(2024, 5, 17, 10, 0, 0, 1000), dt.datetime(2024, 5, 17, 10, 0, 0, 0)),
    (dt.datetime(2024, 5, 17, 10, 0, 0, 2000), dt.datetime(2024, 5, 17, 10, 0, 0, 3333)),
    (dt.datetime(2024, 5, 17, 10, 0, 0, 5000), dt.datetime(2024, 5, 17, 10, 0, 0, 6667)),
    (dt.datetime(2024, 5, 17, 23, 59, 59, 999000), dt.datetime(2024, 5, 18)),
    (dt.datetime(1753, 1, 1), dt.datetime(1753, 1, 1)),
])
def test_datetime_rounds_like_sql_server(given: dt.datetime, stored: dt.datetime) -> None:
    assert _round_trip(Column("d", SqlType.DATETIME), given) == stored


@pytest.mark.parametrize(("column", "value", "message"), [
    (Column("id", SqlType.INT, nullable=False), None, "NOT NULL"),
    (Column("id", SqlType.INT), "7", "int"),
    (Column("lsn", SqlType.NUMERIC, precision=25), decimal.Decimal(10) ** 25, "does not fit"),
    (Column("name", SqlType.NVARCHAR, length=3), "four", "longer than the column"),
    (Column("d", SqlType.DATETIME), dt.datetime(1700, 1, 1), "1753"),
])
def test_values_the_column_cannot_hold_name_the_column(column: Column, value: object, message: str) -> None:
    info = type_info_for(column)
    with pytest.raises(ValueError, match=message) as caught:
        encode_value(info, value, name=column.name)
    assert repr(column.name) in str(caught.value)


@pytest.mark.parametrize(("wire", "expected"), [
    (bytes([TypeId.INTN, 4, 4]) + struct.pack("<i", -5), -5),
    (bytes([TypeId.INTN, 8, 0]), None),
    (bytes([TypeId.BITN, 1, 1, 1]), True),
    (bytes([TypeId.FLTN, 4, 4]) + struct.pack("<f", 1.5), 1.5),
    (bytes([TypeId.MONEYN, 8, 8]) + struct.pack("<iI", 0, 12345678), decimal.Decimal("1234.5678")),
    (bytes([TypeId.DECIMALN, 17, 38, 2, 17, 0]) + (12345).to_bytes(16, "little"), decimal.Decimal("-123.45")),
    (bytes([TypeId.BIGVARCHR]) + struct.pack("<H", 8000) + bytes([9, 4, 0xD0, 0, 0x34])
     + struct.pack("<H", 3) + "café".encode("cp1252")[:3], "caf"),
    (bytes([TypeId.BIGVARCHR]) + struct.pack("<H", 0xFFFF) + bytes([9, 4, 0xD0, 0, 0x34])
     + struct.pack("<QI", 5, 2) + b"ab" + struct.pack("<I", 3) + b"cde" + b"\0\0\0\0", "abcde"),
    (bytes([TypeId.NVARCHAR]) + struct.pack("<H", 0xFFFF) + bytes(5) + struct.pack("<Q", 2 ** 64 - 1), None),
    (bytes([TypeId.NTEXT]) + struct.pack("<I", 0x7FFFFFFE) + bytes(5) + struct.pack("<I", 4) + "hé".encode(
        "utf-16-le"), "hé"),
    (bytes([TypeId.BIGVARBIN]) + struct.pack("<HH", 8000, 0xFFFF), None),
    (bytes([TypeId.DATETIMN, 8, 8]) + struct.pack("<iI", 45427, 300 * 3600), dt.datetime(2024, 5, 17, 1)),
    (bytes([TypeId.DATETIMN, 4, 4]) + struct.pack("<HH", 1, 61), dt.datetime(1900, 1, 2, 1, 1)),
    (bytes([TypeId.DATEN, 3]) + (738_656).to_bytes(3, "little"), dt.date(2023, 5, 17)),
    (bytes([TypeId.TIMEN, 0, 3]) + (3661).to_bytes(3, "little"), dt.time(1, 1, 1)),
    (bytes([TypeId.DATETIME2N, 7, 8]) + (36_000_000_001).to_bytes(5, "little") + (1).to_bytes(3, "little"),
     dt.datetime(1, 1, 2, 1, 0, 0)),
    (bytes([TypeId.DATETIMEOFFSETN, 0, 8]) + (0).to_bytes(3, "little") + (1).to_bytes(3, "little")
     + struct.pack("<h", 120), dt.datetime(1, 1, 2, 2, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))),
    (bytes([TypeId.GUID, 16, 16]) + uuid.UUID(int=1).bytes_le, uuid.UUID(int=1)),
    (bytes([TypeId.NULL]), None),
])
def test_parameter_values_decode(wire: bytes, expected: object) -> None:
    reader = ByteReader(wire)
    assert read_value(reader, read_type_info(reader)) == expected
    assert reader.at_end()


def test_an_unknown_type_is_a_protocol_error_naming_it() -> None:
    with pytest.raises(ProtocolError, match="0x99"):
        read_type_info(ByteReader(b"\x99"))


def test_varchar_code_page_follows_the_collation() -> None:
    assert collation_codec(bytes([9, 4, 0xD0, 0, 0x34])) == "cp1252"
    assert collation_codec(bytes([0x19, 4, 0, 0, 0])) == "cp1251"  # Cyrillic_General (LCID 0x419)
    assert collation_codec((0x409 | 1 << 26).to_bytes(4, "little") + b"\0") == "utf-8"


# -- RPC -------------------------------------------------------------------------------------------
_ALL_HEADERS = struct.pack("<IIHQI", 22, 18, 2, 0, 1)


def _nvarchar_param(name: str, value: str) -> bytes:
    data = value.encode("utf-16-le")
    return (b_varchar(name) + b"\x00" + bytes([TypeId.NVARCHAR]) + struct.pack("<H", 8000) + bytes(5)
            + struct.pack("<H", len(data)) + data)


def test_rpc_by_proc_id_with_output_and_positional_params_decodes() -> None:
    payload = (_ALL_HEADERS + struct.pack("<HHH", 0xFFFF, 13, 0)
               + b_varchar("") + b"\x01" + bytes([TypeId.INTN, 4, 0])
               + _nvarchar_param("", "@P1 int") + _nvarchar_param("", "SELECT @P1")
               + b_varchar("") + b"\x00" + bytes([TypeId.INTN, 4, 4]) + struct.pack("<i", 7))
    (call,) = decode_rpc(payload, 0x74000004)
    assert call.procedure == "sp_prepexec"
    assert [p.value for p in call.params] == [None, "@P1 int", "SELECT @P1", 7]
    assert [p.output for p in call.params] == [True, False, False, False]


def test_several_rpcs_in_one_request_are_split_at_the_batch_separator() -> None:
    one = struct.pack("<H", 4) + "proc".encode("utf-16-le") + b"\x00\x00" + _nvarchar_param("@a", "x")
    (first, second) = decode_rpc(_ALL_HEADERS + one + b"\xff" + one, 0x74000004)
    assert first == second and first.procedure == "proc" and first.params[0].name == "@a"


def test_transaction_manager_commit_that_begins_the_next_transaction() -> None:
    request = decode_tm_request(_ALL_HEADERS + struct.pack("<H", 7) + b"\x00" + b"\x01" + b"\x00" + b"\x00",
                                0x74000004)
    assert request.begin_new and request.type.name == "COMMIT_XACT"


# -- sp_executesql and the sp_prepare family -------------------------------------------------------
def _param(value: object, name: str = "", *, output: bool = False, text: bool = False) -> RpcParam:
    info = TypeInfo(TypeId.NVARCHAR, 8000) if text else TypeInfo(TypeId.INTN, 4)
    return RpcParam(name, value, info, output=output, wire=b"\x26\x04\x00")


def test_declarations_split_at_top_level_commas_only() -> None:
    declared = parse_declarations("@P1 decimal(25,0),@P2 nvarchar(max) OUTPUT, @Name nvarchar(128)")
    assert [(d.name, d.type_text, d.output) for d in declared] == [
        ("@P1", "decimal(25,0)", False), ("@P2", "nvarchar(max)", True), ("@Name", "nvarchar(128)", False)]


def test_sp_executesql_binds_named_and_positional_values_to_the_declaration() -> None:
    call = RpcCall("sp_executesql", (_param("SELECT @a, @b", text=True), _param("@a int, @b int", text=True),
                                     _param(1), _param(2, "@B")))
    plan = plan_call(call, PreparedStatements())
    assert plan.sql == "SELECT @a, @b" and plan.params == {"@a": 1, "@b": 2}


def test_prepare_execute_unprepare_use_per_connection_handles() -> None:
    prepared = PreparedStatements()
    prep = plan_call(RpcCall("sp_prepexec", (_param(None, output=True), _param("@P1 int", text=True),
                                             _param("SELECT @P1", text=True), _param(5))), prepared)
    handle = prep.outputs[0].handle
    assert (handle, prep.sql, prep.params) == (1, "SELECT @P1", {"@P1": 5})
    again = plan_call(RpcCall("sp_execute", (_param(handle), _param(6))), prepared)
    assert (again.sql, again.params) == ("SELECT @P1", {"@P1": 6})
    assert plan_call(RpcCall("sp_unprepare", (_param(handle),)), prepared).error is None
    gone = plan_call(RpcCall("sp_execute", (_param(handle), _param(6))), prepared)
    assert (gone.error.number, gone.error.text) == (8179, "Could not find prepared statement with handle 1.")


@pytest.mark.parametrize(("params", "number"), [
    ((), 201),  # no statement
    ((_param(5),), 214),  # statement is not nvarchar
    ((_param("SELECT @a", text=True), _param("@a int", text=True)), 8178),  # @a not supplied
    ((_param("SELECT 1", text=True), _param("", text=True), _param(1)), 8144),  # too many
    ((_param("SELECT @a", text=True), _param("@a int", text=True), _param(1, "@zz")), 8145),
])
def test_sp_executesql_misuse_gets_sql_servers_errors(params: tuple, number: int) -> None:
    plan = plan_call(RpcCall("sys.sp_executesql", params), PreparedStatements())
    assert plan.error is not None and plan.error.number == number and plan.error.severity == 16


def test_other_procedures_go_to_the_engine_with_their_arguments() -> None:
    plan = plan_call(RpcCall("[dbo].[sp_MarkAll]", (_param("BTS", "@MarkName", text=True),)),
                     PreparedStatements())
    assert plan.procedure == "[dbo].[sp_MarkAll]" and plan.args == (("@MarkName", "BTS"),)
