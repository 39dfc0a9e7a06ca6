"""The server catalog in master (sys.databases, sys.master_files) and the history tables of msdb.

Column names and codes are SQL Server's ("sys.databases (Transact-SQL)", "sys.master_files",
"backupset", "backupmediafamily", "backupmediaset", "restorehistory", "logmarkhistory",
"dbo.sysjobs" pages of the sql-docs repository); only the columns the stand-in can fill truthfully
exist. The stand-in's private state of a database (its file, LSN bookmarks of the backup chain) is
in ``"standin.databases"``, never visible through sys.*.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass

__all__ = ["MASTER_SCHEMA", "MSDB_SCHEMA", "DatabaseInfo", "Catalog", "STATE_CODES", "RECOVERY_CODES",
           "SYSTEM_DATABASES", "now_text"]

STATE_CODES = {"ONLINE": 0, "RESTORING": 1, "RECOVERING": 2, "RECOVERY_PENDING": 3, "SUSPECT": 4,
               "EMERGENCY": 5, "OFFLINE": 6}
RECOVERY_CODES = {"FULL": 1, "BULK_LOGGED": 2, "SIMPLE": 3}
# name -> (database_id, recovery model) as a fresh SQL Server 2022 instance has them
SYSTEM_DATABASES = {"master": (1, "SIMPLE"), "tempdb": (2, "SIMPLE"), "model": (3, "FULL"), "msdb": (4, "SIMPLE")}

MASTER_SCHEMA = """
CREATE TABLE IF NOT EXISTS "sys.databases" (
    name nvarchar(128) NOT NULL COLLATE NOCASE UNIQUE, database_id int NOT NULL PRIMARY KEY,
    source_database_id int, owner_sid varbinary(85), create_date datetime NOT NULL,
    compatibility_level tinyint NOT NULL, collation_name nvarchar(128), user_access tinyint NOT NULL,
    user_access_desc nvarchar(60) NOT NULL, is_read_only bit NOT NULL, is_auto_close_on bit NOT NULL,
    state tinyint NOT NULL, state_desc nvarchar(60) NOT NULL, is_in_standby bit NOT NULL,
    recovery_model tinyint NOT NULL, recovery_model_desc nvarchar(60) NOT NULL,
    log_reuse_wait tinyint NOT NULL, log_reuse_wait_desc nvarchar(60) NOT NULL);
CREATE TABLE IF NOT EXISTS "sys.master_files" (
    database_id int NOT NULL, file_id int NOT NULL, type tinyint NOT NULL, type_desc nvarchar(60) NOT NULL,
    data_space_id int NOT NULL, name nvarchar(128) NOT NULL, physical_name nvarchar(260) NOT NULL,
    state tinyint NOT NULL, state_desc nvarchar(60) NOT NULL, size int NOT NULL, max_size int NOT NULL,
    growth int NOT NULL, PRIMARY KEY (database_id, file_id));
CREATE TABLE IF NOT EXISTS "standin.databases" (
    database_id INTEGER PRIMARY KEY, file TEXT NOT NULL,
    chain_base_seq INTEGER,      -- log chain start (a full backup in FULL recovery); NULL = no chain
    last_full_seq INTEGER,       -- CheckpointLSN of the newest non-copy-only full: DatabaseBackupLSN/diff base
    last_log_backup_seq INTEGER, -- LastLSN of the newest log backup (next log backup's FirstLSN)
    redo_seq INTEGER,            -- while RESTORING: the LSN the next log backup must include
    restore_full_seq INTEGER,    -- while RESTORING: CheckpointLSN of the full it started from
    corrupt INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS "standin.server" (key TEXT PRIMARY KEY, value TEXT);
"""

MSDB_SCHEMA = """
CREATE TABLE IF NOT EXISTS "dbo.backupmediaset" (
    media_set_id INTEGER PRIMARY KEY AUTOINCREMENT, media_uuid uniqueidentifier, media_family_count tinyint,
    name nvarchar(128), description nvarchar(255), software_name nvarchar(128), software_vendor_id int,
    MTF_major_version tinyint, mirror_count tinyint, is_password_protected bit, is_compressed bit,
    is_encrypted bit);
CREATE TABLE IF NOT EXISTS "dbo.backupmediafamily" (
    media_set_id int NOT NULL, family_sequence_number tinyint NOT NULL, media_family_id uniqueidentifier,
    media_count int, logical_device_name nvarchar(128), physical_device_name nvarchar(260),
    device_type tinyint, physical_block_size int, mirror tinyint NOT NULL);
CREATE TABLE IF NOT EXISTS "dbo.backupset" (
    backup_set_id INTEGER PRIMARY KEY AUTOINCREMENT, backup_set_uuid uniqueidentifier NOT NULL,
    media_set_id int NOT NULL, first_family_number tinyint, first_media_number smallint,
    last_family_number tinyint, last_media_number smallint, position int, expiration_date datetime,
    name nvarchar(128), description nvarchar(255), user_name nvarchar(128), software_major_version tinyint,
    software_minor_version tinyint, software_build_version smallint, time_zone smallint,
    first_lsn numeric(25,0), last_lsn numeric(25,0), checkpoint_lsn numeric(25,0),
    database_backup_lsn numeric(25,0), database_creation_date datetime, backup_start_date datetime,
    backup_finish_date datetime, type char(1), compatibility_level tinyint, database_version int,
    backup_size numeric(20,0), database_name nvarchar(128), server_name nvarchar(128),
    machine_name nvarchar(128), recovery_model nvarchar(60), has_backup_checksums bit, is_damaged bit,
    begins_log_chain bit, is_copy_only bit, database_guid uniqueidentifier, family_guid uniqueidentifier,
    differential_base_lsn numeric(25,0), compressed_backup_size numeric(20,0));
CREATE TABLE IF NOT EXISTS "dbo.restorehistory" (
    restore_history_id INTEGER PRIMARY KEY AUTOINCREMENT, restore_date datetime,
    destination_database_name nvarchar(128), user_name nvarchar(128), backup_set_id int NOT NULL,
    restore_type char(1), replace bit, recovery bit, restart bit, stop_at datetime, device_count tinyint,
    stop_at_mark_name nvarchar(128), stop_before bit);
CREATE TABLE IF NOT EXISTS "dbo.logmarkhistory" (
    database_name nvarchar(128) NOT NULL, mark_name nvarchar(128) NOT NULL, description nvarchar(255),
    user_name nvarchar(128) NOT NULL, lsn numeric(25,0) NOT NULL, mark_time datetime NOT NULL);
CREATE TABLE IF NOT EXISTS "dbo.sysjobs" (
    job_id uniqueidentifier NOT NULL PRIMARY KEY, originating_server_id int NOT NULL,
    name nvarchar(128) NOT NULL COLLATE NOCASE UNIQUE, enabled tinyint NOT NULL, description nvarchar(512),
    start_step_id int NOT NULL, category_id int NOT NULL, owner_sid varbinary(85), date_created datetime NOT NULL,
    date_modified datetime NOT NULL, version_number int NOT NULL);
CREATE TABLE IF NOT EXISTS "dbo.sysjobsteps" (
    job_id uniqueidentifier NOT NULL, step_id int NOT NULL, step_name nvarchar(128) NOT NULL,
    subsystem nvarchar(40) NOT NULL, command nvarchar(4000), database_name nvarchar(128),
    PRIMARY KEY (job_id, step_id));
CREATE TABLE IF NOT EXISTS "dbo.sysschedules" (
    schedule_id INTEGER PRIMARY KEY AUTOINCREMENT, name nvarchar(128) NOT NULL, enabled int NOT NULL,
    freq_type int NOT NULL, freq_interval int NOT NULL, freq_subday_type int NOT NULL,
    freq_subday_interval int NOT NULL, active_start_time int NOT NULL);
CREATE TABLE IF NOT EXISTS "dbo.sysjobschedules" (
    schedule_id int NOT NULL, job_id uniqueidentifier NOT NULL, next_run_date int NOT NULL,
    next_run_time int NOT NULL);
"""


def now_text(clock: dt.datetime | None = None) -> str:
    """SQL Server datetime as the stand-in stores it: local time, millisecond precision."""
    value = clock or dt.datetime.now()
    return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"


@dataclass
class DatabaseInfo:
    database_id: int
    name: str
    state_desc: str
    recovery_model_desc: str
    is_in_standby: bool
    is_read_only: bool
    create_date: str
    file: str
    chain_base_seq: int | None
    last_full_seq: int | None
    last_log_backup_seq: int | None
    redo_seq: int | None
    restore_full_seq: int | None
    corrupt: bool

    @property
    def restoring(self) -> bool:
        return self.state_desc == "RESTORING" or self.is_in_standby


_SELECT = """
SELECT d.database_id, d.name, d.state_desc, d.recovery_model_desc, d.is_in_standby, d.is_read_only, d.create_date,
       s.file, s.chain_base_seq, s.last_full_seq, s.last_log_backup_seq, s.redo_seq, s.restore_full_seq, s.corrupt
FROM "sys.databases" d JOIN "standin.databases" s ON s.database_id = d.database_id
"""


class Catalog:
    """Reads and writes the catalog tables of master; callers own the transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def all(self) -> list[DatabaseInfo]:
        return [self._info(r) for r in self.conn.execute(_SELECT + " ORDER BY d.database_id")]

    def get(self, name: str) -> DatabaseInfo | None:
        row = self.conn.execute(_SELECT + " WHERE d.name = ? COLLATE NOCASE", (name,)).fetchone()
        return self._info(row) if row else None

    def by_id(self, database_id: int) -> DatabaseInfo | None:
        row = self.conn.execute(_SELECT + " WHERE d.database_id = ?", (database_id,)).fetchone()
        return self._info(row) if row else None

    @staticmethod
    def _info(row: tuple) -> DatabaseInfo:
        return DatabaseInfo(row[0], row[1], row[2], row[3], bool(row[4]), bool(row[5]), row[6], row[7], row[8],
                            row[9], row[10], row[11], row[12], bool(row[13]))

    def next_id(self) -> int:
        (top,) = self.conn.execute('SELECT MAX(database_id) FROM "sys.databases"').fetchone()
        return max(top or 0, 4) + 1

    def add(self, *, database_id: int, name: str, file: str, recovery: str, state: str, create_date: str,
            files: list[tuple[str, str, str]]) -> None:
        """files: (logical name, physical name, 'ROWS'|'LOG')."""
        self.conn.execute(
            'INSERT INTO "sys.databases" (name, database_id, create_date, compatibility_level, collation_name, '
            "user_access, user_access_desc, is_read_only, is_auto_close_on, state, state_desc, is_in_standby, "
            "recovery_model, recovery_model_desc, log_reuse_wait, log_reuse_wait_desc) "
            "VALUES (?, ?, ?, 160, 'SQL_Latin1_General_CP1_CI_AS', 0, 'MULTI_USER', 0, 0, ?, ?, 0, ?, ?, 0, 'NOTHING')",
            (name, database_id, create_date, STATE_CODES[state], state, RECOVERY_CODES[recovery], recovery))
        self.conn.execute('INSERT INTO "standin.databases" (database_id, file) VALUES (?, ?)', (database_id, file))
        self.set_files(database_id, files)

    def set_files(self, database_id: int, files: list[tuple[str, str, str]]) -> None:
        self.conn.execute('DELETE FROM "sys.master_files" WHERE database_id = ?', (database_id,))
        for file_id, (logical, physical, kind) in enumerate(files, start=1):
            self.conn.execute(
                'INSERT INTO "sys.master_files" (database_id, file_id, type, type_desc, data_space_id, name, '
                "physical_name, state, state_desc, size, max_size, growth) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 'ONLINE', "
                "?, -1, 8192)",
                (database_id, file_id, 0 if kind == "ROWS" else 1, kind, 1 if kind == "ROWS" else 0, logical, physical,
                 1024 if kind == "ROWS" else 1024))

    def files(self, database_id: int) -> list[tuple[str, str, str]]:
        return [(r[0], r[1], r[2]) for r in self.conn.execute(
            'SELECT name, physical_name, type_desc FROM "sys.master_files" WHERE database_id = ? ORDER BY file_id',
            (database_id,))]

    def file_owner(self, physical_name: str) -> str | None:
        row = self.conn.execute(
            'SELECT d.name FROM "sys.master_files" f JOIN "sys.databases" d ON d.database_id = f.database_id '
            "WHERE f.physical_name = ? COLLATE NOCASE", (physical_name,)).fetchone()
        return row[0] if row else None

    def set_state(self, database_id: int, state: str, *, standby: bool = False, read_only: bool | None = None) -> None:
        self.conn.execute(
            'UPDATE "sys.databases" SET state = ?, state_desc = ?, is_in_standby = ?, is_read_only = ? '
            "WHERE database_id = ?",
            (STATE_CODES[state], state, int(standby), int(standby if read_only is None else read_only), database_id))

    def set_recovery(self, database_id: int, model: str) -> None:
        self.conn.execute('UPDATE "sys.databases" SET recovery_model = ?, recovery_model_desc = ? WHERE database_id = ?',
                          (RECOVERY_CODES[model], model, database_id))

    def update(self, database_id: int, **private: object) -> None:
        allowed = {"file", "chain_base_seq", "last_full_seq", "last_log_backup_seq", "redo_seq", "restore_full_seq",
                   "corrupt"}
        if not private or set(private) - allowed:
            raise ValueError(f"unknown private database fields {sorted(set(private) - allowed)}")
        assignments = ", ".join(f"{k} = ?" for k in private)
        self.conn.execute(f'UPDATE "standin.databases" SET {assignments} WHERE database_id = ?',
                          (*private.values(), database_id))

    def remove(self, database_id: int) -> None:
        for table in ('"sys.databases"', '"standin.databases"', '"sys.master_files"'):
            self.conn.execute(f"DELETE FROM {table} WHERE database_id = ?", (database_id,))

    def setting(self, key: str) -> str | None:
        row = self.conn.execute('SELECT value FROM "standin.server" WHERE key = ?', (key,)).fetchone()
        return row[0] if row else None

    def set_setting(self, key: str, value: str) -> None:
        self.conn.execute('INSERT OR REPLACE INTO "standin.server" (key, value) VALUES (?, ?)', (key, value))
