"""Walk the descriptor blocks of a Microsoft Tape Format (MTF 1.00a) stream, as SQL Server writes it.

Every descriptor block (``TAPE``, ``SSET``, ``VOLB``, ``MSCI``, ``MSDA``, ``MSLS``, ``ESET``, ...)
starts with the 52-byte MTF common header; its streams follow at the header's "offset to first
event", each with a 22-byte stream header and 4-byte aligned, the last one (``SPAD``) padding to
where the next block starts. ``SFMB`` (soft filemark) blocks are 512 bytes with no streams. Only the
streams a caller asks for are read; the others (the database pages and log records) are skipped.
See MTF_FORMAT.md for the layout as checked on real backups.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from biztalk_dr.backup_files.byte_sources import ByteSource, describe

__all__ = ["COMMON_HEADER_SIZE", "Block", "MtfFormatError", "iter_blocks", "looks_like_block_type"]

COMMON_HEADER_SIZE = 52
STREAM_HEADER_SIZE = 22
SOFT_FILEMARK_SIZE = 512
_MAX_FIXED_PART = 64 * 1024  # the largest descriptor block header SQL Server writes is ~200 bytes
_MAX_WANTED_STREAM = 1024 * 1024  # metadata streams are a few KiB
_MAX_STREAMS_PER_BLOCK = 4096


class MtfFormatError(ValueError):
    """The bytes are not (or no longer) a well-formed MTF stream; the message says where and why."""


@dataclass(frozen=True)
class Block:
    """One descriptor block: its type, MTF offset, fixed part (common header included) and the
    streams that were asked for, by stream type."""

    type: bytes
    offset: int
    fixed: bytes
    streams: dict[bytes, bytes] = field(default_factory=dict)


def looks_like_block_type(four: bytes) -> bool:
    """MTF block and stream types are four upper-case ASCII letters or digits."""
    return len(four) == 4 and four.isalnum() and four.upper() == four


def iter_blocks(source: ByteSource, wanted: frozenset[bytes]) -> Iterator[Block]:
    """Every descriptor block of ``source`` to its end, with the ``wanted`` streams read."""
    while not source.at_end():
        offset = source.offset
        head = source.read(COMMON_HEADER_SIZE, "an MTF block header")
        kind = head[:4]
        if not looks_like_block_type(kind):
            raise MtfFormatError(f"no MTF descriptor block at offset {offset}: found bytes {kind.hex()} "
                                 "where a block type (TAPE, SSET, ESET, ...) must be")
        if kind == b"SFMB":
            source.skip(SOFT_FILEMARK_SIZE - COMMON_HEADER_SIZE, "the SFMB block")
            yield Block(kind, offset, head)
            continue
        first_stream = struct.unpack_from("<H", head, 8)[0]
        if not COMMON_HEADER_SIZE <= first_stream <= _MAX_FIXED_PART:
            raise MtfFormatError(f"corrupt {kind.decode()} block at offset {offset}: its first stream is said to "
                                 f"start {first_stream} bytes in")
        fixed = head + source.read(first_stream - COMMON_HEADER_SIZE, ("the {} block header", kind))
        yield Block(kind, offset, fixed, _read_streams(source, kind, offset, wanted))


def _read_streams(source: ByteSource, kind: bytes, block_offset: int, wanted: frozenset[bytes]) -> dict[bytes, bytes]:
    """The block's streams. What a read is for is passed as a template and its values, formatted only into an
    error message: a backup's headers are hundreds of reads."""
    streams: dict[bytes, bytes] = {}
    what = ("the {} block at offset {}", kind, block_offset)
    for _ in range(_MAX_STREAMS_PER_BLOCK):
        header = source.read(STREAM_HEADER_SIZE, ("a stream header of the {} block at offset {}", kind, block_offset))
        stream_type, length = header[:4], struct.unpack_from("<Q", header, 8)[0]
        if not looks_like_block_type(stream_type):
            raise MtfFormatError(f"corrupt stream header at offset {source.offset - STREAM_HEADER_SIZE} in {describe(what)}: "
                                 f"bytes {stream_type.hex()} where a stream type must be")
        if stream_type in wanted:
            if length > _MAX_WANTED_STREAM:
                raise MtfFormatError(f"corrupt {stream_type.decode()} stream in {describe(what)}: {length} bytes long, "
                                     f"more than the {_MAX_WANTED_STREAM} a metadata stream can be")
            streams[stream_type] = source.read(length, ("the {} stream of {}", stream_type, what))
        else:
            source.skip(length, ("the {} stream of {}", stream_type, what))
        if stream_type == b"SPAD":
            return streams
        if source.offset % 4:
            source.skip(-source.offset % 4, ("the stream alignment of {}", what))
    raise MtfFormatError(f"corrupt {describe(what)}: more than {_MAX_STREAMS_PER_BLOCK} streams without the closing "
                         "SPAD")
