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


@dataclass(frozen=True, slots=True)  # a catalog holds hundreds of thousands
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
    copy_only: bool | None = False  # None: not known (read from a file: where the flag is, is not known)
    backup_set_id: str = ""  # the set's GUID (BackupSetGUID): the same in every stripe of one set
    files: tuple[DatabaseFile, ...] = field(default=())
    # Identity (RESTORE HEADERONLY's names in the comments); None where not known
    family_guid: str | None = None          # FamilyGUID: the database as created, kept through restores
    database_guid: str | None = None        # BindingID: this copy of it, new after each restore
    recovery_fork_id: str | None = None     # RecoveryForkID: the recovery branch the set ends on
    branch_parent_id: str | None = None     # the branch that one forked from (None: it never forked) ...
    branch_lsn: int | None = None           # ... and the LSN where it did (the fork point)
    differential_base_guid: str | None = None  # DifferentialBaseGUID: the base full's BackupSetGUID (differentials)
    differential_base_lsn: int | None = None   # DifferentialBaseLSN: the base full's FirstLSN (differentials)

    @property
    def first_recovery_fork_id(self) -> str | None:
        """FirstRecoveryForkID: the branch of the set's first LSN — the parent for a log that spans the fork
        point, the set's own branch otherwise ("For data backups, FirstRecoveryForkID equals RecoveryForkID")."""
        return self.branch_parent_id if self.spans_fork_point else self.recovery_fork_id

    @property
    def fork_point_lsn(self) -> int | None:
        """ForkPointLSN: the fork point when FirstRecoveryForkID is not RecoveryForkID, else None."""
        return self.branch_lsn if self.spans_fork_point else None

    @property
    def spans_fork_point(self) -> bool:
        return (self.backup_type == "LOG" and self.branch_lsn is not None and self.branch_parent_id is not None
                and self.first_lsn < self.branch_lsn)

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
            "backup_set_guid": self.backup_set_id or None,
            "family_guid": self.family_guid,
            "database_guid": self.database_guid,
            "recovery_fork_id": self.recovery_fork_id,
            "first_recovery_fork_id": self.first_recovery_fork_id,
            "fork_point_lsn": self.fork_point_lsn,
            "branch_parent_id": self.branch_parent_id,
            "branch_lsn": self.branch_lsn,
            "differential_base_guid": self.differential_base_guid,
            "differential_base_lsn": self.differential_base_lsn,
            "files": [{"logical_name": f.logical_name, "physical_name": f.physical_name, "type": f.type}
                      for f in self.files],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], path: str | None = None) -> BackupSetHeader:
        """The header :meth:`as_json` wrote (a shipped file's manifest keeps it), read from ``path`` when given.
        Fields derived from others (``first_recovery_fork_id``, ``fork_point_lsn``) are not read back."""
        def date(name: str) -> dt.datetime:
            return dt.datetime.fromisoformat(data[name])

        return cls(
            path=path if path is not None else data["path"], position=int(data["position"]),
            database_name=data["database_name"], server_name=data["server_name"], backup_type=data["backup_type"],
            first_lsn=int(data["first_lsn"]), last_lsn=int(data["last_lsn"]),
            checkpoint_lsn=int(data["checkpoint_lsn"]), database_backup_lsn=int(data["database_backup_lsn"]),
            backup_start_date=date("backup_start_date"), backup_finish_date=date("backup_finish_date"),
            database_creation_date=date("database_creation_date"), compressed=bool(data["compressed"]),
            software_version=data["software_version"], media_set_id=data["media_set_id"],
            family_count=int(data["family_count"]), family_sequence=int(data["family_sequence"]),
            password_protected=bool(data.get("password_protected", False)), copy_only=data.get("copy_only"),
            backup_set_id=data.get("backup_set_guid") or "",
            files=tuple(DatabaseFile(f["logical_name"], f["physical_name"], f["type"]) for f in data.get("files", ())),
            family_guid=data.get("family_guid"), database_guid=data.get("database_guid"),
            recovery_fork_id=data.get("recovery_fork_id"), branch_parent_id=data.get("branch_parent_id"),
            branch_lsn=data.get("branch_lsn"), differential_base_guid=data.get("differential_base_guid"),
            differential_base_lsn=data.get("differential_base_lsn"))
