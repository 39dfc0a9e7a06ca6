"""Backup files as the engine writes and reads them: the one place that knows the file format.

The engine hands over a backup set (a :class:`BackupSetHeader` plus the payload: a database
snapshot or the log records of an LSN range) and gets them back by position, so the on-disk
format lives here alone: Microsoft Tape Format, as real SQL Server writes it, so that the product's
backup-file reader serves real and stand-in files alike.
Failures raise :class:`MediaError` carrying SQL Server's error number for the situation
("BACKUP (Transact-SQL)", "RESTORE Statements"): 3201 the device cannot be opened, 3203 a read
failed, 3241/3242 the media family is malformed or not a backup, 3132 a striped set is missing
families, 3183 the data read back is damaged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import struct
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from pathlib import Path

from sqlserver_standin.compressed_media import MAGIC as CONTAINER_MAGIC
from sqlserver_standin.compressed_media import ContainerWriter, DamagedMedia, read_container

__all__ = ["BackupFile", "BackupSetHeader", "MediaError", "write_backup_set", "read_headers", "read_payload",
           "os_error_text"]

_PRODUCT_VERSION = "16.0.1000.6"  # what the engine reports as SERVERPROPERTY('ProductVersion')


@dataclass(frozen=True)
class BackupFile:
    """A database file inside a backup (RESTORE FILELISTONLY)."""

    logical_name: str
    physical_name: str
    type: str  # 'D' data, 'L' log
    size: int  # bytes


@dataclass(frozen=True)
class BackupSetHeader:
    """What RESTORE HEADERONLY reports about one backup set."""

    backup_type: int  # 1 database, 2 log, 5 differential
    database_name: str
    server_name: str
    machine_name: str
    user_name: str
    first_lsn: Decimal
    last_lsn: Decimal
    checkpoint_lsn: Decimal
    database_backup_lsn: Decimal
    database_creation_date: dt.datetime
    backup_start_date: dt.datetime
    backup_finish_date: dt.datetime
    recovery_model: str
    is_copy_only: bool
    has_checksums: bool
    compressed: bool
    backup_size: int
    files: tuple[BackupFile, ...] = ()
    backup_name: str | None = None
    description: str | None = None
    position: int = 0  # 1-based; set when read back
    family_count: int = 1
    backup_set_guid: str = field(default_factory=lambda: str(uuid.uuid4()))
    family_guid: str = ""  # the database's identity across backups and restores (3154 when it differs)
    # recovery forks (recovery_forks.py): the branch the set ends on, where that branch began (as the LSN
    # counter), the database's binding and its differential base when the backup ran; the base of a differential
    recovery_fork_guid: str = ""
    branch_parent_guid: str | None = None
    branch_seq: int | None = None
    binding_guid: str = ""
    current_base_guid: str | None = None
    differential_base_guid: str | None = None


class MediaError(Exception):
    def __init__(self, number: int, path: str, detail: str = "") -> None:
        super().__init__(f"{number}: {path}: {detail}")
        self.number = number
        self.path = path
        self.detail = detail


def os_error_text(exc: OSError) -> str:
    """SQL Server on Linux reports Windows-style operating system errors: '2(The system cannot find ...)'."""
    texts = {2: "The system cannot find the file specified.", 3: "The system cannot find the path specified.",
             5: "Access is denied.", 13: "Access is denied.", 28: "There is not enough space on the disk.",
             21: "Access is denied."}
    number = {13: 5, 21: 5}.get(exc.errno, exc.errno or 0)
    if exc.errno == 2 and not Path(exc.filename or "").parent.is_dir():
        number = 3
    return f"{number}({texts.get(number, exc.strerror or 'error')})"


def _header_json(header: BackupSetHeader) -> dict:
    data = asdict(header)
    for key, value in data.items():
        if isinstance(value, Decimal):
            data[key] = str(value)
        elif isinstance(value, dt.datetime):
            data[key] = value.isoformat()
    return data


def _header_from_json(data: dict, position: int) -> BackupSetHeader:
    values = dict(data)
    for key in ("first_lsn", "last_lsn", "checkpoint_lsn", "database_backup_lsn"):
        values[key] = Decimal(values[key])
    for key in ("database_creation_date", "backup_start_date", "backup_finish_date"):
        values[key] = dt.datetime.fromisoformat(values[key])
    values["files"] = tuple(BackupFile(**f) for f in values["files"])
    values["position"] = position
    return BackupSetHeader(**values)


# ------------------------------------------------------------------------------------- MTF media layout
# The stand-in writes Microsoft Tape Format as SQL Server does (see biztalk_dr/backup_files/MTF_FORMAT.md
# for the layout, worked out on real backups): TAPE (+RAID stream: media set, family count and number),
# SFMB, then per set SSET, MSCI (MQCI: SCIN + SFIN records), MSDA (MQDA: the data), MSLS (MQCI again,
# with the finish time), SFMB, ESET, SFMB. What SQL Server keeps elsewhere (its catalog, page
# checksums) the stand-in keeps in one extra stream of its own, SIJS (JSON), which readers of real
# backups pass over as an unknown stream. This walker is the stand-in's own, independent of the
# product's reader, so that each checks the other.

_FORMAT_BLOCK = 1024
_SOFT_FILEMARK = 512
_COMMON = struct.Struct("<4sIHBBQQH6sI4sHHBBH")  # the 52-byte MTF common block header
_STREAM = struct.Struct("<4sHHQHHH")            # the 22-byte MTF stream header


def _mtf_date(value: dt.datetime | None) -> bytes:
    if value is None:
        return bytes(5)
    bits = (value.year << 26) | (value.month << 22) | (value.day << 17) | (value.hour << 12) \
        | (value.minute << 6) | value.second
    return bits.to_bytes(5, "big")


def _lsn_parts(lsn: Decimal) -> bytes:
    number = int(lsn)
    return struct.pack("<IIH", number // 10**15, (number // 10**5) % 10**10, number % 10**5)


def _stream(kind: bytes, data: bytes) -> bytes:
    """A stream starting 4-byte aligned, padded so that the next one does too."""
    return _STREAM.pack(kind, 0, 0, len(data), 0, 0, 0) + data + bytes(-(_STREAM.size + len(data)) % 4)


def _block(kind: bytes, fixed_tail: bytes, streams: Sequence[tuple[bytes, bytes]], *, attributes: int = 0) -> bytes:
    """One descriptor block: common header, fixed part, streams, then SPAD up to a 1024-byte multiple."""
    fixed_tail += bytes(-(_COMMON.size + len(fixed_tail)) % 4)  # streams start 4-byte aligned
    first_stream = _COMMON.size + len(fixed_tail)
    header = _COMMON.pack(kind, attributes, first_stream, 14, 1, 0, 0, 0, bytes(6), 0, bytes(4), 0, 0, 2, 0, 0)
    checksum = 0
    for (word,) in struct.iter_unpack("<H", header[:50]):
        checksum ^= word
    body = header[:50] + struct.pack("<H", checksum) + fixed_tail + b"".join(_stream(k, d) for k, d in streams)
    fill = -(len(body) + _STREAM.size) % _FORMAT_BLOCK
    return body + _STREAM.pack(b"SPAD", 0, 0, fill, 0, 0, 0) + bytes(fill)


def _soft_filemark() -> bytes:
    return _COMMON.pack(b"SFMB", 0x80000000, _SOFT_FILEMARK, 14, 1, 0, 0, 0, bytes(6), 0, bytes(4), 0, 0, 2, 0, 0) \
        + bytes(_SOFT_FILEMARK - _COMMON.size)


def _utf16_fields(values: Sequence[str], start: int) -> tuple[bytes, bytes]:
    """(u16 length, u16 offset) pairs and the UTF-16 strings they point at, the strings from ``start``."""
    pairs, strings = b"", b""
    for value in values:
        encoded = value.encode("utf-16-le")
        pairs += struct.pack("<HH", len(encoded), start + len(strings))
        strings += encoded
    return pairs, strings


def _guid_bytes(text: str | None) -> bytes:
    return uuid.UUID(hex=text.replace("-", "")).bytes_le if text else bytes(16)


_SCIN_FIXED = 0x16C  # as SQL Server 2008 R2 writes it; identity fields at the offsets of MTF_FORMAT.md


def _scin(header: BackupSetHeader, finished: bool) -> bytes:
    from sqlserver_standin.lsn import lsn_from_seq

    letter = {1: b"D", 2: b"L", 5: b"I"}[header.backup_type]
    major, minor, build = (int(x) for x in _PRODUCT_VERSION.split(".")[:3])
    flags = 0x200 | (0x10 if header.has_checksums else 0) | (0x800 if header.backup_type == 5 else 0)
    names, strings = _utf16_fields([header.database_name, header.server_name], _SCIN_FIXED)
    fixed = bytearray(_SCIN_FIXED)
    struct.pack_into("<II", fixed, 0x74, 0x409, 0x30001)  # UnicodeLocaleId, UnicodeComparisonStyle
    fixed[0x7C:0x8C] = _guid_bytes(header.binding_guid)
    fixed[0x90:0x9A] = _lsn_parts(header.last_lsn)
    fixed[0x9C:0xAC] = _guid_bytes(header.recovery_fork_guid)
    if header.branch_parent_guid and header.branch_seq is not None:
        for at in (0xAC, 0x130):  # the fork point and the fork it branched from (repeated, as 10.50.4000+ do)
            fixed[at:at + 10] = _lsn_parts(lsn_from_seq(header.branch_seq))
            fixed[at + 12:at + 28] = _guid_bytes(header.branch_parent_guid)
    fixed[0xC8:0xD8] = _guid_bytes(header.current_base_guid)
    fixed[0xE0:0xF0] = _guid_bytes(header.family_guid)
    if header.backup_type == 5 and header.differential_base_guid:
        fixed[0x104:0x10E] = _lsn_parts(header.database_backup_lsn)  # the base's FirstLSN (= its checkpoint here)
        fixed[0x110:0x120] = _guid_bytes(header.differential_base_guid)
    struct.pack_into("<III", fixed, 0x08, flags, 1, 1)
    struct.pack_into("<HBBI", fixed, 0x18, build, minor, major, 9)
    fixed[0x20:0x48] = b"".join(_lsn_parts(x) for x in (header.first_lsn, header.last_lsn, header.checkpoint_lsn,
                                                        header.database_backup_lsn))
    fixed[0x48:0x57] = (_mtf_date(header.database_creation_date) + _mtf_date(header.backup_start_date)
                        + _mtf_date(header.backup_finish_date if finished else None))
    fixed[0x57] = letter[0]
    struct.pack_into("<H", fixed, 0x5E, 957)  # database version of SQL Server 2022
    fixed[0x68:0x70] = names
    # IsCopyOnly: where SQL Server keeps it is not known (MTF_FORMAT.md), so it is only in the SIJS stream
    record = bytes(fixed) + strings
    return b"SCIN" + struct.pack("<I", len(record)) + record[8:]


def _sfin(file: BackupFile, file_id: int) -> bytes:
    names, strings = _utf16_fields([file.logical_name, file.physical_name], 0x38)
    fixed = bytearray(0x38)
    struct.pack_into("<I", fixed, 0x08, 0x84 if file_id == 1 else (0x0C if file.type == "L" else 0x04))
    struct.pack_into("<I", fixed, 0x14, file_id)
    struct.pack_into("<I", fixed, 0x1C, 2 if file.type == "L" else 1)
    fixed[0x30:0x38] = names
    record = bytes(fixed) + strings
    return b"SFIN" + struct.pack("<I", len(record)) + record[8:]


def _metadata_stream(header: BackupSetHeader, finished: bool) -> bytes:
    return _scin(header, finished) + b"".join(_sfin(f, i) for i, f in enumerate(header.files, 1))


def _tape_block(media_uuid: str, family_count: int, family_number: int, written: dt.datetime) -> bytes:
    software, strings = _utf16_fields(["SQL Server stand-in (biztalk-dr)"], _COMMON.size + 42)
    tail = struct.pack("<IIHHHH", zlib.crc32(media_uuid.encode()), 5, 1, 0, 1, 3) + bytes(12) + software \
        + struct.pack("<HH", _FORMAT_BLOCK, 0x1200) + _mtf_date(written) + b"\x01"
    raid = uuid.UUID(media_uuid).bytes_le + b"\xad\x00\x00\xf0" + struct.pack("<HHH", family_count, 1, family_number) \
        + struct.pack("<IH", 0, 1)
    return _block(b"TAPE", tail + strings, [(b"RAID", raid)], attributes=0x30000)


def _set_blocks(header: BackupSetHeader, position: int, chunk: bytes, meta: dict) -> list[bytes]:
    sset_tail = struct.pack("<IHHHH", 4, 0, 0, 0x1200, position) + bytes(16) + struct.pack("<Q", 0) \
        + _mtf_date(header.backup_start_date) + bytes([16, 0, 0, 0, 2, 0, 0]) + uuid.UUID(header.backup_set_guid).bytes_le
    own = json.dumps(meta).encode()
    return [
        _block(b"SSET", sset_tail, []),
        _block(b"MSCI", bytes(4), [(b"MQCI", _metadata_stream(header, finished=False))]),
        _block(b"MSDA", bytes(8), [(b"MQDA", chunk)]),
        _block(b"MSLS", bytes(4), [(b"MQCI", _metadata_stream(header, finished=True)), (b"SIJS", own)]),
        _soft_filemark(),
        _block(b"ESET", struct.pack("<I", 4) + bytes(22) + struct.pack("<H", position)
               + _mtf_date(header.backup_start_date) + bytes(3), []),
        _soft_filemark(),
    ]


def _read_family(path: str) -> tuple[dict, list[tuple[dict, bytes, str]]]:
    """(media label, [(stand-in metadata, chunk, sha256)]) of one family file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise MediaError(3201, path, os_error_text(exc)) from None
    compressed = data.startswith(CONTAINER_MAGIC)
    if compressed:
        try:
            data = read_container(data)
        except (DamagedMedia, struct.error, IndexError):
            raise MediaError(3183, path, "compressed data damaged") from None
    if not data.startswith(b"TAPE"):
        raise MediaError(3241 if data else 3242, path, "not a backup media family")
    label: dict | None = None
    sets: list[tuple[dict, bytes, str]] = []
    chunk, meta = b"", None
    pos = 0
    try:
        while pos < len(data):
            kind, _attrs, first_stream = struct.unpack_from("<4sIH", data, pos)
            if kind == b"SFMB":
                pos += _SOFT_FILEMARK
                continue
            streams: dict[bytes, bytes] = {}
            at = pos + first_stream
            while True:
                stream_kind, _a, _m, length, _e, _c, _s = _STREAM.unpack_from(data, at)
                if at + _STREAM.size + length > len(data):
                    raise MediaError(3203, path, "38(Reached the end of the file.)")
                streams[stream_kind] = data[at + _STREAM.size:at + _STREAM.size + length]
                at += _STREAM.size + length
                if stream_kind == b"SPAD":
                    break
                at += -at % 4
            if kind == b"TAPE":
                raid = streams[b"RAID"]
                count, _seq, number = struct.unpack_from("<HHH", raid, 20)
                label = {"media_uuid": str(uuid.UUID(bytes_le=raid[:16])), "family_count": count,
                         "family_number": number, "compressed": compressed}
            elif kind == b"MSDA":
                chunk = streams.get(b"MQDA", b"")
            elif kind == b"MSLS":
                meta = json.loads(streams[b"SIJS"])
            elif kind == b"ESET" and meta is not None:
                sets.append((meta, chunk, meta["sha256"]))
                chunk, meta = b"", None
            pos = at
    except (struct.error, KeyError, ValueError):
        raise MediaError(3203 if pos < len(data) else 3241, path, "38(Reached the end of the file.)") from None
    if label is None or meta is not None or pos != len(data):
        raise MediaError(3203, path, "38(Reached the end of the file.)")
    return label, sets


def write_backup_set(paths: Sequence[str], header: BackupSetHeader, payload: bytes, *, init: bool,
                     damage: str | None = None) -> tuple[int, int]:
    """Append (or with ``init`` overwrite) one backup set striped over ``paths``; returns its position
    and the bytes it takes on the media (smaller than the data when compressed).
    ``damage`` ('truncate' | 'corrupt') writes a bad file on purpose (fault injection)."""
    families: list[tuple[dict, list]] = []
    for path in paths:
        if not init and Path(path).exists() and Path(path).stat().st_size:
            families.append(_read_family(path))
        else:
            families.append(({"media_uuid": None, "family_count": len(paths)}, []))
    media_uuid = str(uuid.uuid4())
    counts = {len(sets) for _, sets in families}
    if len(counts) > 1 or any(label["family_count"] != len(paths) for label, sets in families if sets):
        raise MediaError(3231, paths[0], "media family count mismatch")
    if any(label.get("compressed", header.compressed) != header.compressed for label, sets in families if sets):
        raise MediaError(3098, paths[0], "compressed and uncompressed backups cannot share a media set")
    position = (counts.pop() if counts else 0) + 1
    n = len(paths)
    step = -(-len(payload) // n) if payload else 0
    chunks = [payload[i * step:(i + 1) * step] for i in range(n)]
    written = dt.datetime.now().replace(microsecond=0)
    stored = 0
    for index, (path, (label, sets)) in enumerate(zip(paths, families, strict=True)):
        media = label.get("media_uuid") or media_uuid
        pieces = [_tape_block(media, n, index + 1, written), _soft_filemark()]
        for number, (meta, chunk, _) in enumerate(sets, 1):
            pieces += _set_blocks(_header_from_json(meta["header"], number), number, chunk, meta)
        chunk = chunks[index]
        meta = {"header": _header_json(replace(header, family_count=n)), "sha256": hashlib.sha256(chunk).hexdigest()}
        new = _set_blocks(replace(header, family_count=n), position, chunk, meta)
        if damage == "corrupt" and chunk:  # one bit of the data flipped after its checksum was taken
            data_block = new[2]
            at = data_block.index(chunk) + len(chunk) // 2
            new[2] = data_block[:at] + bytes([data_block[at] ^ 0xFF]) + data_block[at + 1:]
        if header.compressed:  # SQL Server's container: really smaller on disk
            container = ContainerWriter()
            for piece in pieces:
                container.add(piece)
            before = len(container.finish())
            for piece in new:
                container.add(piece)
            data = container.finish()
            stored += len(data) - before
        else:
            data = b"".join(pieces + new)
            stored += len(chunk)
        if damage == "truncate":
            data = data[: max(_FORMAT_BLOCK, len(data) * 2 // 3)]
        try:
            with open(path, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise MediaError(3201, path, os_error_text(exc)) from None
    return position, stored


def _families(paths: Sequence[str]) -> list[tuple[dict, list]]:
    families = [_read_family(p) for p in paths]
    expected = families[0][0]["family_count"]
    if expected > len(paths):
        raise MediaError(3132, paths[0], f"{expected}:{len(paths)}")
    return families


def read_headers(paths: Sequence[str]) -> list[BackupSetHeader]:
    families = _families(paths)
    return [_header_from_json(meta["header"], i + 1) for i, (meta, _chunk, _sha) in enumerate(families[0][1])]


def read_payload(paths: Sequence[str], position: int) -> tuple[BackupSetHeader, bytes]:
    families = sorted(_families(paths), key=lambda f: f[0]["family_number"])
    sets = families[0][1]
    if not 1 <= position <= len(sets):
        raise MediaError(3203, paths[0], f"38(Reached the end of the file.) position {position}")
    header = _header_from_json(sets[position - 1][0]["header"], position)
    payload = []
    for path, (_label, family_sets) in zip(paths, families, strict=True):
        meta, chunk, sha = family_sets[position - 1]
        if hashlib.sha256(chunk).hexdigest() != sha:
            raise MediaError(3183, path, "checksum")
        payload.append(chunk)
    return header, b"".join(payload)
