"""Backup files as the engine writes and reads them: the one place that knows the file format.

The engine hands over a backup set (a :class:`BackupSetHeader` plus the payload: a database
snapshot or the log records of an LSN range) and gets them back by position, so the on-disk
format can change here alone (the shared MTF layout, ``backup_media.py``, when it lands).
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

__all__ = ["BackupFile", "BackupSetHeader", "MediaError", "write_backup_set", "read_headers", "read_payload",
           "os_error_text"]

_MAGIC = b"SQLSERVER-STANDIN-MEDIA/1\n"


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


def _pack(blob: bytes) -> bytes:
    return struct.pack(">Q", len(blob)) + blob


def _read_family(path: str) -> tuple[dict, list[tuple[dict, bytes, str]]]:
    """(media label, [(header json, chunk, sha256)]) of one family file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise MediaError(3201, path, os_error_text(exc)) from None
    if not data.startswith(_MAGIC):
        raise MediaError(3241 if data else 3242, path, "not a backup media family")
    pos = len(_MAGIC)
    items: list[bytes] = []
    while pos < len(data):
        if pos + 8 > len(data):
            raise MediaError(3203, path, "38(Reached the end of the file.)")
        (size,) = struct.unpack(">Q", data[pos:pos + 8])
        if pos + 8 + size > len(data):
            raise MediaError(3203, path, "38(Reached the end of the file.)")
        items.append(data[pos + 8:pos + 8 + size])
        pos += 8 + size
    try:
        label = json.loads(items[0])
        sets = []
        for i in range(1, len(items), 2):
            meta = json.loads(items[i])
            sets.append((meta, items[i + 1], meta["sha256"]))
    except (IndexError, ValueError, KeyError):
        raise MediaError(3241, path, "descriptor damaged") from None
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
    if header.compressed:  # a compressed backup really is smaller on disk (zlib stands in for MS-XCA)
        payload = zlib.compress(payload, 1)
    counts = {len(sets) for _, sets in families}
    if len(counts) > 1 or any(label["family_count"] != len(paths) for label, sets in families if sets):
        raise MediaError(3231, paths[0], "media family count mismatch")
    position = (counts.pop() if counts else 0) + 1
    n = len(paths)
    step = -(-len(payload) // n) if payload else 0
    chunks = [payload[i * step:(i + 1) * step] for i in range(n)]
    for index, (path, (label, sets)) in enumerate(zip(paths, families, strict=True)):
        label = {"media_uuid": label.get("media_uuid") or media_uuid, "family_count": n, "family_number": index + 1}
        body = [_MAGIC, _pack(json.dumps(label).encode())]
        for meta, chunk, _ in sets:
            body += [_pack(json.dumps(meta).encode()), _pack(chunk)]
        chunk = chunks[index]
        meta = {"header": _header_json(replace(header, family_count=n)), "sha256": hashlib.sha256(chunk).hexdigest()}
        body += [_pack(json.dumps(meta).encode()), _pack(chunk)]
        data = b"".join(body)
        if damage == "truncate":
            data = data[: max(len(_MAGIC) + 8, len(data) * 2 // 3)]
        elif damage == "corrupt" and chunk:
            at = len(data) - len(chunk) // 2 - 1
            data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]
        try:
            with open(path, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise MediaError(3201, path, os_error_text(exc)) from None
    return position, len(payload)


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
    data = b"".join(payload)
    if header.compressed:
        try:
            data = zlib.decompress(data)
        except zlib.error:
            raise MediaError(3183, paths[0], "compressed data damaged") from None
    return header, data
