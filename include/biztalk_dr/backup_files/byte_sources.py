"""Forward-only byte sources over a backup's Microsoft Tape Format (MTF) stream.

The MTF walker reads a few hundred bytes of each descriptor block and skips the data streams, which
are nearly all of a backup. An uncompressed file skips by seeking; a compressed one skips whole
frames without decompressing them (each frame's output size is in its header), so reading a
backup's headers costs a few reads and at most a few frame decodes, whatever the file's size.
"""

from __future__ import annotations

import mmap
import os
from typing import BinaryIO, Protocol

from biztalk_dr.backup_files.compressed_container import (
    FILE_HEADER_SIZE,
    FRAME,
    FRAME_HEADER_SIZE,
    MIN_PAYLOAD,
    BufferReader,
    CompressedDataError,
    Record,
    check_file_header,
    read_record,
)
from biztalk_dr.backup_files.xpress_huffman import Decoder

__all__ = ["ByteSource", "CompressedSource", "PlainSource", "TruncatedError", "What", "describe"]

What = str | tuple
"""What a read is for, for the message if it fails: text, or a template and its values (bytes are decoded),
formatted only then."""


def describe(what: What) -> str:
    if isinstance(what, str):
        return what
    template, *values = what
    return template.format(*(describe(v) if isinstance(v, tuple) else v.decode("ascii", "replace")
                             if isinstance(v, bytes) else v for v in values))


class TruncatedError(ValueError):
    """The stream ends before a read or skip that the format requires."""


class ByteSource(Protocol):
    offset: int
    """Position in the MTF stream (not in the compressed file)."""

    def read(self, size: int, what: What) -> bytes: ...

    def skip(self, size: int, what: What) -> None: ...

    def at_end(self) -> bool: ...


class PlainSource:
    """An uncompressed backup file: the file is the MTF stream."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self._file = fileobj
        self._size = os.fstat(fileobj.fileno()).st_size
        self.offset = fileobj.tell()

    def read(self, size: int, what: What) -> bytes:
        data = self._file.read(size)
        if len(data) != size:
            raise TruncatedError(_cut_off(what, self.offset, size, len(data)))
        self.offset += size
        return data

    def skip(self, size: int, what: What) -> None:
        if self.offset + size > self._size:
            raise TruncatedError(_cut_off(what, self.offset, size, self._size - self.offset))
        self._file.seek(size, os.SEEK_CUR)
        self.offset += size

    def at_end(self) -> bool:
        return self.offset >= self._size


class CompressedSource:
    """The MTF stream inside an ``MSSQLBAK`` container held in memory (bytes, or an ``mmap`` of the file),
    decoding only the frames (and of those, only the leading bytes) that are read.

    Skipping walks the frames' 28-byte headers with plain arithmetic (a frame's output size is in its header),
    creating nothing: a backup's data is thousands of frames, its headers sit in a few. Any record that is not
    a well-formed frame is parsed by :func:`read_record`, which names what is wrong and where."""

    _AHEAD = 256  # decoded past what a read needs (a stream header and the next block's fixed part)

    def __init__(self, buffer: bytes | mmap.mmap) -> None:
        self._buf = buffer
        self._size = len(buffer)
        check_file_header(BufferReader(buffer).read_exact(FILE_HEADER_SIZE, "the file header"))
        self._next = FILE_HEADER_SIZE     # file offset of the record after the current one
        self._after_plain = False          # the current record is a plain block (the file may end after it)
        self._out = 0                      # the current record's MTF bytes (0: none entered yet)
        self._pos = 0                      # the stream's position within them
        self._record: Record | None = None  # the current record when parsed (None: a frame)
        self._frame = (0, 0)               # the current frame's payload: (file offset, size)
        self._decoder: Decoder | None = None  # decoding it, as far as read
        self._chunk: bytes | bytearray = b""  # its bytes decoded so far (a prefix, or all of them)
        self.offset = 0

    def read(self, size: int, what: What) -> bytes:
        pos = self._pos
        if pos + size <= len(self._chunk):  # within what is decoded: most reads
            self._pos = pos + size
            self.offset += size
            return bytes(self._chunk[pos:pos + size])
        parts, left = [], size
        while left:
            if self._pos >= self._out:
                self._advance(what, size, size - left, 0)
            if self._pos + left > len(self._chunk) and len(self._chunk) < self._out:
                self._decode(self._pos + left + self._AHEAD)
            take = bytes(self._chunk[self._pos:self._pos + left])
            self._pos += len(take)
            left -= len(take)
            parts.append(take)
        self.offset += size
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def skip(self, size: int, what: What) -> None:
        if self._pos + size <= self._out:
            self._pos += size
            self.offset += size
            return
        here = min(self._out - self._pos, size)
        self._pos += here
        if size > here:
            self._advance(what, size, here, size - here)
        self.offset += size

    def at_end(self) -> bool:
        if self._pos < self._out or self._next < self._size:
            return False
        if not (self._after_plain and self._size % 512 == 0):  # raises: the file is cut
            read_record(BufferReader(self._buf, self._next), decode=False, after_plain=self._after_plain)
        return True

    def _advance(self, what: What, size: int, done: int, left: int) -> None:
        """Pass over ``left`` more MTF bytes after the current record and enter the record the stream is then
        in (with ``left`` 0: the next record holding MTF bytes). ``size`` and ``done`` (of it) are the caller's
        request, for the message if the file ends first."""
        buf, off, end, start = self._buf, self._next, self._size, left
        while True:
            if off + FRAME_HEADER_SIZE <= end and buf[off] == FRAME:  # the common case, without parsing
                units, payload = buf[off + 1], buf[off + 2] | (buf[off + 3] << 8)
                after = off + FRAME_HEADER_SIZE + payload
                if units and payload >= MIN_PAYLOAD and after <= end:
                    out = units << 9
                    if left < out:
                        self._out, self._pos, self._next, self._after_plain = out, left, after, False
                        self._record, self._frame, self._chunk = None, (off + FRAME_HEADER_SIZE, payload), b""
                        self._decoder = None
                        return
                    left -= out
                    off, self._after_plain = after, False
                    continue
            record = read_record(BufferReader(buf, off), decode=False, after_plain=self._after_plain)
            if record is None:
                self._next, self._out, self._pos = off, 0, 0
                raise TruncatedError(_cut_off(what, self.offset, size, done + start - left))
            off, self._after_plain = record.offset + record.length, record.kind == "plain"
            if record.output_size and left < record.output_size:
                self._out, self._pos, self._next, self._record = record.output_size, left, off, record
                self._chunk, self._decoder = record.data, None
                if record.kind == "frame":
                    self._record, self._frame = None, (record.offset + FRAME_HEADER_SIZE,
                                                       record.length - FRAME_HEADER_SIZE)
                return
            left -= record.output_size

    def _decode(self, upto: int) -> None:
        """Decode the current frame to at least ``upto`` bytes (or its end)."""
        if self._decoder is None:
            at, size = self._frame
            self._decoder = Decoder(self._buf[at:at + size], self._out)
            self._chunk = self._decoder.output
        try:
            self._decoder.extend(upto)
        except CompressedDataError as exc:
            at, size = self._frame
            raise CompressedDataError(f"corrupt frame at offset {at - FRAME_HEADER_SIZE} ({size} compressed "
                                      f"byte(s)): {exc}") from None


def _cut_off(what: What, offset: int, wanted: int, got: int) -> str:
    return (f"file truncated: {describe(what)} needs {wanted} byte(s) from MTF offset {offset}, "
            f"only {max(got, 0)} left")
