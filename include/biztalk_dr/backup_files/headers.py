"""What a backup file says about each backup set in it: the fields of ``RESTORE HEADERONLY`` and
``RESTORE FILELISTONLY``, under the names the CLI's JSON prints.

Read from a file by ``biztalk_dr.backup_files.reader`` or built from catalog rows (``msdb.backupset``)
by the DAGs; the restore planner takes either.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["BackupType", "DatabaseFile", "BackupSetHeader", "lsn_from_parts"]

BackupType = Literal["FULL", "DIFF", "LOG"]


def lsn_from_parts(vlf: int, block: int, slot: int) -> int:
    """SQL Server's decimal LSN from its three parts (virtual log file, block, slot)."""
    return vlf * 10**15 + block * 10**5 + slot


@dataclass(frozen=True)
class DatabaseFile:
    """One row of RESTORE FILELISTONLY."""

    logical_name: str
    physical_name: str
    type: Literal["D", "L", "F", "S", "?"]  # data, log, full-text catalog, FILESTREAM, not known


@dataclass(frozen=True)
class BackupSetHeader:
    """One backup set, as RESTORE HEADERONLY reports it, plus where it was read from."""

    path: str
    position: int
    database_name: str
    server_name: str
    backup_type: BackupType
    first_lsn: int
    last_lsn: int
    checkpoint_lsn: int
    database_backup_lsn: int
    backup_start_date: dt.datetime
    backup_finish_date: dt.datetime
    database_creation_date: dt.datetime
    compressed: bool
    software_version: str
    media_set_id: str
    family_count: int
    family_sequence: int
    password_protected: bool = False
    copy_only: bool = False
    backup_set_id: str = ""  # the set's GUID: the same in every stripe of one set
    files: tuple[DatabaseFile, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        """The CLI's JSON object: LSNs as the decimal integers SQL Server prints (exact in JSON's text; they
        exceed 2**53, so JavaScript readers need a big-integer parser), dates in ISO 8601."""
        return {
            "path": self.path,
            "position": self.position,
            "database_name": self.database_name,
            "server_name": self.server_name,
            "backup_type": self.backup_type,
            "first_lsn": self.first_lsn,
            "last_lsn": self.last_lsn,
            "checkpoint_lsn": self.checkpoint_lsn,
            "database_backup_lsn": self.database_backup_lsn,
            "backup_start_date": self.backup_start_date.isoformat(),
            "backup_finish_date": self.backup_finish_date.isoformat(),
            "database_creation_date": self.database_creation_date.isoformat(),
            "compressed": self.compressed,
            "software_version": self.software_version,
            "media_set_id": self.media_set_id,
            "family_count": self.family_count,
            "family_sequence": self.family_sequence,
            "password_protected": self.password_protected,
            "copy_only": self.copy_only,
            "files": [{"logical_name": f.logical_name, "physical_name": f.physical_name, "type": f.type}
                      for f in self.files],
        }
