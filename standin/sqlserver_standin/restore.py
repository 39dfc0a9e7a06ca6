"""RESTORE DATABASE / LOG / HEADERONLY / FILELISTONLY / VERIFYONLY, and DBCC CHECKDB.

Rules modelled ("RESTORE Statements (Transact-SQL)", "RESTORE Arguments", "Apply Transaction Log
Backups", "Use Marked Transactions to Recover Related Databases Consistently", biztalk-dr.md
section 6):
- RESTORE without NORECOVERY recovers (RECOVERY is the default); a RESTORING database accepts
  differentials and logs; an ONLINE one refuses them with 3117;
- a log backup applies when FirstLSN <= the database's redo point < LastLSN: 4326 when it ends at or
  before the redo point (already applied), 4305 when it begins after it (a gap);
- a differential applies only on its base full (3136);
- STOPATMARK includes the marked transaction, STOPBEFOREMARK excludes it; a log backup that ends
  before the mark leaves the database RESTORING with 4329 even if RECOVERY was asked for;
- a full restore over an existing database of another identity needs REPLACE (3154), over an ONLINE
  database in FULL recovery whose log tail was not backed up needs REPLACE or NORECOVERY tail (3159);
- MOVE renames files (3234 for an unknown logical name); a file in use by another database is 1834,
  a missing folder 5133, both followed by 3156;
- exclusive access: another session in the database gives 3101;
- RESTORE ... WITH CHECKSUM on a backup without checksums fails with 3187 (BizTalk's never have them);
- msdb.dbo.restorehistory records every restore (stop_at_mark_name for STOPATMARK).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from sqlserver_standin import commands as cmd
from sqlserver_standin import recovery_forks, txlog
from sqlserver_standin.backup import (
    completion_messages,
    first_recovery_fork,
    media_sql_error,
    record_backupset,
    terminating,
)
from sqlserver_standin.backup_io import BackupSetHeader, MediaError, read_headers, read_payload
from sqlserver_standin.catalog import DatabaseInfo, now_text
from sqlserver_standin.databases import new_database_file
from sqlserver_standin.events import Column, Event, Message, ResultSet, SqlType
from sqlserver_standin.lsn import lsn_from_seq, seq_from_lsn
from sqlserver_standin.messages import SqlError, info, sql_error
from sqlserver_standin.storage import INTERNAL_PREFIX, atomic_write, family_guid

if TYPE_CHECKING:
    from sqlserver_standin.engine import Runner

__all__ = ["run_restore", "run_checkdb", "HEADER_COLUMNS", "FILELIST_COLUMNS"]

_TYPE_NAMES = {1: "Database", 2: "Transaction Log", 5: "Database Differential"}


def _nv(name: str, length: int | None = 128) -> Column:
    return Column(name, SqlType.NVARCHAR, True, length)


def _lsn(name: str) -> Column:
    return Column(name, SqlType.NUMERIC, True, None, 25, 0)


# RESTORE HEADERONLY's columns that the stand-in fills truthfully, in SQL Server's order and types.
HEADER_COLUMNS = (
    _nv("BackupName"), _nv("BackupDescription", 255), Column("BackupType", SqlType.SMALLINT),
    Column("ExpirationDate", SqlType.DATETIME), Column("Compressed", SqlType.BIT), Column("Position", SqlType.SMALLINT),
    Column("DeviceType", SqlType.TINYINT), _nv("UserName"), _nv("ServerName"), _nv("DatabaseName"),
    Column("DatabaseVersion", SqlType.INT), Column("DatabaseCreationDate", SqlType.DATETIME),
    Column("BackupSize", SqlType.NUMERIC, True, None, 20, 0), _lsn("FirstLSN"), _lsn("LastLSN"),
    _lsn("CheckpointLSN"), _lsn("DatabaseBackupLSN"), Column("BackupStartDate", SqlType.DATETIME),
    Column("BackupFinishDate", SqlType.DATETIME), Column("CompatibilityLevel", SqlType.TINYINT),
    Column("SoftwareVersionMajor", SqlType.INT), Column("SoftwareVersionMinor", SqlType.INT),
    Column("SoftwareVersionBuild", SqlType.INT), _nv("MachineName"), Column("BindingID", SqlType.UNIQUEIDENTIFIER),
    Column("RecoveryForkID", SqlType.UNIQUEIDENTIFIER), Column("FamilyGUID", SqlType.UNIQUEIDENTIFIER),
    Column("HasBackupChecksums", SqlType.BIT), Column("IsDamaged", SqlType.BIT), Column("IsCopyOnly", SqlType.BIT),
    Column("FirstRecoveryForkID", SqlType.UNIQUEIDENTIFIER), _lsn("ForkPointLSN"),
    _nv("RecoveryModel", 60), _lsn("DifferentialBaseLSN"), Column("DifferentialBaseGUID", SqlType.UNIQUEIDENTIFIER),
    _nv("BackupTypeDescription", 60),
    Column("BackupSetGUID", SqlType.UNIQUEIDENTIFIER), Column("CompressedBackupSize", SqlType.NUMERIC, True, None, 20, 0),
)
FILELIST_COLUMNS = (
    _nv("LogicalName"), _nv("PhysicalName", 260), Column("Type", SqlType.NVARCHAR, True, 1), _nv("FileGroupName"),
    Column("Size", SqlType.NUMERIC, True, None, 20, 0), Column("MaxSize", SqlType.NUMERIC, True, None, 20, 0),
    Column("FileId", SqlType.BIGINT),
)


def _guid(text: str) -> str | None:
    if not text:
        return None
    hexed = text.replace("-", "")
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:32]}".upper()


def _header_row(h: BackupSetHeader) -> tuple:
    first_fork, fork_point = first_recovery_fork(h)
    return (h.backup_name, h.description, h.backup_type, None, h.compressed, h.position, 2, h.user_name, h.server_name,
            h.database_name, 957, h.database_creation_date, Decimal(h.backup_size), h.first_lsn, h.last_lsn,
            h.checkpoint_lsn, h.database_backup_lsn, h.backup_start_date, h.backup_finish_date, 160, 16, 0, 1000,
            h.machine_name, _guid(h.binding_guid), _guid(h.recovery_fork_guid), _guid(h.family_guid), h.has_checksums,
            False, h.is_copy_only, _guid(first_fork), fork_point, h.recovery_model,
            h.database_backup_lsn if h.backup_type == 5 else None,
            _guid(h.differential_base_guid or "") if h.backup_type == 5 else None, _TYPE_NAMES[h.backup_type],
            _guid(h.backup_set_guid), Decimal(h.backup_size))


def run_restore(runner: Runner, parsed: cmd.Restore) -> list[Event]:
    statement = "RESTORE " + ("LOG" if parsed.kind == "LOG" else "DATABASE" if parsed.kind == "DATABASE" else parsed.kind)
    database = str(runner.value(parsed.database)) if parsed.database is not None else ""
    try:
        paths = [str(runner.value(d)) for d in parsed.disks]
        if parsed.kind == "HEADERONLY":
            headers = read_headers(paths)
            return [ResultSet(HEADER_COLUMNS, [_header_row(h) for h in headers])]
        position = _position(runner, parsed)
        if parsed.kind == "FILELISTONLY":
            header = _set_header(paths, position)
            return [ResultSet(FILELIST_COLUMNS, [
                (f.logical_name, f.physical_name, f.type, "PRIMARY" if f.type == "D" else None, Decimal(f.size),
                 Decimal(35184372080640), i) for i, f in enumerate(header.files, start=1)])]
        if parsed.kind == "VERIFYONLY":
            positions = [position] if "FILE" in parsed.options else [h.position for h in read_headers(paths)]
            for p in positions:
                read_payload(paths, p)
            return [info(3262, p) for p in positions]
        if parsed.kind == "LABELONLY":
            raise cmd.not_modelled("RESTORE LABELONLY")
        if not paths:
            return _recover_only(runner, database)
        return _restore(runner, parsed, database, paths, position, statement)
    except MediaError as exc:
        raise terminating(media_sql_error(exc, database), statement) from None
    except SqlError as exc:
        raise terminating(exc, statement) from None


def _position(runner: Runner, parsed: cmd.Restore) -> int:
    value = parsed.options.get("FILE")
    return int(runner.value(value)) if isinstance(value, cmd.Value) else 1


def _set_header(paths: list[str], position: int) -> BackupSetHeader:
    headers = read_headers(paths)
    if not 1 <= position <= len(headers):
        raise MediaError(3203, paths[0], f"38(Reached the end of the file.) position {position}")
    return headers[position - 1]


def _recover_only(runner: Runner, name: str) -> list[Event]:
    """RESTORE DATABASE x WITH RECOVERY: end the restore sequence where it is."""
    engine = runner.engine
    db_info = engine.catalog.get(name)
    if db_info is None:
        raise sql_error(911, name)
    if not db_info.restoring:
        raise sql_error(3117)
    _bring_online(runner, db_info, db_info.redo_seq or 0)
    return [Message(3014, 10, 1, "RESTORE DATABASE successfully processed 0 pages in 0.001 seconds (0.000 MB/sec).")]


def _bring_online(runner: Runner, db_info: DatabaseInfo, applied_to: int) -> None:
    """Recovery: the database opens; in FULL recovery its chain continues from the restored backups."""
    engine = runner.engine
    db = engine.handle(db_info)
    keeps_log = db_info.recovery_model_desc in ("FULL", "BULK_LOGGED")
    db.conn.execute("BEGIN IMMEDIATE")
    recovery_forks.save(db.conn, recovery_forks.after_recovery(recovery_forks.current(db.conn), applied_to))
    txlog.set_logging(db.conn, keeps_log)
    db.conn.execute(f"UPDATE {INTERNAL_PREFIX}lsn SET seq = MAX(seq, ?)", (applied_to,))
    db.conn.execute("COMMIT")
    engine.master.execute("BEGIN IMMEDIATE")
    engine.catalog.set_state(db_info.database_id, "ONLINE")
    engine.catalog.update(db_info.database_id, redo_seq=None,
                          chain_base_seq=db_info.restore_full_seq if keeps_log else None,
                          last_log_backup_seq=applied_to if keeps_log else None)
    engine.master.execute("COMMIT")


def _stop(runner: Runner, options: dict) -> txlog.Stop | None:
    def text(key: str) -> str | None:
        value = options.get(key)
        return str(runner.value(value)) if isinstance(value, cmd.Value) else None

    after = text("AFTER")
    if text("STOPATMARK") or text("STOPBEFOREMARK"):
        mark = text("STOPATMARK") or text("STOPBEFOREMARK")
        if mark.lower().startswith("lsn:"):  # 'lsn:X': the log record at X, included by STOPATMARK
            return txlog.Stop(lsn=_lsn_value(mark[4:]), include_mark=text("STOPATMARK") is not None)
        return txlog.Stop(mark=mark, include_mark=text("STOPATMARK") is not None,
                          after=dt.datetime.fromisoformat(after.replace("T", " ")) if after else None)
    if text("STOPAT"):
        return txlog.Stop(at_time=dt.datetime.fromisoformat(text("STOPAT").replace("T", " ")))
    return None


def _lsn_value(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise sql_error(4334) from None


def _restore(runner: Runner, parsed: cmd.Restore, name: str, paths: list[str], position: int,
             statement: str) -> list[Event]:
    engine = runner.engine
    options = parsed.options
    if "STANDBY" in options:
        raise cmd.not_modelled("RESTORE ... WITH STANDBY (BizTalk's standby databases are RESTORING)")
    header, payload = read_payload(paths, position)
    if engine.faults.consume("restore_damaged", match="\n".join(paths)) is not None:
        raise sql_error(3183, 1, 1, header.database_name)  # as read from the backup set: a read error, file unchanged
    if "CHECKSUM" in options and not header.has_checksums:
        raise sql_error(3187)
    if (parsed.kind == "LOG") != (header.backup_type == 2):
        raise sql_error(3135, paths[0], {1: "BACKUP DATABASE", 2: "BACKUP LOG", 5: "BACKUP DATABASE"}[header.backup_type])
    existing = engine.catalog.get(name)
    if existing is not None:
        if engine.faults.find("database_in_use", database=existing.name) is not None or engine.sessions_using(
                existing.name, besides=runner.state.session.spid):
            raise sql_error(3101)
    if (slow := engine.faults.find("slow_restore")) is not None:
        _held(engine, float(slow["seconds"]))  # the restore in progress holds its database meanwhile
    clock = time.monotonic()
    recovery = "NORECOVERY" not in options
    stop = _stop(runner, options)
    if header.backup_type == 1:
        db_info = _restore_full(runner, parsed, name, existing, header, payload, recovery=recovery)
        applied_to, reached, messages = seq_from_lsn(header.last_lsn), True, []
    elif header.backup_type == 5:
        db_info = _restore_diff(runner, name, existing, header, payload)
        applied_to, reached, messages = seq_from_lsn(header.last_lsn), True, []
    else:
        db_info, applied_to, reached, messages = _restore_log(runner, name, existing, header, payload, stop)
    if recovery and reached:
        _bring_online(runner, engine.catalog.by_id(db_info.database_id), applied_to)
    _record(runner, header, paths, position, db_info.name, parsed, stop, recovery and reached)
    verb = "RESTORE LOG" if header.backup_type == 2 else "RESTORE DATABASE"
    return [*messages, *completion_messages(verb, db_info.name, header.files, position, header.backup_size,
                                            time.monotonic() - clock)]


def _held(engine, seconds: float) -> None:  # noqa: ANN001 - the Engine
    """The slow_restore fault's wait, ended early when the fault is cleared: a test holds a restore in
    progress exactly as long as it needs (until it clears the fault), not a guessed number of seconds."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0 and engine.faults.find("slow_restore") is not None:
        time.sleep(min(left, 0.2))


def _target_files(runner: Runner, parsed: cmd.Restore, header: BackupSetHeader,
                  existing: DatabaseInfo | None) -> list[tuple[str, str, str]]:
    engine = runner.engine
    moves = {str(runner.value(logical)).lower(): str(runner.value(physical)) for logical, physical in parsed.moves}
    logical_names = {f.logical_name.lower() for f in header.files}
    for logical in moves:
        if logical not in logical_names:
            raise sql_error(3234, logical, header.database_name)
    files = []
    for f in header.files:
        physical = moves.get(f.logical_name.lower(), f.physical_name)
        owner = engine.catalog.file_owner(physical)
        if owner is not None and (existing is None or owner.lower() != existing.name.lower()):
            raise sql_error(1834, physical, owner, extra=(info_error(3156, f.logical_name, physical),))
        folder = os.path.dirname(physical.replace("\\", "/")) or "."
        if not Path(folder).is_dir():
            raise sql_error(5133, physical, "2(The system cannot find the file specified.)",
                            extra=(info_error(3156, f.logical_name, physical),))
        files.append((f.logical_name, physical, "ROWS" if f.type == "D" else "LOG"))
    return files


def info_error(number: int, *args: object) -> Message:
    error = sql_error(number, *args)
    return Message(error.number, error.severity, error.state, error.text)


def _restore_full(runner: Runner, parsed: cmd.Restore, name: str, existing: DatabaseInfo | None,
                  header: BackupSetHeader, payload: bytes, *, recovery: bool) -> DatabaseInfo:
    engine = runner.engine
    replace_ = "REPLACE" in parsed.options
    if existing is not None and not replace_:
        same = _family_guid(runner, existing) == header.family_guid
        if not same:
            raise sql_error(3154, existing.name)
        if (not existing.restoring and existing.recovery_model_desc != "SIMPLE"
                and existing.chain_base_seq is not None):
            raise sql_error(3159, existing.name)
    files = _target_files(runner, parsed, header, existing)
    checkpoint = seq_from_lsn(header.checkpoint_lsn)
    file = new_database_file(name)
    atomic_write(engine.dir.root / file, payload)
    conn = engine._open(engine.dir.root / file)
    conn.execute("BEGIN IMMEDIATE")
    txlog.reset_after_restore(conn, seq=checkpoint)
    conn.execute("COMMIT")
    conn.close()
    engine.master.execute("BEGIN IMMEDIATE")
    try:
        if existing is not None:
            engine.close_handle(existing.database_id)
            old_file = engine.dir.root / existing.file
            engine.catalog.remove(existing.database_id)
            database_id = existing.database_id
        else:
            old_file = None
            database_id = engine.catalog.next_id()
        engine.catalog.add(database_id=database_id, name=existing.name if existing else name, file=file,
                           recovery=header.recovery_model, state="RESTORING",
                           create_date=now_text(header.database_creation_date), files=files)
        engine.catalog.update(database_id, chain_base_seq=None, last_full_seq=checkpoint,
                              last_log_backup_seq=None, redo_seq=seq_from_lsn(header.last_lsn),
                              restore_full_seq=checkpoint, corrupt=0)
        engine.master.execute("COMMIT")
    except BaseException:
        engine.master.execute("ROLLBACK")
        (engine.dir.root / file).unlink(missing_ok=True)
        raise
    if old_file is not None:
        old_file.unlink(missing_ok=True)
    return engine.catalog.by_id(database_id)


def _family_guid(runner: Runner, db_info: DatabaseInfo) -> str:
    return family_guid(runner.engine.handle(db_info).conn)


def _restoring(runner: Runner, name: str, existing: DatabaseInfo | None, header: BackupSetHeader) -> DatabaseInfo:
    if existing is None:
        raise sql_error(3118, name)
    if not existing.restoring or existing.redo_seq is None:
        raise sql_error(3117)
    if _family_guid(runner, existing) != header.family_guid:
        raise sql_error(3154, existing.name)
    return existing


def _restore_diff(runner: Runner, name: str, existing: DatabaseInfo | None, header: BackupSetHeader,
                  payload: bytes) -> DatabaseInfo:
    engine = runner.engine
    db_info = _restoring(runner, name, existing, header)
    if db_info.restore_full_seq is None or seq_from_lsn(header.database_backup_lsn) != db_info.restore_full_seq:
        raise sql_error(3136)
    _check_recovery_path(runner, db_info, header)
    file = new_database_file(db_info.name)
    atomic_write(engine.dir.root / file, payload)
    conn = engine._open(engine.dir.root / file)
    conn.execute("BEGIN IMMEDIATE")
    txlog.reset_after_restore(conn, seq=seq_from_lsn(header.checkpoint_lsn))
    conn.execute("COMMIT")
    conn.close()
    engine.close_handle(db_info.database_id)
    old_file = engine.dir.root / db_info.file
    engine.master.execute("BEGIN IMMEDIATE")
    engine.catalog.update(db_info.database_id, file=file, redo_seq=seq_from_lsn(header.last_lsn))
    engine.master.execute("COMMIT")
    old_file.unlink(missing_ok=True)
    return engine.catalog.by_id(db_info.database_id)


def _restore_log(runner: Runner, name: str, existing: DatabaseInfo | None, header: BackupSetHeader,
                 payload: bytes, stop: txlog.Stop | None) -> tuple[DatabaseInfo, int, bool, list[Message]]:
    engine = runner.engine
    db_info = _restoring(runner, name, existing, header)
    first, last, redo = seq_from_lsn(header.first_lsn), seq_from_lsn(header.last_lsn), db_info.redo_seq
    if last <= redo:
        raise sql_error(4326, str(header.last_lsn), str(lsn_from_seq(redo)))
    if first > redo:
        raise sql_error(4305, str(header.first_lsn), str(lsn_from_seq(redo)))
    _check_recovery_path(runner, db_info, header)
    records = txlog.decode_records(payload)
    db = engine.handle(db_info)
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        outcome = txlog.replay(db.conn, records, start=redo, end=last, stop=stop)
        if header.recovery_fork_guid and (header.branch_seq is None or outcome.applied_to >= header.branch_seq):
            state = recovery_forks.current(db.conn)  # the restore is now on the log's branch
            recovery_forks.save(db.conn, recovery_forks.ForkState(
                header.recovery_fork_guid, header.branch_parent_guid, header.branch_seq, state.binding,
                state.diff_base))
        db.conn.execute("COMMIT")
    except BaseException:
        db.conn.execute("ROLLBACK")
        raise
    engine.master.execute("BEGIN IMMEDIATE")
    engine.catalog.update(db_info.database_id, redo_seq=outcome.applied_to)
    engine.master.execute("COMMIT")
    messages = []
    if not outcome.reached:
        messages.append(info(4329 if stop.mark else 4322))
    return engine.catalog.by_id(db_info.database_id), outcome.applied_to, outcome.reached, messages


def _check_recovery_path(runner: Runner, db_info: DatabaseInfo, header: BackupSetHeader) -> None:
    """4330 for a differential or log backup of another recovery branch than the restoring database's."""
    if not header.recovery_fork_guid:
        return  # written before recovery forks were modelled
    db = runner.engine.handle(db_info)
    state = recovery_forks.current(db.conn)
    redo = db_info.redo_seq if header.backup_type == 2 else seq_from_lsn(header.database_backup_lsn)
    if not recovery_forks.applies(state, redo or 0, header.recovery_fork_guid, header.branch_parent_guid,
                                  header.branch_seq):
        raise sql_error(4330)


def _record(runner: Runner, header: BackupSetHeader, paths: list[str], position: int, database: str,
            parsed: cmd.Restore, stop: txlog.Stop | None, recovered: bool) -> None:
    backup_set_id = record_backupset(runner, header, paths, position)
    msdb = runner.engine.msdb
    msdb.execute("BEGIN IMMEDIATE")
    msdb.execute(
        'INSERT INTO "dbo.restorehistory" (restore_date, destination_database_name, user_name, backup_set_id, '
        "restore_type, replace, recovery, restart, stop_at, device_count, stop_at_mark_name, stop_before) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
        (now_text(), database, runner.state.session.login, backup_set_id,
         {1: "D", 2: "L", 5: "I"}[header.backup_type], int("REPLACE" in parsed.options), int(recovered),
         now_text(stop.at_time) if stop and stop.at_time else None, len(paths),
         stop.mark if stop and stop.mark else None, int(bool(stop and stop.mark and not stop.include_mark))))
    msdb.execute("COMMIT")


# ---------------------------------------------------------------------------------------------- DBCC CHECKDB
def run_checkdb(runner: Runner, parsed: cmd.Dbcc) -> list[Event]:
    """Damage (a corrupt_database fault, or pages damaged in the backup it was restored from) gives
    SQL Server's consistency errors; a clean database reports 0 errors unless NO_INFOMSGS."""
    engine = runner.engine
    target = runner.value(parsed.database) if parsed.database is not None else runner.state.session.database
    db_info = engine.catalog.by_id(target) if isinstance(target, int) else engine.catalog.get(str(target))
    if db_info is None:
        raise sql_error(911, str(target))
    if db_info.restoring:
        raise sql_error(927, db_info.name)
    if db_info.state_desc == "OFFLINE":
        raise sql_error(942, db_info.name)
    db = engine.handle(db_info)
    if engine.faults.consume("corrupt_database", database=db_info.name) is not None:
        from sqlserver_standin.backup import mark_damaged

        mark_damaged(db)
    damage = db.conn.execute(f"SELECT object_id, page FROM {INTERNAL_PREFIX}damage").fetchall()
    quiet = "NO_INFOMSGS" in parsed.options
    if damage:
        errors: list[Message] = []
        for object_id, page in damage:
            errors.append(info_error(8939, object_id, 1, 72057594043105280, 72057594048806912, "In-row data",
                                     f"({page})", "IS_OFF (BUF_IOERR, pBUF->bstat)", 133129, 2057))
            errors.append(info_error(8928, object_id, 1, 72057594043105280, 72057594048806912, "In-row data",
                                     f"({page})"))
        summary = [info(8989, 0, len(errors), db_info.name),
                   info(8958, "repair_allow_data_loss", db_info.name)]
        first = errors[0]
        raise SqlError(first.number, first.text, first.severity, first.state, extra=(*errors[1:], *summary))
    if quiet:
        return []
    return [info(8989, 0, 0, db_info.name), info(2528)]
