"""Streaming reader for SQL Server compressed backup files (the ``MSSQLBAK`` container).

``BACKUP ... WITH COMPRESSION`` writes the same Microsoft Tape Format (MTF) stream as an
uncompressed backup, but wrapped in a container that Microsoft does not document. This module turns
such a file back into the MTF stream (starting with the ``TAPE`` block), so the code that reads
uncompressed backups can read compressed ones too. The framing below was worked out on the two
SQL Server 2014 files in ``/work/shared/sqlserver-backups/compressed/``; see COMPRESSED_FORMAT.md
next to this module for the evidence and what is still unknown.

Layout (all integers little-endian)::

    0x000  "MSSQLBAK", u32 2, u32 3, rest of a 480-byte file header (not needed here)
    0x1E0  records, back to back:
      0x21 frame    28-byte header: u8 0x21, u8 output size / 512, u16 payload size, 24 bytes
                    not needed here (a checksum-like u32 at +24 among them), then the payload:
                    one [MS-XCA] LZ77+Huffman stream of (output size) bytes
      0x24 padding  u8 0x24, u8 0, u16 n; 24 + n bytes in all, up to a 512-byte boundary
      0x2C index    u8 0x2C, ...; up to the next 512-byte boundary, whose last 16 bytes repeat the
                    record's bytes 24..40 (an index of where the end of a backup set is)
      plain block   at a 512-byte boundary, 512 bytes stored as they are: an MTF block whose
                    4-letter type (always SFMB, the soft filemark, in the files seen) starts it

The MTF stream is the frames' outputs and the plain blocks in file order. The file ends after a
plain block on a 512-byte boundary; ending anywhere else means it was truncated.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from biztalk_dr.backup_files.xpress_huffman import CompressedDataError, decompress

__all__ = [
    "FILE_HEADER_SIZE",
    "FRAME",
    "FRAME_HEADER_SIZE",
    "MAGIC",
    "MIN_PAYLOAD",
    "BufferReader",
    "CompressedDataError",
    "Record",
    "check_file_header",
    "read_record",
    "is_compressed_backup",
    "decode_frame",
    "iter_mtf_chunks",
    "iter_records",
]

MAGIC = b"MSSQLBAK"
FILE_HEADER_SIZE = 0x1E0
"""Bytes before the first record."""

_SECTOR = 512
_FRAME = 0x21
_PADDING = 0x24
_INDEX = 0x2C
_FRAME_HEADER_SIZE = 28
_PADDING_FIXED_SIZE = 24
_INDEX_SIGNATURE = slice(24, 40)
_INDEX_MAX_SECTORS = 64
MIN_PAYLOAD = 256 + 4  # one Huffman table and the first two 16-bit words of bit stream
FRAME = _FRAME
FRAME_HEADER_SIZE = _FRAME_HEADER_SIZE


@dataclass(slots=True)  # one per frame, thousands per file: a plain slotted class builds fastest
class Record:
    """One record of the container: where it is, what it is, and the MTF bytes it holds.

    ``kind`` is ``"frame"`` (compressed; ``data`` is its output, or empty with the compressed
    ``payload`` kept when read with ``decode=False``), ``"plain"`` (a stored MTF block),
    ``"padding"`` or ``"index"`` (no MTF bytes). ``length`` is its size in the file and
    ``output_size`` the number of MTF bytes it stands for.
    """

    kind: str
    offset: int
    length: int
    data: bytes = b""
    output_size: int = 0
    payload: bytes | memoryview = b""  # with decode=False: the compressed bytes, decoded on demand


def is_compressed_backup(first_bytes: bytes) -> bool:
    """Whether a file starting with ``first_bytes`` is a compressed backup (needs 8 bytes)."""
    return bytes(first_bytes[:len(MAGIC)]) == MAGIC


def iter_mtf_chunks(fileobj: BinaryIO) -> Iterator[bytes]:
    """The decompressed MTF stream of a compressed backup, in order, one frame or block at a time.

    Reads ``fileobj`` (binary, positioned at the file's start; need not be seekable) a record at
    a time, so memory stays below ~200 KiB whatever the file size. Raises
    :class:`CompressedDataError` with the file offset on anything truncated or corrupt.
    """
    for record in iter_records(fileobj):
        if record.data:
            yield record.data


def iter_records(fileobj: BinaryIO, *, decode: bool = True) -> Iterator[Record]:
    """Every record of a compressed backup in file order, frames decompressed unless ``decode`` is
    false: then :func:`decode_frame` decodes only the frames a reader needs, and skipping the rest
    costs no decoding at all."""
    reader = _Reader(fileobj)
    check_file_header(reader.read_exact(FILE_HEADER_SIZE, "the file header"))
    after_plain = False
    while True:
        record = read_record(reader, decode=decode, after_plain=after_plain)
        if record is None:
            return
        after_plain = record.kind == "plain"
        yield record


def check_file_header(header: bytes) -> None:
    """CompressedDataError unless ``header`` (the file's first 480 bytes) starts a compressed backup."""
    if not is_compressed_backup(header):
        raise CompressedDataError(
            f"not a compressed SQL Server backup: expected {MAGIC!r} at offset 0, found {bytes(header[:8])!r}")


def read_record(reader: _Reader | BufferReader, *, decode: bool, after_plain: bool) -> Record | None:
    """The record at the reader's position; None at the file's clean end (right after a plain block on a
    512-byte boundary), CompressedDataError naming the offset on anything truncated or malformed."""
    offset = reader.offset
    head = reader.read_up_to(4)
    if not head:
        if offset % _SECTOR == 0 and after_plain:
            return None
        raise CompressedDataError(
            f"file truncated: it ends at offset {offset}, which is not the end of a plain MTF block "
            "on a 512-byte boundary")
    if len(head) < 4:
        raise CompressedDataError(f"file truncated: {len(head)} byte(s) of a record at offset {offset}")
    kind = head[0]
    if kind == _FRAME:
        return _read_frame(reader, offset, head, decode)
    if kind == _PADDING:
        return _read_padding(reader, offset, head)
    if kind == _INDEX:
        return _read_index(reader, offset, head)
    if offset % _SECTOR == 0 and _looks_like_mtf_type(head):
        body = reader.read_exact(_SECTOR - 4, f"the plain MTF block {head.decode()} at offset {offset}")
        return Record("plain", offset, _SECTOR, head + body, _SECTOR)
    raise CompressedDataError(
        f"unknown record at offset {offset}: starts with {head.hex()} (expected 0x21 frame, "
        "0x24 padding, 0x2c index or a 512-byte aligned plain MTF block)")


def decode_frame(record: Record, prefix: int | None = None) -> bytes:
    """The MTF bytes of a frame read with ``decode=False`` (or of any record: its ``data``); with
    ``prefix``, only its first ``prefix`` bytes or a few more."""
    if record.data or not record.payload:
        return record.data
    try:
        return decompress(record.payload, record.output_size, prefix=prefix)
    except CompressedDataError as exc:
        raise CompressedDataError(
            f"corrupt frame at offset {record.offset} ({len(record.payload)} compressed byte(s)): {exc}") from None


def _read_frame(reader: _Reader, offset: int, head: bytes, decode: bool) -> Record:
    """A compressed frame: 28-byte header, then one LZ77+Huffman stream."""
    reader.read_exact(_FRAME_HEADER_SIZE - 4, f"the frame header at offset {offset}")
    units, payload_size = head[1], struct.unpack_from("<H", head, 2)[0]
    if units == 0 or payload_size < MIN_PAYLOAD:
        raise CompressedDataError(
            f"corrupt frame header at offset {offset}: output {units} x 512 bytes from "
            f"{payload_size} compressed byte(s)")
    length = _FRAME_HEADER_SIZE + payload_size
    if not decode:
        payload = reader.view(payload_size, f"the compressed frame at offset {offset}")
        return Record("frame", offset, length, output_size=units * _SECTOR, payload=payload)
    payload = reader.read_exact(payload_size, f"the compressed frame at offset {offset}")
    record = Record("frame", offset, length, output_size=units * _SECTOR, payload=payload)
    return Record("frame", offset, length, decode_frame(record), record.output_size)


def _read_padding(reader: _Reader, offset: int, head: bytes) -> Record:
    """Filler after the last frame before a plain block, up to a 512-byte boundary."""
    length = _PADDING_FIXED_SIZE + struct.unpack_from("<H", head, 2)[0]
    if (offset + length) % _SECTOR:
        raise CompressedDataError(
            f"corrupt padding record at offset {offset}: its {length} bytes end at offset "
            f"{offset + length}, not on a 512-byte boundary")
    reader.read_exact(length - 4, f"the padding record at offset {offset}")
    return Record("padding", offset, length)


def _read_index(reader: _Reader, offset: int, head: bytes) -> Record:
    """The index record closing a backup set's frames; it ends where its signature repeats."""
    body = head + reader.read_exact((-(offset + 4)) % _SECTOR, f"the index record at offset {offset}")
    for _ in range(_INDEX_MAX_SECTORS):
        if len(body) >= _INDEX_SIGNATURE.stop + 16 and body[-16:] == body[_INDEX_SIGNATURE]:
            return Record("index", offset, len(body))
        body += reader.read_exact(_SECTOR, f"the index record at offset {offset}")
    raise CompressedDataError(
        f"corrupt index record at offset {offset}: no closing copy of its signature within "
        f"{_INDEX_MAX_SECTORS} sectors")


def _looks_like_mtf_type(head: bytes) -> bool:
    """MTF descriptor block types are four upper-case ASCII letters or digits (TAPE, SFMB, ...)."""
    return all(0x41 <= b <= 0x5A or 0x30 <= b <= 0x39 for b in head)


class _Reads:
    """What both readers share: reads that must get every byte asked for, with the offset in the message."""

    offset: int

    def read_up_to(self, size: int) -> bytes:
        raise NotImplementedError

    def read_exact(self, size: int, what: str) -> bytes:
        """Exactly ``size`` bytes, or :class:`CompressedDataError` naming ``what`` was cut off."""
        start = self.offset
        data = self.read_up_to(size)
        if len(data) != size:
            raise CompressedDataError(
                f"file truncated at offset {self.offset}: {what} needs {size} byte(s) from offset {start}, "
                f"only {len(data)} left")
        return data

    def _short(self, what: str, size: int, available: int) -> CompressedDataError:
        return CompressedDataError(
            f"file truncated at offset {self.offset + available}: {what} needs {size} byte(s) from offset "
            f"{self.offset}, only {available} left")


class _Reader(_Reads):
    """Reads a binary file object forward through its own window of up to 64 KiB (record headers are
    a few bytes each, so one read call per record would dominate), tracking the file offset."""

    _WINDOW = 65535

    def __init__(self, fileobj: BinaryIO) -> None:
        self._file = fileobj
        self._buf = b""
        self._pos = 0
        self._eof = False
        self.offset = 0

    def _fill(self, size: int) -> None:
        """Make ``size`` bytes available from ``_pos`` if the file has them."""
        while len(self._buf) - self._pos < size and not self._eof:
            part = self._file.read(max(self._WINDOW, size))
            if not part:
                self._eof = True
                break
            self._buf = self._buf[self._pos:] + part
            self._pos = 0

    def read_up_to(self, size: int) -> bytes:
        """Up to ``size`` bytes: fewer only at the end of the file."""
        if len(self._buf) - self._pos < size:
            self._fill(size)
        data = self._buf[self._pos:self._pos + size]
        self._pos += len(data)
        self.offset += len(data)
        return data

    def view(self, size: int, what: str) -> memoryview:
        """The next ``size`` bytes (at most 64 KiB) without copying them, or :class:`CompressedDataError`
        if the file ends first."""
        if len(self._buf) - self._pos < size:
            self._fill(size)
        available = len(self._buf) - self._pos
        if available < size:
            raise self._short(what, size, available)
        view = memoryview(self._buf)[self._pos:self._pos + size]
        self._pos += size
        self.offset += size
        return view


class BufferReader(_Reads):
    """The :class:`_Reader` interface over a whole file in memory (bytes, or an ``mmap`` of it), at any
    offset, so a reader can parse the record that starts there. Reads are copies (no view of an ``mmap`` is
    left behind to keep it from closing); only the few records parsed this way are copied."""

    def __init__(self, buffer: bytes | mmap.mmap, offset: int = 0) -> None:
        self._buffer = buffer
        self._size = len(buffer)
        self.offset = offset

    def read_up_to(self, size: int) -> bytes:
        data = self._buffer[self.offset:self.offset + size]
        self.offset += len(data)
        return data

    def view(self, size: int, what: str) -> bytes:
        available = self._size - self.offset
        if available < size:
            raise self._short(what, size, available)
        return self.read_exact(size, what)
