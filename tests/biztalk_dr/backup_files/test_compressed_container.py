"""Reading the MSSQLBAK container of real SQL Server 2014 compressed backups back into MTF."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biztalk_dr.backup_files.compressed_container import (
    FILE_HEADER_SIZE,
    CompressedDataError,
    Record,
    is_compressed_backup,
    iter_mtf_chunks,
    iter_records,
)

COMPRESSED = Path(__file__).resolve().parents[4] / "shared" / "sqlserver-backups" / "compressed"
ONE_SET = COMPRESSED / "SharePoint_Config_one_set.bak"
TWO_SETS = COMPRESSED / "SharePoint_Config_two_sets.bak"

pytestmark = pytest.mark.skipif(not ONE_SET.exists(), reason="real compressed backups not available")

_MTF_TYPES = {b"TAPE", b"SFMB", b"SSET", b"VOLB", b"DIRB", b"FILE", b"MSCI", b"MSDA", b"MQDA", b"MSTL",
              b"MSLS", b"SPAD", b"ESET", b"TSMP", b"EOTM"}


class _PipeOnly(io.RawIOBase):
    """A non-seekable stream that records the largest read asked of it."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.largest_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        assert size is not None and size >= 0, "the reader must never read the whole file"
        self.largest_read = max(self.largest_read, size)
        return self._data.read(size)


@pytest.fixture(scope="module")
def records() -> dict[str, list[Record]]:
    """Both real files, read once for the module (decoding them is the slow part)."""
    found = {}
    for path in (ONE_SET, TWO_SETS):
        with path.open("rb") as fileobj:
            found[path.name] = list(iter_records(fileobj))
    return found


def _stream(records: list[Record]) -> bytes:
    return b"".join(r.data for r in records)


def _mtf_blocks(stream: bytes) -> list[tuple[int, bytes]]:
    """(offset, type) of every MTF descriptor block at a 512-byte boundary."""
    return [(i, stream[i:i + 4]) for i in range(0, len(stream), 512) if stream[i:i + 4] in _MTF_TYPES]


def _prefix() -> bytes:
    """The first 0x600 bytes of the real file: header, TAPE frame, padding, plain SFMB. Complete."""
    return ONE_SET.read_bytes()[:0x600]


def test_magic_is_recognised():
    assert is_compressed_backup(ONE_SET.read_bytes()[:8])
    assert is_compressed_backup(b"MSSQLBAK\x02\x00\x00\x00")
    assert not is_compressed_backup(b"TAPE\x00\x00\x03\x00")
    assert not is_compressed_backup(b"MSSQL")


def test_one_set_decompresses_to_an_mtf_stream(records):
    recs = records[ONE_SET.name]
    stream = _stream(recs)
    assert stream[:4] == b"TAPE"
    assert len(stream) % 512 == 0
    blocks = _mtf_blocks(stream)
    assert [t for _, t in blocks[:6]] == [b"TAPE", b"SFMB", b"SSET", b"VOLB", b"MSCI", b"MSDA"]
    assert [t for _, t in blocks[-5:]] == [b"SFMB", b"ESET", b"TSMP", b"ESET", b"SFMB"]
    assert blocks[:3] == [(0, b"TAPE"), (0x400, b"SFMB"), (0x600, b"SSET")]  # as in uncompressed files
    assert "SharePoint_Config".encode("utf-16-le") in stream[0x600:0xA00]


def test_two_sets_hold_two_backup_sets(records):
    stream = _stream(records[TWO_SETS.name])
    types = [t for _, t in _mtf_blocks(stream)]
    assert stream[:4] == b"TAPE"
    assert types.count(b"SSET") == 2 and types.count(b"MSCI") == 2 and types.count(b"ESET") == 4
    assert types[-1] == b"SFMB"


def test_container_layout_of_the_real_files(records):
    one = records[ONE_SET.name]
    assert one[0].offset == FILE_HEADER_SIZE and one[0].kind == "frame" and one[0].data[:4] == b"TAPE"
    kinds = [r.kind for r in one]
    assert {k: kinds.count(k) for k in set(kinds)} == {"frame": 230, "plain": 3, "padding": 2, "index": 1}
    for path in (ONE_SET, TWO_SETS):
        recs = records[path.name]
        for before, after in zip(recs, recs[1:], strict=False):
            assert before.offset + before.length == after.offset      # back to back, no gaps
        assert recs[-1].kind == "plain" and recs[-1].offset + recs[-1].length == path.stat().st_size
        for r in recs:
            if r.kind == "plain":
                assert r.offset % 512 == 0 and r.data[:4] == b"SFMB"
            if r.kind in ("padding", "index"):
                assert (r.offset + r.length) % 512 == 0
            if r.kind == "frame":
                assert 0 < len(r.data) <= 65536 and len(r.data) % 512 == 0


def test_streaming_reads_a_frame_at_a_time_from_a_non_seekable_stream():
    pipe = _PipeOnly(_prefix())
    chunks = list(iter_mtf_chunks(pipe))
    assert [len(c) for c in chunks] == [1024, 512]
    assert chunks[0][:4] == b"TAPE" and chunks[1][:4] == b"SFMB"
    assert pipe.largest_read <= 65535


@pytest.mark.parametrize("cut, where", [
    (100, "file header"),
    (FILE_HEADER_SIZE + 2, "record at offset 480"),
    (FILE_HEADER_SIZE + 10, "frame header at offset 480"),
    (FILE_HEADER_SIZE + 200, "compressed frame at offset 480"),
    (0x35E, "ends at offset 862"),                 # after the frame, before its padding
    (0x380, "padding record at offset 862"),
    (0x400, "ends at offset 1024"),                # on a boundary, but not after a plain block
    (0x500, "plain MTF block SFMB at offset 1024"),
])
def test_truncated_file_raises_with_the_offset(cut, where):
    with pytest.raises(CompressedDataError, match=where):
        list(iter_mtf_chunks(io.BytesIO(_prefix()[:cut])))


def test_truncated_real_file_raises():
    with ONE_SET.open("rb") as fileobj:
        head = fileobj.read(0x9F2 + 1000)                # inside the third frame
    with pytest.raises(CompressedDataError, match=r"compressed frame at offset 2546"):
        list(iter_mtf_chunks(io.BytesIO(head)))


def test_corrupt_huffman_table_raises_with_the_frame_offset():
    data = bytearray(_prefix())
    data[FILE_HEADER_SIZE + 28:FILE_HEADER_SIZE + 28 + 256] = bytes(256)
    with pytest.raises(CompressedDataError, match=r"corrupt frame at offset 480 .*bad Huffman table"):
        list(iter_mtf_chunks(io.BytesIO(bytes(data))))


def test_corrupt_bit_stream_raises_and_never_another_error():
    data = bytearray(_prefix())
    for i in range(FILE_HEADER_SIZE + 28 + 256, 0x35E):
        data[i] ^= 0x5A
    with pytest.raises(CompressedDataError, match="corrupt frame at offset 480"):
        list(iter_mtf_chunks(io.BytesIO(bytes(data))))


def test_unknown_record_type_raises():
    data = bytearray(_prefix())
    data[0x35E] = 0x99
    with pytest.raises(CompressedDataError, match=re.escape("unknown record at offset 862")):
        list(iter_mtf_chunks(io.BytesIO(bytes(data))))


def test_uncompressed_backup_is_refused():
    with pytest.raises(CompressedDataError, match="not a compressed SQL Server backup"):
        list(iter_mtf_chunks(io.BytesIO(b"TAPE" + bytes(2000))))


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=8, max_value=0x5FF), st.integers(min_value=1, max_value=255))
def test_any_single_corrupt_byte_gives_mtf_or_compressed_data_error(position, flip):
    data = bytearray(_prefix())
    data[position] ^= flip
    try:
        chunks = list(iter_mtf_chunks(io.BytesIO(bytes(data))))
    except CompressedDataError:
        return
    assert all(isinstance(c, bytes) and len(c) % 512 == 0 for c in chunks)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=3000))
def test_random_bytes_after_the_header_give_mtf_or_compressed_data_error(tail):
    try:
        list(iter_mtf_chunks(io.BytesIO(_prefix()[:FILE_HEADER_SIZE] + tail)))
    except CompressedDataError:
        pass
