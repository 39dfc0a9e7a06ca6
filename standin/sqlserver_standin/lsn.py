"""Log sequence numbers: the per-database counter every logged change advances.

SQL Server's LSN is (virtual log file, block, slot), printed in decimal as
``vlf * 10**15 + block * 10**5 + slot`` (biztalk-dr.md section 6; the shared backups' README).
The stand-in counts changes with one integer per database (``seq``) and maps it monotonically
onto that shape, so LSNs compare, print and chain exactly like SQL Server's.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["FIRST_VLF", "lsn_from_seq", "seq_from_lsn", "lsn_parts"]

FIRST_VLF = 34  # a new database's first VLF number is in the tens on SQL Server 2022
_SLOTS_PER_BLOCK = 64
_BLOCKS_PER_VLF = 4096
_BLOCK_STEP = 8  # blocks are 512-byte offsets; log blocks are at least 8 of them apart


def lsn_from_seq(seq: int) -> Decimal:
    """The numeric(25,0) LSN of the seq-th logged change of a database."""
    if seq < 0:
        raise ValueError(f"an LSN counter is never negative, got {seq}")
    vlf, rest = divmod(seq, _SLOTS_PER_BLOCK * _BLOCKS_PER_VLF)
    block, slot = divmod(rest, _SLOTS_PER_BLOCK)
    return Decimal((FIRST_VLF + vlf) * 10**15 + (16 + block * _BLOCK_STEP) * 10**5 + slot + 1)


def lsn_parts(lsn: Decimal | int) -> tuple[int, int, int]:
    value = int(lsn)
    vlf, rest = divmod(value, 10**15)
    block, slot = divmod(rest, 10**5)
    return vlf, block, slot


def seq_from_lsn(lsn: Decimal | int) -> int:
    """Inverse of :func:`lsn_from_seq`; raises ValueError for an LSN the stand-in never issues."""
    vlf, block, slot = lsn_parts(lsn)
    if vlf < FIRST_VLF or block < 16 or (block - 16) % _BLOCK_STEP or not 1 <= slot <= _SLOTS_PER_BLOCK:
        raise ValueError(f"{lsn} is not an LSN of this stand-in")
    return ((vlf - FIRST_VLF) * _BLOCKS_PER_VLF + (block - 16) // _BLOCK_STEP) * _SLOTS_PER_BLOCK + slot - 1
