"""SQL Server's backup-set metadata inside MTF: the ``MQCI`` stream of the ``MSCI`` block (written when
the backup starts) and of the ``MSLS`` block (rewritten at its end, with the finish time).

The stream is a chain of records, each a 4-letter tag and a u32 size that includes the 8-byte record
header: one ``SCIN`` (the set: database, server, type, LSNs, dates, version), one ``SFGI`` per
filegroup and one ``SFIN`` per database file (RESTORE FILELISTONLY). Microsoft does not document
these records; the offsets below were worked out on the real backups of SQL Server 2008 R2, 2014 and
2016 in ``/work/shared/sqlserver-backups`` and are checked by the tests against what is known of
those files independently (names, chains). See MTF_FORMAT.md.
"""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from dataclasses import dataclass
from typing import Literal

from biztalk_dr.backup_files.headers import BackupType, DatabaseFile, lsn_from_parts
from biztalk_dr.backup_files.mtf import MtfFormatError

__all__ = ["SetIdentity", "SetMetadata", "mtf_date", "parse_metadata_stream"]

_RECORD_HEADER = struct.Struct("<4sI")
_LSN = struct.Struct("<IIH")
# SCIN offsets (from the record's start)
_SCIN_VERSION = 0x18          # u16 build, u8 minor, u8 major
_SCIN_LSNS = (0x20, 0x2A, 0x34, 0x3E)  # first, last, checkpoint, database backup (10 bytes each)
_SCIN_DATES = (0x48, 0x4D, 0x52)  # database creation, backup start, backup finish (MTF dates)
_SCIN_TYPE = 0x57             # msdb.backupset.type letter: D full, I differential, L log
_SCIN_NAMES = 0x68            # u16 length, u16 offset: database name, then server name (UTF-16)
_SCIN_MIN_SIZE = 0x70
# Identity (MTF_FORMAT.md "Identity" has the evidence): GUIDs as uuid bytes_le, LSNs as above
_SCIN_BINDING_ID = 0x7C       # RESTORE HEADERONLY BindingID (sys.database_recovery_status.database_guid)
_SCIN_END_LSN = 0x90          # LastLSN again, followed by the recovery fork it is on:
_SCIN_RECOVERY_FORK = 0x9C    # RecoveryForkID
_SCIN_BRANCH_LSN = 0xAC       # where the current recovery fork branched off its parent (zero: never forked)
_SCIN_BRANCH_PARENT = 0xB8    # ... and the parent fork
_SCIN_CURRENT_BASE = 0xC8     # the database's differential base (a full's BackupSetGUID) when the backup ran
_SCIN_FAMILY = 0xE0           # FamilyGUID
_SCIN_DIFF_BASE_LSN = 0x104   # DifferentialBaseLSN (differentials only)
_SCIN_DIFF_BASE_GUID = 0x110  # DifferentialBaseGUID (differentials only)
_SCIN_IDENTITY_END = 0x120    # the smallest fixed part seen is 0x16C bytes; shorter: identity not known
# SFIN offsets
_SFIN_TYPE = 0x1C             # u32: 1 data, 2 log
_SFIN_NAMES = 0x30            # u16 length, u16 offset: logical name, then physical name (UTF-16)
_SFIN_MIN_SIZE = 0x38

_BACKUP_TYPES: dict[int, BackupType] = {ord("D"): "FULL", ord("I"): "DIFF", ord("L"): "LOG"}
_OTHER_TYPES = {"F": "file", "G": "differential file", "P": "partial", "Q": "differential partial"}
_FILE_TYPES: dict[int, Literal["D", "L"]] = {1: "D", 2: "L"}


@dataclass(frozen=True)
class SetMetadata:
    """What SQL Server records about one backup set (times as the server's local time)."""

    database_name: str
    server_name: str
    backup_type: BackupType
    first_lsn: int
    last_lsn: int
    checkpoint_lsn: int
    database_backup_lsn: int
    database_creation_date: dt.datetime
    backup_start_date: dt.datetime
    backup_finish_date: dt.datetime | None
    software_version: str
    files: tuple[DatabaseFile, ...]
    identity: SetIdentity | None = None  # None: the record is too short to hold it


@dataclass(frozen=True)
class SetIdentity:
    """Which database and which recovery branch a set belongs to (RESTORE HEADERONLY's identity columns)."""

    family_guid: str
    database_guid: str
    recovery_fork_id: str
    branch_parent_id: str | None      # the fork the set's recovery fork branched from; None: never forked
    branch_lsn: int | None            # the LSN where it branched
    current_base_guid: str | None     # the database's differential base when the backup ran
    differential_base_guid: str | None
    differential_base_lsn: int | None


def mtf_date(five: bytes) -> dt.datetime | None:
    """An MTF DATE_TIME (40 bits, big-endian: 14 year, 4 month, 5 day, 5 hour, 6 minute, 6 second);
    None when all zero (not yet known)."""
    value = int.from_bytes(five, "big")
    if not value:
        return None
    return dt.datetime(value >> 26, (value >> 22) & 0xF, (value >> 17) & 0x1F,
                       (value >> 12) & 0x1F, (value >> 6) & 0x3F, value & 0x3F)


def parse_metadata_stream(data: bytes) -> SetMetadata:
    """The set described by an ``MQCI`` stream; MtfFormatError naming the record on anything off."""
    scin: bytes | None = None
    files: list[DatabaseFile] = []
    pos = 0
    while pos + _RECORD_HEADER.size <= len(data):
        tag, size = _RECORD_HEADER.unpack_from(data, pos)
        if tag == b"\0\0\0\0":
            break  # zero fill after the last record
        if size < _RECORD_HEADER.size or pos + size > len(data):
            raise MtfFormatError(f"corrupt SQL Server metadata: record {tag!r} at byte {pos} claims {size} bytes, "
                                 f"{len(data) - pos} left")
        record = data[pos:pos + size]
        if tag == b"SCIN":
            scin = record
        elif tag == b"SFIN":
            files.append(_database_file(record))
        pos += size
    if scin is None:
        raise MtfFormatError("the SQL Server metadata stream has no SCIN (backup set) record")
    return _backup_set(scin, tuple(files))


def _backup_set(scin: bytes, files: tuple[DatabaseFile, ...]) -> SetMetadata:
    if len(scin) < _SCIN_MIN_SIZE:
        raise MtfFormatError(f"corrupt SCIN record: {len(scin)} bytes, fewer than {_SCIN_MIN_SIZE}")
    type_code = scin[_SCIN_TYPE]
    if type_code not in _BACKUP_TYPES:
        other = _OTHER_TYPES.get(chr(type_code))
        raise MtfFormatError(f"a {other} backup (type {chr(type_code)!r}), which biztalk-dr does not restore"
                             if other else f"corrupt SCIN record: unknown backup type byte 0x{type_code:02x}")
    build, minor, major = struct.unpack_from("<HBB", scin, _SCIN_VERSION)
    first, last, checkpoint, base = (lsn_from_parts(*_LSN.unpack_from(scin, o)) for o in _SCIN_LSNS)
    created, started, finished = (_date(scin, o) for o in _SCIN_DATES)
    if created is None or started is None:
        raise MtfFormatError("corrupt SCIN record: no database creation or backup start date")
    database, server = (_string(scin, _SCIN_NAMES + 4 * i, "SCIN") for i in range(2))
    if not database:
        raise MtfFormatError("corrupt SCIN record: empty database name")
    fixed_end = min(struct.unpack_from("<H", scin, _SCIN_NAMES + 2 + 4 * i)[0] for i in range(2))
    return SetMetadata(
        database_name=database, server_name=server, backup_type=_BACKUP_TYPES[type_code],
        first_lsn=first, last_lsn=last, checkpoint_lsn=checkpoint, database_backup_lsn=base,
        database_creation_date=created, backup_start_date=started, backup_finish_date=finished,
        software_version=f"{major}.{minor}.{build}", files=files,
        identity=_identity(scin, last, _BACKUP_TYPES[type_code]) if fixed_end >= _SCIN_IDENTITY_END else None)


def _identity(scin: bytes, last_lsn: int, backup_type: BackupType) -> SetIdentity | None:
    """The identity fields, or None when they do not hold together (the record is not laid out as those of
    every real backup seen: the LSN before RecoveryForkID is LastLSN)."""
    if _lsn(scin, _SCIN_END_LSN) != last_lsn or _guid(scin, _SCIN_FAMILY) is None:
        return None
    branch_lsn, parent = _lsn(scin, _SCIN_BRANCH_LSN), _guid(scin, _SCIN_BRANCH_PARENT)
    differential = backup_type == "DIFF"
    return SetIdentity(
        family_guid=_guid(scin, _SCIN_FAMILY) or "", database_guid=_guid(scin, _SCIN_BINDING_ID) or "",
        recovery_fork_id=_guid(scin, _SCIN_RECOVERY_FORK) or "",
        branch_parent_id=parent if parent and branch_lsn else None, branch_lsn=branch_lsn if parent and branch_lsn else None,
        current_base_guid=_guid(scin, _SCIN_CURRENT_BASE),
        differential_base_guid=_guid(scin, _SCIN_DIFF_BASE_GUID) if differential else None,
        differential_base_lsn=(_lsn(scin, _SCIN_DIFF_BASE_LSN) or None) if differential else None)


def _lsn(record: bytes, at: int) -> int:
    return lsn_from_parts(*_LSN.unpack_from(record, at))


def _guid(record: bytes, at: int) -> str | None:
    """A GUID as RESTORE HEADERONLY prints it (lower case here); None when all zero."""
    raw = record[at:at + 16]
    return str(uuid.UUID(bytes_le=bytes(raw))) if any(raw) else None


def _database_file(sfin: bytes) -> DatabaseFile:
    if len(sfin) < _SFIN_MIN_SIZE:
        raise MtfFormatError(f"corrupt SFIN record: {len(sfin)} bytes, fewer than {_SFIN_MIN_SIZE}")
    code = struct.unpack_from("<I", sfin, _SFIN_TYPE)[0]
    return DatabaseFile(logical_name=_string(sfin, _SFIN_NAMES, "SFIN"),
                        physical_name=_string(sfin, _SFIN_NAMES + 4, "SFIN"),
                        type=_FILE_TYPES.get(code, "?"))  # full-text and FILESTREAM codes: no sample yet


def _string(record: bytes, at: int, tag: str) -> str:
    length, offset = struct.unpack_from("<HH", record, at)
    if offset + length > len(record) or length % 2:
        raise MtfFormatError(f"corrupt {tag} record: a name of {length} bytes at byte {offset} of {len(record)}")
    try:
        return record[offset:offset + length].decode("utf-16-le")
    except UnicodeDecodeError:
        raise MtfFormatError(f"corrupt {tag} record: a name at byte {offset} is not UTF-16") from None


def _date(record: bytes, at: int) -> dt.datetime | None:
    try:
        return mtf_date(record[at:at + 5])
    except ValueError:
        raise MtfFormatError(f"corrupt date {record[at:at + 5].hex()} at byte {at} of the SCIN record") from None
