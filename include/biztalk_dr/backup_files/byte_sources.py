"""Forward-only byte sources over a backup's Microsoft Tape Format (MTF) stream.

The MTF walker reads a few hundred bytes of each descriptor block and skips the data streams, which
are nearly all of a backup. An uncompressed file skips by seeking; a compressed one skips whole
frames without decompressing them (each frame's output size is in its header), so reading a
backup's headers costs a few reads and at most a few frame decodes, whatever the file's size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO, Protocol

from biztalk_dr.backup_files.compressed_container import Record, decode_frame, iter_records

__all__ = ["ByteSource", "CompressedSource", "PlainSource", "TruncatedError"]


class TruncatedError(ValueError):
    """The stream ends before a read or skip that the format requires."""


class ByteSource(Protocol):
    offset: int
    """Position in the MTF stream (not in the compressed file)."""

    def read(self, size: int, what: str) -> bytes: ...

    def skip(self, size: int, what: str) -> None: ...

    def at_end(self) -> bool: ...


class PlainSource:
    """An uncompressed backup file: the file is the MTF stream."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self._file = fileobj
        self._size = os.fstat(fileobj.fileno()).st_size
        self.offset = fileobj.tell()

    def read(self, size: int, what: str) -> bytes:
        data = self._file.read(size)
        if len(data) != size:
            raise TruncatedError(_cut_off(what, self.offset, size, len(data)))
        self.offset += size
        return data

    def skip(self, size: int, what: str) -> None:
        if self.offset + size > self._size:
            raise TruncatedError(_cut_off(what, self.offset, size, self._size - self.offset))
        self._file.seek(size, os.SEEK_CUR)
        self.offset += size

    def at_end(self) -> bool:
        return self.offset >= self._size


class CompressedSource:
    """The MTF stream inside an ``MSSQLBAK`` container, decoding only the frames (and of those, only
    the leading bytes) that are read."""

    _PREFIX = 2048  # a block header and its stream headers; more is decoded only when asked for

    def __init__(self, fileobj: BinaryIO) -> None:
        self._records: Iterator[Record] = iter_records(fileobj, decode=False)
        self._record: Record | None = None  # the frame or block the stream is in, None past it
        self._chunk = b""                   # its bytes decoded so far (a prefix, or all of them)
        self._pos = 0                       # the stream's position within it
        self._pending: Record | None = None
        self.offset = 0

    def read(self, size: int, what: str) -> bytes:
        parts, left = [], size
        while left:
            if self._record is None or self._pos >= self._record.output_size:
                self._enter(self._next_record(what, size - left, size))
            if self._pos + left > len(self._chunk) and len(self._chunk) < self._record.output_size:
                self._chunk = decode_frame(self._record)  # the prefix was not enough: all of it, once
            take = self._chunk[self._pos:self._pos + left]
            self._pos += len(take)
            left -= len(take)
            parts.append(take)
        self.offset += size
        return b"".join(parts)

    def skip(self, size: int, what: str) -> None:
        left = size
        while left:
            if self._record is not None and self._pos < self._record.output_size:
                step = min(self._record.output_size - self._pos, left)
                self._pos += step
                left -= step
                continue
            self._record, self._chunk, self._pos = self._next_record(what, size - left, size), b"", 0
        self.offset += size

    def at_end(self) -> bool:
        if (self._record is not None and self._pos < self._record.output_size) or self._pending is not None:
            return False
        self._pending = next(self._records, None)
        return self._pending is None

    def _enter(self, record: Record) -> None:
        self._record, self._pos = record, 0
        small = record.output_size <= 4 * self._PREFIX  # decoding twice would cost more than the rest
        self._chunk = decode_frame(record, None if small else self._PREFIX)

    def _next_record(self, what: str, done: int, size: int) -> Record:
        """The next record holding MTF bytes; TruncatedError at the container's clean end."""
        while True:
            record, self._pending = self._pending, None
            if record is None:
                record = next(self._records, None)
            if record is None:
                raise TruncatedError(_cut_off(what, self.offset, size, done))
            if record.output_size:
                return record


def _cut_off(what: str, offset: int, wanted: int, got: int) -> str:
    return (f"file truncated: {what} needs {wanted} byte(s) from MTF offset {offset}, "
            f"only {max(got, 0)} left")
