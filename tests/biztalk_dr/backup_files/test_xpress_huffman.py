"""The LZ77+Huffman decoder against [MS-XCA]: its worked examples, a spec-style encoder, garbage."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biztalk_dr.backup_files.xpress_huffman import BLOCK_SIZE, CompressedDataError, decompress


def _lengths_table(lengths: dict[int, int]) -> bytes:
    """The 256-byte table for {symbol: code length}; other symbols have no code."""
    table = bytearray(256)
    for symbol, length in lengths.items():
        table[symbol // 2] |= length << (4 * (symbol & 1))
    return bytes(table)


# [MS-XCA] 3.2, first example: "abcdefghijklmnopqrstuvwxyz" as literals and the EOF symbol.
ALPHABET = (_lengths_table({**{s: 5 for s in range(97, 119)}, **{s: 4 for s in range(119, 123)}, 256: 4})
            + bytes.fromhex("d8 52 3e d7 94 11 5b e9 19 5f f9 d6 7c df 8d 04 00 00 00 00"))
# [MS-XCA] 3.2, second example: "abc" x 100 as "abc" + one match (offset 3, length 297) + EOF.
ABC = (_lengths_table({97: 3, 98: 3, 99: 2, 256: 2, 287: 2}) + bytes.fromhex("a8 dc 00 00 ff 26 01"))


def test_tables_are_the_ones_printed_in_the_spec():
    assert ALPHABET[0x30:0x3E] == bytes.fromhex("50 55 55 55 55 55 55 55 55 55 55 45 44 04")
    assert ALPHABET[0x80] == 0x04
    assert {i: b for i, b in enumerate(ABC[:256]) if b} == {0x30: 0x30, 0x31: 0x23, 0x80: 0x02, 0x8F: 0x20}


def test_spec_example_of_literals():
    assert decompress(ALPHABET, 26) == b"abcdefghijklmnopqrstuvwxyz"


def test_spec_example_of_a_long_match():
    assert decompress(ABC, 300) == b"abc" * 100


def test_fewer_output_bytes_than_asked_for():
    assert decompress(ABC, 3) == b"abc"
    assert decompress(ABC, 0) == b""
    assert decompress(b"", 0) == b""


def test_match_past_the_output_size_is_an_error():
    with pytest.raises(CompressedDataError, match="past the output size 299"):
        decompress(ABC, 299)


@pytest.mark.parametrize("cut", [0, 100, 256, 259, 261])
def test_truncated_input_is_an_error(cut):
    with pytest.raises(CompressedDataError, match="input exhausted"):
        decompress(ABC[:cut], 300)


def test_more_output_than_the_input_holds_is_an_error():
    with pytest.raises(CompressedDataError):
        decompress(ALPHABET, 100_000)


@pytest.mark.parametrize("lengths, kind", [
    ({}, "incomplete"),                                # no symbol has a code
    ({97: 1}, "incomplete"),                           # one 1-bit code fills half the space
    ({97: 4, 98: 3, 99: 2, 256: 2, 287: 2}, "incomplete"),
    ({97: 1, 98: 1, 99: 1}, "over-subscribed"),
])
def test_bad_huffman_table_is_an_error(lengths, kind):
    with pytest.raises(CompressedDataError, match=f"bad Huffman table.*{kind}"):
        decompress(_lengths_table(lengths) + bytes(16), 10)


def test_match_before_the_start_of_the_output_is_an_error():
    # 'a' = code 0, symbol 272 (match, length 3, one offset bit) = code 1; the stream starts with it.
    data = _lengths_table({97: 1, 272: 1}) + bytes.fromhex("00 80 00 00")
    with pytest.raises(CompressedDataError, match="before the start of the output"):
        decompress(data, 10)


def test_bad_extended_length_is_an_error():
    # symbol 271 = match with length nibble 15 -> byte 255 -> u16 5 (< 15): invalid.
    data = _lengths_table({97: 1, 271: 1}) + bytes.fromhex("00 40 00 00") + b"\xff\x05\x00"
    with pytest.raises(CompressedDataError, match="bad match length 5"):
        decompress(data, 100)


# ------------------------------------------------------------------- an encoder written from the spec
class _SpecEncoder:
    """[MS-XCA] 2.1.4.3's bit writer (two reserved word slots), one 64 KiB block at a time.

    Every one of the 512 symbols gets a 9-bit code, so the code of symbol ``s`` is ``s``. A block
    ends once its 65,536 output bytes are made; its bits are flushed and the next block's table
    follows, which is where the decoder must look for it.
    """

    _TABLE = bytes([0x99]) * 256

    def __init__(self) -> None:
        self.buf = bytearray()
        self.out_pos = 0
        self.block_end = -1

    def _start_block(self) -> None:
        if self.block_end >= 0:
            self._flush()
        self.buf += self._TABLE
        self.pos1, self.pos2 = len(self.buf), len(self.buf) + 2
        self.buf += bytes(4)
        self.free, self.word = 16, 0
        self.block_end = self.out_pos + BLOCK_SIZE

    def _bits(self, count: int, value: int) -> None:
        if self.free >= count:
            self.free -= count
            self.word = (self.word << count) + value
        else:
            self.word = (self.word << self.free) + (value >> (count - self.free))
            self.free -= count
            struct.pack_into("<H", self.buf, self.pos1, self.word & 0xFFFF)
            self.pos1, self.pos2 = self.pos2, len(self.buf)
            self.buf += bytes(2)
            self.free += 16
            self.word = value

    def _flush(self) -> None:
        struct.pack_into("<H", self.buf, self.pos1, (self.word << self.free) & 0xFFFF)
        struct.pack_into("<H", self.buf, self.pos2, 0)

    def literal(self, byte: int) -> None:
        if self.out_pos >= self.block_end:
            self._start_block()
        self._bits(9, byte)
        self.out_pos += 1

    def match(self, length: int, offset: int) -> None:
        if self.out_pos >= self.block_end:
            self._start_block()
        high = offset.bit_length() - 1
        rest = length - 3
        self._bits(9, 256 + min(rest, 15) + 16 * high)
        if rest >= 15:
            rest -= 15
            if rest < 255:
                self.buf.append(rest)
            else:
                self.buf.append(255)
                rest += 15
                self.buf += struct.pack("<H", rest) if rest < 65536 else struct.pack("<HI", 0, rest)
        self._bits(high, offset - (1 << high))
        self.out_pos += length

    def finish(self) -> bytes:
        if self.block_end < 0:
            self._start_block()
        self._bits(9, 256)
        self._flush()
        return bytes(self.buf)


def _encode(data: bytes) -> bytes:
    """Greedy LZ77 (3-byte hash, offsets up to 65,535) through the spec encoder."""
    enc = _SpecEncoder()
    last: dict[bytes, int] = {}
    i = 0
    while i < len(data):
        key = data[i:i + 3]
        j = last.get(key)
        last[key] = i
        if len(key) == 3 and j is not None and i - j <= 65535:
            length = 3
            while i + length < len(data) and length < 70_000 and data[j + length] == data[i + length]:
                length += 1
            enc.match(length, i - j)
            i += length
        else:
            enc.literal(data[i])
            i += 1
    return enc.finish()


def test_round_trip_over_several_blocks():
    rnd = random.Random(20140101)
    text = b" ".join(b"SharePoint_Config %d" % rnd.randrange(1000) for _ in range(4_000))
    data = b"TAPE" + rnd.randbytes(30_000) + bytes(50_000) + text + b"abc" * 20_000 + rnd.randbytes(5_000)
    packed = _encode(data)
    assert len(data) > 3 * BLOCK_SIZE
    assert decompress(packed, len(data)) == data


def test_match_across_a_block_boundary_with_a_32_bit_length():
    enc = _SpecEncoder()
    enc.literal(0x41)
    enc.match(70_000, 1)            # length - 3 >= 65,536: 0xff, u16 0, u32
    enc.literal(0x42)               # the second block starts after the overshooting match
    enc.match(BLOCK_SIZE, 2)
    enc.literal(0x43)
    expected = b"A" * 70_001 + b"B" + b"AB" * (BLOCK_SIZE // 2) + b"C"
    assert decompress(enc.finish(), len(expected)) == expected


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000))
def test_round_trip_of_arbitrary_data(data):
    assert decompress(_encode(data), len(data)) == data


# ------------------------------------------------------------------------------------------- garbage
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096), st.integers(min_value=0, max_value=100_000))
def test_random_bytes_decode_or_raise_compressed_data_error(data, size):
    try:
        result = decompress(data, size)
    except CompressedDataError:
        return
    assert isinstance(result, bytes) and len(result) == size


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096), st.integers(min_value=1, max_value=100_000))
def test_random_bit_streams_under_a_valid_table_decode_or_raise(stream, size):
    try:
        result = decompress(_SpecEncoder._TABLE + stream, size)
    except CompressedDataError:
        return
    assert len(result) == size
