"""Read SQL Server backup files without a server: every backup set of a file, as RESTORE HEADERONLY and
RESTORE FILELISTONLY report it.

Memory stays bounded and time proportional to the number of MTF blocks, not to the file's size: only
descriptor blocks and metadata streams are read, data streams are skipped (seeked over, or for a
compressed file, frames passed over undecoded). Anything that is not a complete, well-formed backup
raises :class:`BackupFileError` naming the file and the reason.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from biztalk_dr.backup_files.byte_sources import ByteSource, CompressedSource, PlainSource, TruncatedError
from biztalk_dr.backup_files.compressed_container import MAGIC, CompressedDataError
from biztalk_dr.backup_files.headers import BackupSetHeader
from biztalk_dr.backup_files.mtf import Block, MtfFormatError, iter_blocks
from biztalk_dr.backup_files.sql_metadata import SetMetadata, parse_metadata_stream
from biztalk_dr.domain.errors import BackupFileError

__all__ = ["BACKUP_FILE_SUFFIXES", "FileResult", "read_backup_file", "read_backup_files"]

BACKUP_FILE_SUFFIXES = frozenset({".bak", ".trn", ".dif", ".diff", ".bck", ".full", ".log"})
"""Names a folder scan reports as unreadable backups; other files it meets that are not backups (a
manifest, a README) are passed over."""

_WANTED_STREAMS = frozenset({b"RAID", b"MQCI"})
_TAPE_PASSWORD_ALGORITHM = 62   # u16, TAPE block
_TAPE_MEDIA_PASSWORD = 76       # MTF_TAPE_ADDRESS (u16 size, u16 offset)
_SSET_PASSWORD_ALGORITHM = 56
_SSET_DATA_SET_NUMBER = 62
_SSET_PASSWORD = 72
_SSET_GUID = 100
_RAID_FAMILY_COUNT = 20         # after the 16-byte media set GUID and 4 unknown bytes
_RAID_FAMILY_SEQUENCE = 24


@dataclass(frozen=True)
class FileResult:
    """What one file holds, or why it cannot be read (``error`` set, ``sets`` empty), or why it was passed over
    without being opened (``skipped``: a FIFO, socket or device met in a folder)."""

    path: str
    sets: list[BackupSetHeader] = field(default_factory=list)
    error: BackupFileError | None = None
    skipped: str | None = None


def read_backup_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[FileResult]:
    """Each file named, and each file under each folder named (recursively, in name order), read in
    turn; an unreadable one is a result with its error, never an exception. A FIFO, socket or device file in
    a folder is never opened (reading one would block or never end): it is a result with ``skipped`` set."""
    for path in paths:
        root = Path(path)
        if root.is_dir():
            found = False
            for file in _files_under(root):
                found = True
                special = _special_file(file)
                if special is not None:
                    yield FileResult(str(file), skipped=f"{special}, not a regular file: not read")
                    continue
                result = _read_safely(file)
                if result.error is None or file.suffix.lower() in BACKUP_FILE_SUFFIXES \
                        or "not a SQL Server backup" not in result.error.reason:
                    yield result
            if not found:
                yield FileResult(str(root), error=BackupFileError(str(root), "folder holds no files"))
        else:
            yield _read_safely(root)


def read_backup_file(path: str | os.PathLike[str]) -> list[BackupSetHeader]:
    """Every backup set in one file, in position order; BackupFileError if it is not a readable backup (a FIFO,
    socket or device is refused without being read: opening is non-blocking and the type checked first)."""
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as fileobj:
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode):
                raise IsADirectoryError(name)
            if not stat.S_ISREG(mode):
                raise BackupFileError(name, f"{_kind_of(mode)}, not a regular file: not read")
            start = fileobj.read(len(MAGIC))
            fileobj.seek(0)
            if start[:4] == b"TAPE":
                return _read_sets(PlainSource(fileobj), name, compressed=False)
            if start == MAGIC:
                with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mapped:
                    return _read_sets(CompressedSource(mapped), name, compressed=True)
            raise BackupFileError(name, _not_a_backup(start))
    except IsADirectoryError:
        raise BackupFileError(name, "is a folder, not a file") from None
    except FileNotFoundError:
        raise BackupFileError(name, "no such file") from None
    except PermissionError:
        raise BackupFileError(name, "cannot be read: permission denied") from None
    except OSError as exc:
        special = _special_file(Path(name))  # a socket cannot even be opened
        if special is not None:
            raise BackupFileError(name, f"{special}, not a regular file: not read") from None
        raise BackupFileError(name, f"cannot be read: {exc.strerror or exc}") from None
    except (MtfFormatError, TruncatedError, CompressedDataError) as exc:
        raise BackupFileError(name, str(exc)) from None


def _read_safely(path: Path) -> FileResult:
    try:
        return FileResult(str(path), read_backup_file(path))
    except BackupFileError as exc:
        return FileResult(str(path), error=exc)


def _special_file(path: Path) -> str | None:
    """What ``path`` is if not a regular file (a FIFO, socket, device), without opening it; None otherwise."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # reading it reports why
    return None if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else _kind_of(mode)


def _kind_of(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    return "a special file"


def _files_under(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            yield Path(folder, name)


def _not_a_backup(start: bytes) -> str:
    if not start:
        return "empty file (0 bytes): not a SQL Server backup"
    if MAGIC.startswith(start) or b"TAPE".startswith(start):
        return f"file truncated: only {len(start)} byte(s), the start of a backup's first header"
    shown = start.decode("ascii") if all(32 <= b < 127 for b in start) else start.hex()
    return (f"not a SQL Server backup: it starts with {shown!r}, where a backup starts with 'TAPE' "
            f"(uncompressed) or 'MSSQLBAK' (compressed)")


@dataclass
class _OpenSet:
    position: int
    offset: int
    backup_set_id: str
    password: bool
    metadata: bytes | None = None  # the latest MQCI stream: MSLS, at the end, adds the finish time


@dataclass(frozen=True)
class _Media:
    media_set_id: str
    family_count: int
    family_sequence: int
    password: bool


def _read_sets(source: ByteSource, path: str, *, compressed: bool) -> list[BackupSetHeader]:
    media: _Media | None = None
    current: _OpenSet | None = None
    sets: list[BackupSetHeader] = []
    for block in iter_blocks(source, _WANTED_STREAMS):
        if media is None:
            if block.type != b"TAPE":
                raise MtfFormatError(f"the first MTF block is {block.type.decode()}, not TAPE")
            media = _media(block)
        elif block.type == b"SSET":
            if current is not None:
                raise MtfFormatError(f"backup set {current.position} (from offset {current.offset}) has no end "
                                     f"before the next set at offset {block.offset}")
            current = _open_set(block)
        elif block.type in (b"MSCI", b"MSLS") and current is not None:
            stream = block.streams.get(b"MQCI")
            if stream is None:
                raise MtfFormatError(f"the {block.type.decode()} block at offset {block.offset} has no SQL Server "
                                     "metadata stream (MQCI)")
            current.metadata = stream  # parsed once, the last copy (MSLS), when the set ends
        elif block.type == b"ESET" and current is not None:
            sets.append(_header(current, media, path, compressed))
            current = None
    if media is None:
        raise MtfFormatError("no MTF TAPE block")
    if current is not None:
        raise MtfFormatError(f"file truncated: backup set {current.position}, begun at offset {current.offset}, "
                             "has no end (ESET block)")
    if not sets:
        raise MtfFormatError("the media header is there but no complete backup set")
    return sets


def _media(tape: Block) -> _Media:
    raid = tape.streams.get(b"RAID")
    if raid is None or len(raid) < _RAID_FAMILY_SEQUENCE + 2 or len(tape.fixed) < _TAPE_MEDIA_PASSWORD + 4:
        raise MtfFormatError("the TAPE block has no SQL Server media family stream (RAID)")
    algorithm = struct.unpack_from("<H", tape.fixed, _TAPE_PASSWORD_ALGORITHM)[0]
    password_size = struct.unpack_from("<H", tape.fixed, _TAPE_MEDIA_PASSWORD)[0]
    count = struct.unpack_from("<H", raid, _RAID_FAMILY_COUNT)[0]
    sequence = struct.unpack_from("<H", raid, _RAID_FAMILY_SEQUENCE)[0]
    if not 1 <= sequence <= count:
        raise MtfFormatError(f"corrupt media family stream: family {sequence} of {count}")
    return _Media(str(uuid.UUID(bytes_le=raid[:16])), count, sequence, bool(algorithm or password_size))


def _open_set(sset: Block) -> _OpenSet:
    if len(sset.fixed) < _SSET_GUID + 16:
        raise MtfFormatError(f"corrupt SSET block at offset {sset.offset}: {len(sset.fixed)} bytes")
    algorithm, position = (struct.unpack_from("<H", sset.fixed, o)[0]
                           for o in (_SSET_PASSWORD_ALGORITHM, _SSET_DATA_SET_NUMBER))
    password_size = struct.unpack_from("<H", sset.fixed, _SSET_PASSWORD)[0]
    guid = str(uuid.UUID(bytes_le=sset.fixed[_SSET_GUID:_SSET_GUID + 16]))
    return _OpenSet(position, sset.offset, guid, bool(algorithm or password_size))


def _header(open_set: _OpenSet, media: _Media, path: str, compressed: bool) -> BackupSetHeader:
    if open_set.metadata is None:
        raise MtfFormatError(f"backup set {open_set.position} has no SQL Server metadata (MSCI block)")
    meta: SetMetadata = parse_metadata_stream(open_set.metadata)
    ident = meta.identity
    return BackupSetHeader(
        path=path, position=open_set.position, database_name=meta.database_name, server_name=meta.server_name,
        backup_type=meta.backup_type, first_lsn=meta.first_lsn, last_lsn=meta.last_lsn,
        checkpoint_lsn=meta.checkpoint_lsn, database_backup_lsn=meta.database_backup_lsn,
        backup_start_date=meta.backup_start_date,
        backup_finish_date=meta.backup_finish_date or meta.backup_start_date,
        database_creation_date=meta.database_creation_date, compressed=compressed,
        software_version=meta.software_version, media_set_id=media.media_set_id,
        family_count=media.family_count, family_sequence=media.family_sequence,
        password_protected=media.password or open_set.password,
        copy_only=None,  # where IsCopyOnly is kept is not known (no copy-only sample): MTF_FORMAT.md
        backup_set_id=open_set.backup_set_id, files=meta.files,
        family_guid=ident and ident.family_guid, database_guid=ident and ident.database_guid,
        recovery_fork_id=ident and ident.recovery_fork_id, branch_parent_id=ident and ident.branch_parent_id,
        branch_lsn=ident and ident.branch_lsn, differential_base_guid=ident and ident.differential_base_guid,
        differential_base_lsn=ident and ident.differential_base_lsn)
