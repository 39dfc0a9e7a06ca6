"""Compressed backups as the stand-in writes and reads them: SQL Server's ``MSSQLBAK`` container around
the MTF stream, in frames of the [MS-XCA] LZ77+Huffman format.

The stand-in's encoder uses the format's literals only (a canonical Huffman code per frame, no LZ77
matches): valid input for any [MS-XCA] decoder, just a weaker compression than SQL Server's. Soft
filemarks (SFMB) are stored as plain 512-byte blocks at 512-byte boundaries, after a padding record,
as in real compressed backups (see biztalk_dr/backup_files/COMPRESSED_FORMAT.md). The decoder here is
the stand-in's own, for its own files: it accepts literal-only frames and reports anything else as
damage, independent of the product's decoder so that each checks the other.
"""

from __future__ import annotations

import heapq
import struct
from collections import Counter

__all__ = ["MAGIC", "ContainerWriter", "DamagedMedia", "read_container"]

MAGIC = b"MSSQLBAK"
_HEADER_SIZE = 0x1E0
_SECTOR = 512
_FRAME_OUTPUT = 32 * 1024  # literal-only worst case (15 bits a byte) stays within the u16 payload size
_MAX_BITS = 15
_END_OF_DATA = 256


class DamagedMedia(ValueError):
    """The container or a frame cannot be decoded."""


class ContainerWriter:
    """Builds a compressed media family: feed MTF pieces in order, SFMB blocks stay plain."""

    def __init__(self) -> None:
        self.data = bytearray(MAGIC + struct.pack("<II", 2, 3))
        self.data += bytes(_HEADER_SIZE - len(self.data))
        self._pending = bytearray()

    def add(self, piece: bytes) -> None:
        if piece[:4] == b"SFMB" and len(piece) == _SECTOR:
            self._flush()
            gap = -len(self.data) % _SECTOR
            if gap:
                gap += _SECTOR if gap < 24 else 0
                self.data += bytes([0x24, 0]) + struct.pack("<H", gap - 24) + bytes(gap - 4)
            self.data += piece
        else:
            self._pending += piece

    def finish(self) -> bytes:
        self._flush()
        return bytes(self.data)

    def _flush(self) -> None:
        for start in range(0, len(self._pending), _FRAME_OUTPUT):
            chunk = bytes(self._pending[start:start + _FRAME_OUTPUT])
            payload = _encode(chunk)
            self.data += bytes([0x21, len(chunk) // _SECTOR]) + struct.pack("<H", len(payload)) + bytes(24) + payload
        self._pending.clear()


def read_container(data: bytes) -> bytes:
    """The MTF stream of a container the stand-in wrote; DamagedMedia on anything else."""
    if not data.startswith(MAGIC) or len(data) < _HEADER_SIZE:
        raise DamagedMedia("not a compressed backup container")
    out = bytearray()
    pos = _HEADER_SIZE
    while pos < len(data):
        kind = data[pos]
        if kind == 0x21:
            units, size = data[pos + 1], struct.unpack_from("<H", data, pos + 2)[0]
            payload = data[pos + 28:pos + 28 + size]
            if len(payload) != size:
                raise DamagedMedia(f"frame at {pos} cut off")
            out += _decode(payload, units * _SECTOR)
            pos += 28 + size
        elif kind == 0x24:
            pos += 24 + struct.unpack_from("<H", data, pos + 2)[0]
        elif pos % _SECTOR == 0 and data[pos:pos + 4] == b"SFMB" and pos + _SECTOR <= len(data):
            out += data[pos:pos + _SECTOR]
            pos += _SECTOR
        else:
            raise DamagedMedia(f"unknown record at {pos}")
    return bytes(out)


def _code_lengths(freq: dict[int, int]) -> dict[int, int]:
    """Huffman code lengths of at most 15 bits (frequencies flattened until the tree is shallow enough)."""
    while True:
        heap = [(f, i, (s,)) for i, (s, f) in enumerate(sorted(freq.items()))]
        heapq.heapify(heap)
        depth = dict.fromkeys(freq, 0)
        tie = len(heap)
        while len(heap) > 1:
            f1, _, a = heapq.heappop(heap)
            f2, _, b = heapq.heappop(heap)
            for s in a + b:
                depth[s] += 1
            heapq.heappush(heap, (f1 + f2, tie, a + b))
            tie += 1
        if max(depth.values()) <= _MAX_BITS:
            return depth
        freq = {s: (f >> 1) + 1 for s, f in freq.items()}


def _canonical(lengths: dict[int, int]) -> dict[int, tuple[int, int]]:
    """symbol -> (code, length), codes assigned by length then symbol as [MS-XCA] 2.2.4 orders them."""
    codes, position = {}, 0
    for symbol in sorted(lengths, key=lambda s: (lengths[s], s)):
        length = lengths[symbol]
        codes[symbol] = (position >> (_MAX_BITS - length), length)
        position += 1 << (_MAX_BITS - length)
    return codes


def _encode(chunk: bytes) -> bytes:
    freq: dict[int, int] = dict(Counter(chunk))
    freq[_END_OF_DATA] = 1
    lengths = _code_lengths(freq)
    codes = _canonical(lengths)
    table = bytearray(256)
    for symbol, length in lengths.items():
        table[symbol // 2] |= length << (4 * (symbol & 1))
    out = bytearray(table)
    acc = bits = 0
    for symbol in (*chunk, _END_OF_DATA):
        code, length = codes[symbol]
        acc = (acc << length) | code
        bits += length
        while bits >= 16:
            bits -= 16
            out += ((acc >> bits) & 0xFFFF).to_bytes(2, "little")
        acc &= (1 << bits) - 1
    if bits:
        out += ((acc << (16 - bits)) & 0xFFFF).to_bytes(2, "little")
    return bytes(out + bytes(4))  # the decoder's register reads up to two words ahead


def _decode(payload: bytes, size: int) -> bytes:
    if len(payload) < 260:
        raise DamagedMedia("frame too short")
    lengths = {}
    for i, byte in enumerate(payload[:256]):
        for symbol, length in ((2 * i, byte & 15), (2 * i + 1, byte >> 4)):
            if length:
                lengths[symbol] = length
    if sum(1 << (_MAX_BITS - n) for n in lengths.values()) != 1 << _MAX_BITS:
        raise DamagedMedia("bad Huffman table")
    lookup = [0] * (1 << _MAX_BITS)  # every 15-bit window -> (symbol, length) of the code it starts with
    for symbol, (code, length) in _canonical(lengths).items():
        first = code << (_MAX_BITS - length)
        lookup[first:first + (1 << (_MAX_BITS - length))] = [(symbol << 4) | length] * (1 << (_MAX_BITS - length))
    words = struct.unpack_from(f"<{(len(payload) - 256) // 2}H", payload, 256)
    out = bytearray()
    acc = bits = taken = 0
    while len(out) < size:
        while bits < _MAX_BITS:
            if taken == len(words):
                raise DamagedMedia("bit stream ends early")
            acc = (acc << 16) | words[taken]
            taken += 1
            bits += 16
        entry = lookup[(acc >> (bits - _MAX_BITS)) & 0x7FFF]
        if entry >> 4 >= 256:
            raise DamagedMedia("a match symbol: not a frame the stand-in wrote")
        out.append(entry >> 4)
        bits -= entry & 15
        acc &= (1 << bits) - 1
    return bytes(out)
