"""Decoder for Microsoft's LZ77+Huffman ("Xpress Huffman") format, in pure Python.

SQL Server writes compressed backups (``BACKUP ... WITH COMPRESSION``) as frames of this format, so
reading their metadata without a SQL Server needs a decoder. The format is public: [MS-XCA]
"Xpress Compression Algorithm", section 2.1 (format) and 2.2.4 (decompression), with the worked
examples of section 3.2. This module follows that text; no third-party code was copied.

The format in short: the output is made in blocks of 65,536 bytes. Each block starts with a
256-byte table of 512 four-bit code lengths (low nibble = even symbol) defining a canonical Huffman
code of at most 15 bits. Then comes a bit stream read as 16-bit little-endian words, most
significant bit first, kept in a register that always holds the next 16+ bits. Symbols 0-255 are
literal bytes; symbol 256+ is a match: low nibble = length - 3 (15 = longer length in extra *bytes*
taken from the input at the current word position: a byte, then 255 -> a u16, then 0 -> a u32),
high nibble = bit index of the offset's top bit, whose lower bits follow in the bit stream. The
next block's table starts right after the last 16-bit word the register has loaded.

Decoding is table driven (one lookup of the next 15 bits per symbol) and stops when
``output_size`` bytes are made; anything malformed raises :class:`CompressedDataError`.
"""

from __future__ import annotations

__all__ = ["BLOCK_SIZE", "CompressedDataError", "Decoder", "decompress"]

BLOCK_SIZE = 65536
"""Output bytes per block: each block has its own Huffman table."""

_TABLE_BYTES = 256
_SYMBOLS = 512
_MAX_BITS = 15
_TABLE_SIZE = 1 << _MAX_BITS
_PRIMARY_BITS = 10
_SUBTABLE_SIZE = 1 << (_MAX_BITS - _PRIMARY_BITS)


class CompressedDataError(ValueError):
    """Compressed data (or its container) is malformed, truncated or inconsistent."""


def _build_decoding_tables(lengths_bytes: bytes) -> tuple[list[int], list[list[int]]]:
    """The lookup tables ``(symbol << 4) | code length`` for one block, two-level as in zlib: a
    2**10-entry table for codes of up to 10 bits, and for each 10-bit prefix of longer codes a 32-entry
    subtable (its entry in the first table is ``~index``). A metadata frame is a few hundred symbols,
    so a flat 2**15-entry table would cost more to build than the decoding itself.

    Canonical order as in [MS-XCA] 2.2.4: by code length, then by symbol value. The code must be
    complete (exactly fill the 15-bit space), otherwise the data is not valid.
    """
    by_length: list[list[int]] = [[] for _ in range(_MAX_BITS + 1)]
    symbol = 0
    for byte in lengths_bytes:
        by_length[byte & 15].append(symbol)
        by_length[byte >> 4].append(symbol + 1)
        symbol += 2
    unused = len(by_length[0])
    filled = 0
    for length in range(1, _MAX_BITS + 1):
        filled += len(by_length[length]) << (_MAX_BITS - length)
    if filled != _TABLE_SIZE:
        used = _SYMBOLS - unused
        kind = "over-subscribed" if filled > _TABLE_SIZE else "incomplete"
        raise CompressedDataError(
            f"bad Huffman table: the code lengths of {used} symbol(s) make an {kind} code "
            f"({filled} of {_TABLE_SIZE} table entries)")
    primary: list[int] = []
    for length in range(1, _PRIMARY_BITS + 1):
        count = 1 << (_PRIMARY_BITS - length)
        for sym in by_length[length]:
            primary += [(sym << 4) | length] * count
    subtables: list[list[int]] = []
    sub: list[int] = []
    for length in range(_PRIMARY_BITS + 1, _MAX_BITS + 1):
        count = 1 << (_MAX_BITS - length)
        for sym in by_length[length]:
            if not sub:
                primary.append(~len(subtables))
                subtables.append(sub)
            sub += [(sym << 4) | length] * count
            if len(sub) == _SUBTABLE_SIZE:
                sub = []
    return primary, subtables


def decompress(data: bytes, output_size: int, *, prefix: int | None = None) -> bytes:
    """Decode LZ77+Huffman ``data`` into exactly ``output_size`` bytes, or, with ``prefix``, only
    into its first ``prefix`` bytes or a few more (a reader after a header needs no more).

    Input after the last needed symbol (the end-of-data symbol 256, padding) is ignored. Raises
    :class:`CompressedDataError` on a bad Huffman table, a match before the start or past the end
    of the output, or input that ends too soon.
    """
    decoder = Decoder(data, output_size)
    decoder.extend(output_size if prefix is None else prefix)
    return bytes(decoder.output)


class Decoder:
    """One LZ77+Huffman stream decoded as far as asked and no further: :meth:`extend` resumes where the last
    call stopped (a reader walking a frame's headers decodes each byte once, and never the frame's tail it does
    not need)."""

    def __init__(self, data: bytes, output_size: int) -> None:
        if output_size < 0:
            raise ValueError(f"output_size must not be negative, got {output_size}")
        self._data = bytes(data)
        self._size = output_size
        self.output = bytearray()  # the bytes decoded so far (grows; a match may run a little past a stop)
        self._block = 0            # input offset of the next block's table
        self._state: tuple | None = None  # (input pos, bit register, bit count, tables, block end) mid-block

    def extend(self, upto: int) -> None:
        """Decode until at least ``min(upto, output_size)`` bytes exist."""
        stop = min(upto, self._size)
        out = self.output
        try:
            while len(out) < stop:
                if self._state is None:
                    self._state = _start_block(self._data, self._block, len(out))
                self._state = _decode_block(self._data, out, self._size, stop, self._state)
                if self._state is not None and len(out) >= self._state[5]:
                    self._block, self._state = self._state[0], None
        except IndexError:
            # Reading a 16-bit word or a length byte past the end of ``data``: the hot loop leaves the
            # bounds check to Python instead of testing on every symbol.
            raise CompressedDataError(
                f"input exhausted: {len(self._data)} compressed byte(s) end after {len(out)} of {self._size} "
                "output byte(s)") from None


def _start_block(data: bytes, pos: int, olen: int) -> tuple:
    """The state at the start of the block whose table is at ``data[pos]``: its tables and bit register."""
    if len(data) - pos < _TABLE_BYTES + 4:
        raise CompressedDataError(
            f"input exhausted: a block needs a {_TABLE_BYTES}-byte Huffman table and 4 bytes of bit "
            f"stream at offset {pos}, only {max(len(data) - pos, 0)} byte(s) left")
    tables = _build_decoding_tables(data[pos:pos + _TABLE_BYTES])
    pos += _TABLE_BYTES
    acc = (data[pos] << 16) | (data[pos + 1] << 24) | data[pos + 2] | (data[pos + 3] << 8)
    return (pos + 4, acc, 32, tables[0], tables[1], olen + BLOCK_SIZE)


def _decode_block(data: bytes, out: bytearray, output_size: int, stop: int, state: tuple) -> tuple:
    """Decode symbols of the block in ``state`` into ``out`` until its end or ``stop`` (at most ``output_size``);
    return the state to resume from (the block is done when ``len(out)`` reached its end, the state's last item).

    The bit register is kept right-aligned: ``acc`` holds ``cnt`` unread bits in its low bits (plus stale
    bits above them, masked off on use), which is the [MS-XCA] 32-bit register with
    ``ExtraBitCount == cnt - 16``.
    """
    pos, acc, cnt, table, subtables, block_end = state
    olen = len(out)
    limit = min(block_end, stop)
    append = out.append
    while olen < limit:
        entry = table[(acc >> (cnt - 10)) & 0x3FF]
        if entry < 0:
            entry = subtables[~entry][(acc >> (cnt - 15)) & 0x1F]
        cnt -= entry & 15
        if cnt < 16:
            acc = ((acc & 0xFFFF) << 16) | data[pos] | (data[pos + 1] << 8)
            pos += 2
            cnt += 16
        symbol = entry >> 4
        if symbol < 256:
            append(symbol)
            olen += 1
            continue
        length = symbol & 15
        offset_bits = (symbol >> 4) & 15
        if length == 15:
            length = data[pos]
            pos += 1
            if length == 255:
                length = data[pos] | (data[pos + 1] << 8)
                pos += 2
                if length == 0:
                    if pos + 4 > len(data):
                        raise IndexError
                    length = int.from_bytes(data[pos:pos + 4], "little")
                    pos += 4
                if length < 15:
                    raise CompressedDataError(
                        f"bad match length {length} in the extended length bytes before input offset {pos}")
                length -= 15
            length += 15
        length += 3
        if offset_bits:
            offset = ((acc >> (cnt - offset_bits)) & ((1 << offset_bits) - 1)) | (1 << offset_bits)
            cnt -= offset_bits
            if cnt < 16:
                acc = ((acc & 0xFFFF) << 16) | data[pos] | (data[pos + 1] << 8)
                pos += 2
                cnt += 16
        else:
            offset = 1
        start = olen - offset
        if start < 0:
            raise CompressedDataError(
                f"match offset {offset} points before the start of the output (at output byte {olen})")
        end = olen + length
        if end > output_size:
            raise CompressedDataError(
                f"match of {length} byte(s) at output byte {olen} runs past the output size {output_size}")
        if offset >= length:
            out += out[start:start + length]
        else:
            pattern = out[start:]
            repeats, rest = divmod(length, offset)
            out += pattern * repeats
            out += pattern[:rest]
        olen = end
    return (pos, acc, cnt, table, subtables, block_end)
