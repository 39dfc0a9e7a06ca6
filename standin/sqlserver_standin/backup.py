"""BACKUP DATABASE / BACKUP LOG: backup sets with SQL Server's LSN chain, history and errors.

Rules modelled ("BACKUP (Transact-SQL)", "Transaction Log Backups", "Recovery Models", biztalk-dr.md
sections 2 and 6):
- a full backup in FULL recovery starts the log chain if none exists; from then on the log is kept
  until a log backup carries it;
- a log backup covers [previous log backup's LastLSN, now): FirstLSN equals the previous LastLSN;
  a full backup does not break the chain; COPY_ONLY backups change nothing in it;
- a differential's DatabaseBackupLSN is its base full's CheckpointLSN (3035 without a base);
- BACKUP LOG fails with 4214 without a chain, 4208 in SIMPLE, 4212 on master;
- BACKUP/RESTORE fail with 3021 inside a transaction (checked by the engine);
- every error is followed by 3013 "BACKUP ... is terminating abnormally";
- success reports 4035 per file and 3014, and writes msdb.dbo.backupset / backupmediafamily rows.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlserver_standin import commands as cmd
from sqlserver_standin import recovery_forks, txlog
from sqlserver_standin.backup_io import BackupFile, BackupSetHeader, MediaError, write_backup_set
from sqlserver_standin.catalog import DatabaseInfo, now_text
from sqlserver_standin.events import Event, Message
from sqlserver_standin.lsn import lsn_from_seq
from sqlserver_standin.messages import SqlError, info, sql_error
from sqlserver_standin.storage import family_guid

if TYPE_CHECKING:
    from sqlserver_standin.engine import Runner

__all__ = ["run_backup", "terminating", "media_sql_error", "completion_messages", "record_backupset",
           "parse_time"]

_TYPE_CODES = {1: "D", 2: "L", 5: "I"}


def terminating(exc: SqlError, statement: str) -> SqlError:
    """The error as SQL Server reports it from BACKUP/RESTORE: followed by 3013."""
    if any(m.number == 3013 for m in exc.extra):
        return exc
    closing = Message(3013, 16, 1, f"{statement} is terminating abnormally.")
    return SqlError(exc.number, exc.text, exc.severity, exc.state, exc.abort, extra=(*exc.extra, closing))


def media_sql_error(exc: MediaError, database: str = "") -> SqlError:
    """A media failure of backup_io as SQL Server's error of the same situation."""
    if exc.number == 3201:
        return sql_error(3201, exc.path, exc.detail)
    if exc.number == 3203:
        return sql_error(3203, exc.path, exc.detail)
    if exc.number == 3132:
        expected, given = exc.detail.split(":")
        return sql_error(3132, int(expected), int(given))
    if exc.number == 3183:
        return sql_error(3183, 1, 1, database)
    if exc.number in (3241, 3242):
        return sql_error(exc.number, exc.path)
    return SqlError(exc.number, f"{exc.path}: {exc.detail}")


def completion_messages(verb: str, database: str, files: tuple[BackupFile, ...], position: int,
                        size: int, seconds: float) -> list[Message]:
    """4035 per file, then 3014 with the page count and speed, as SQL Server prints them."""
    messages = []
    total = 0
    for f in files:
        pages = max(1, f.size // 8192) if f.type == "D" else max(1, f.size // 65536)
        total += pages
        messages.append(info(4035, pages, database, f.logical_name, position))
    seconds = max(seconds, 0.001)
    rate = size / 1024 / 1024 / seconds
    messages.append(info(3014, verb, total, int(seconds), int(seconds * 1000) % 1000, int(rate), int(rate * 1000) % 1000))
    return messages


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


_FORK_COLUMNS = {"first_recovery_fork_guid": "uniqueidentifier", "last_recovery_fork_guid": "uniqueidentifier",
                 "fork_point_lsn": "numeric(25,0)"}


def _fork_columns(msdb) -> None:  # noqa: ANN001 - sqlite3.Connection
    """msdb.dbo.backupset's recovery-fork columns, added to an msdb made before they were modelled."""
    have = {row[1] for row in msdb.execute('PRAGMA table_info("dbo.backupset")')}
    for name, kind in _FORK_COLUMNS.items():
        if name not in have:
            msdb.execute(f'ALTER TABLE "dbo.backupset" ADD COLUMN {name} {kind}')


def first_recovery_fork(header: BackupSetHeader) -> tuple[str, Decimal | None]:
    """(FirstRecoveryForkID, ForkPointLSN) as RESTORE HEADERONLY and msdb report them."""
    from sqlserver_standin.lsn import seq_from_lsn

    first = recovery_forks.fork_at(header.recovery_fork_guid, header.branch_parent_guid, header.branch_seq,
                                   seq_from_lsn(header.first_lsn)) if header.backup_type == 2 else header.recovery_fork_guid
    spans = first != header.recovery_fork_guid and header.branch_seq is not None
    return first, lsn_from_seq(header.branch_seq) if spans else None


def record_backupset(runner: Runner, header: BackupSetHeader, paths: list[str], position: int,
                     stored_size: int | None = None) -> int:
    """msdb history of a backup set (also written for a set that is restored); returns backup_set_id."""
    msdb = runner.engine.msdb
    _fork_columns(msdb)
    fork_first, fork_point = first_recovery_fork(header)
    msdb.execute("BEGIN IMMEDIATE")
    try:
        cur = msdb.execute(
            'INSERT INTO "dbo.backupmediaset" (media_uuid, media_family_count, software_name, software_vendor_id, '
            "MTF_major_version, mirror_count, is_password_protected, is_compressed, is_encrypted) "
            "VALUES (?, ?, 'Microsoft SQL Server', 4608, 1, 1, 0, ?, 0)",
            (header.backup_set_guid.upper(), len(paths), int(header.compressed)))
        media_set_id = cur.lastrowid
        for number, path in enumerate(paths, start=1):
            msdb.execute('INSERT INTO "dbo.backupmediafamily" (media_set_id, family_sequence_number, media_count, '
                         "physical_device_name, device_type, physical_block_size, mirror) VALUES (?, ?, 1, ?, 2, 512, 0)",
                         (media_set_id, number, path))
        major, minor, build = (16, 0, 1000)
        cur = msdb.execute(
            'INSERT INTO "dbo.backupset" (backup_set_uuid, media_set_id, first_family_number, first_media_number, '
            "last_family_number, last_media_number, position, name, description, user_name, software_major_version, "
            "software_minor_version, software_build_version, first_lsn, last_lsn, checkpoint_lsn, "
            "database_backup_lsn, database_creation_date, backup_start_date, backup_finish_date, type, "
            "compatibility_level, database_version, backup_size, database_name, server_name, machine_name, "
            "recovery_model, has_backup_checksums, is_damaged, begins_log_chain, is_copy_only, "
            "differential_base_lsn, compressed_backup_size, database_guid, family_guid, first_recovery_fork_guid, "
            "last_recovery_fork_guid, fork_point_lsn) VALUES "
            "(?, ?, 1, 1, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 160, 957, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, "
            "?, ?, ?, ?, ?)",
            (header.backup_set_guid.upper(), media_set_id, len(paths), position, header.backup_name,
             header.description, header.user_name, major, minor, build, int(header.first_lsn), int(header.last_lsn),
             int(header.checkpoint_lsn), int(header.database_backup_lsn), now_text(header.database_creation_date),
             now_text(header.backup_start_date), now_text(header.backup_finish_date),
             _TYPE_CODES[header.backup_type], header.backup_size, header.database_name, header.server_name,
             header.machine_name, header.recovery_model, int(header.has_checksums), 0, int(header.is_copy_only),
             int(header.database_backup_lsn) if header.backup_type == 5 else None,
             header.backup_size if stored_size is None else stored_size, _upper(header.binding_guid),
             _upper(header.family_guid), _upper(fork_first), _upper(header.recovery_fork_guid),
             int(fork_point) if fork_point is not None else None))
        msdb.execute("COMMIT")
    except BaseException:
        msdb.execute("ROLLBACK")
        raise
    return cur.lastrowid


def _upper(guid: str | None) -> str | None:
    if not guid:
        return None
    return str(uuid.UUID(hex=guid.replace("-", ""))).upper()


def run_backup(runner: Runner, parsed: cmd.Backup) -> list[Event]:
    statement = f"BACKUP {'LOG' if parsed.kind == 'LOG' else 'DATABASE'}"
    name = str(runner.value(parsed.database))
    try:
        return _run(runner, parsed, name, statement)
    except MediaError as exc:
        raise terminating(media_sql_error(exc, name), statement) from None
    except SqlError as exc:
        raise terminating(exc, statement) from None


def _database(runner: Runner, name: str) -> DatabaseInfo:
    engine = runner.engine
    db_info = engine.catalog.get(name)
    if db_info is None:
        raise sql_error(911, name)
    if db_info.name.lower() == "tempdb":
        raise sql_error(3147)
    if db_info.restoring:
        raise sql_error(927, db_info.name)
    if db_info.state_desc == "OFFLINE":
        raise sql_error(942, db_info.name)
    return db_info


def _run(runner: Runner, parsed: cmd.Backup, name: str, statement: str) -> list[Event]:
    engine = runner.engine
    db_info = _database(runner, name)
    options = parsed.options
    paths = [str(runner.value(d)) for d in parsed.disks]
    copy_only = "COPY_ONLY" in options
    differential = "DIFFERENTIAL" in options
    compressed = "COMPRESSION" in options and "NO_COMPRESSION" not in options
    for fault in ("fail_backup", "partial_backup_set"):
        if engine.faults.consume(fault, database=db_info.name) is not None:
            raise sql_error(3201, paths[0], "53(The network path was not found.)")
    db = engine.handle(db_info)
    engine.wait_for(runner.state, db)
    started = dt.datetime.now()
    clock = time.monotonic()
    _apply_damage_fault(runner, db_info, db)

    db.conn.execute("BEGIN IMMEDIATE")
    try:
        fork = recovery_forks.current(db.conn)
        set_guid = str(uuid.uuid4())
        if parsed.kind == "DATABASE":
            if not copy_only and not differential:  # this full is the differential base from now on, also in
                recovery_forks.save(db.conn, replace(fork, diff_base=set_guid))  # the copy its restore makes
            header, payload, catalog_update = _full_or_diff(runner, db_info, db, copy_only=copy_only,
                                                            differential=differential)
        else:
            header, payload, catalog_update = _log(runner, db_info, db, copy_only=copy_only)
        header = _finish_header(runner, header, db_info, payload, started, compressed, parsed)
        header = replace(header, family_guid=family_guid(db.conn), backup_set_guid=set_guid,
                         recovery_fork_guid=fork.fork, branch_parent_guid=fork.parent, branch_seq=fork.point,
                         binding_guid=fork.binding, current_base_guid=fork.diff_base,
                         differential_base_guid=fork.diff_base if differential else None)
        _slow_io(runner, len(payload))
        damage = engine.faults.consume("damage_backup", database=db_info.name)
        position, stored_size = write_backup_set(paths, header, payload, init="INIT" in options or "FORMAT" in options,
                                    damage=damage.get("mode", "corrupt") if damage else None)
        if parsed.kind == "LOG" and not copy_only:
            txlog.truncate(db.conn, txlog_seq(header.last_lsn))
        db.conn.execute("COMMIT")
    except BaseException:
        db.conn.execute("ROLLBACK")
        raise
    if catalog_update:
        engine.master.execute("BEGIN IMMEDIATE")
        engine.catalog.update(db_info.database_id, **catalog_update)
        engine.master.execute("COMMIT")
    if parsed.kind == "LOG" and "NORECOVERY" in options:  # tail-log backup: the database stops here
        engine.master.execute("BEGIN IMMEDIATE")
        engine.catalog.set_state(db_info.database_id, "RESTORING")
        engine.catalog.update(db_info.database_id, redo_seq=txlog_seq(header.last_lsn),
                              restore_full_seq=db_info.last_full_seq)
        engine.master.execute("COMMIT")
    record_backupset(runner, header, paths, position, stored_size)
    return completion_messages(statement, db_info.name, header.files, position, header.backup_size,
                               time.monotonic() - clock)


def txlog_seq(lsn: Decimal) -> int:
    from sqlserver_standin.lsn import seq_from_lsn

    return seq_from_lsn(lsn)


def _full_or_diff(runner: Runner, db_info: DatabaseInfo, db, *, copy_only: bool,  # noqa: ANN001 - engine._Db
                  differential: bool) -> tuple[dict, bytes, dict]:
    update: dict = {}
    keeps_log = db_info.recovery_model_desc in ("FULL", "BULK_LOGGED") and db_info.name.lower() not in (
        "master", "msdb", "model")
    if differential and db_info.last_full_seq is None:
        raise sql_error(3035, db_info.name)
    if keeps_log and db_info.chain_base_seq is None and not copy_only and not differential:
        txlog.set_logging(db.conn, True)  # the full backup starts the log chain
    checkpoint = txlog.write_record(db.conn, "CKPT", at=now_text())
    if keeps_log and db_info.chain_base_seq is None and not copy_only and not differential:
        update.update(chain_base_seq=checkpoint, last_log_backup_seq=checkpoint)
    payload = txlog.snapshot(db.conn)
    if not copy_only and not differential:
        update["last_full_seq"] = checkpoint
    base = db_info.last_full_seq
    header = dict(backup_type=5 if differential else 1, first_lsn=lsn_from_seq(checkpoint),
                  last_lsn=lsn_from_seq(checkpoint + 1), checkpoint_lsn=lsn_from_seq(checkpoint),
                  database_backup_lsn=lsn_from_seq(base) if base is not None else Decimal(0),
                  is_copy_only=copy_only)
    return header, payload, update


def _log(runner: Runner, db_info: DatabaseInfo, db, *, copy_only: bool) -> tuple[dict, bytes, dict]:  # noqa: ANN001
    if db_info.name.lower() == "master":
        raise sql_error(4212)
    if db_info.recovery_model_desc == "SIMPLE":
        raise sql_error(4208, "BACKUP LOG")
    if db_info.chain_base_seq is None or db_info.last_log_backup_seq is None:
        raise sql_error(4214)
    first = db_info.last_log_backup_seq
    end = txlog.write_record(db.conn, "CKPT", at=now_text()) + 1
    payload = txlog.encode_records(txlog.records(db.conn, first, end))
    header = dict(backup_type=2, first_lsn=lsn_from_seq(first), last_lsn=lsn_from_seq(end),
                  checkpoint_lsn=lsn_from_seq(end - 1),
                  database_backup_lsn=lsn_from_seq(db_info.last_full_seq) if db_info.last_full_seq else Decimal(0),
                  is_copy_only=copy_only)
    return header, payload, ({} if copy_only else {"last_log_backup_seq": end})


def _finish_header(runner: Runner, fields: dict, db_info: DatabaseInfo, payload: bytes, started: dt.datetime,
                   compressed: bool, parsed: cmd.Backup) -> BackupSetHeader:
    engine = runner.engine
    files = tuple(BackupFile(logical, physical, "D" if kind == "ROWS" else "L",
                             len(payload) if kind == "ROWS" else 8 * 1024 * 1024)
                  for logical, physical, kind in engine.catalog.files(db_info.database_id))
    name = parsed.options.get("NAME")
    description = parsed.options.get("DESCRIPTION")
    return BackupSetHeader(
        database_name=db_info.name, server_name=engine.instance_name, machine_name=engine.machine_name,
        user_name=runner.state.session.login, database_creation_date=parse_time(db_info.create_date),
        backup_start_date=started.replace(microsecond=0), backup_finish_date=dt.datetime.now().replace(microsecond=0),
        recovery_model=db_info.recovery_model_desc, has_checksums="CHECKSUM" in parsed.options,
        compressed=compressed, backup_size=len(payload), files=files,
        backup_name=str(runner.value(name)) if isinstance(name, cmd.Value) else None,
        description=str(runner.value(description)) if isinstance(description, cmd.Value) else None,
        **fields)


def _apply_damage_fault(runner: Runner, db_info: DatabaseInfo, db) -> None:  # noqa: ANN001 - engine._Db
    """A corrupt_database fault damages the database's pages (recorded in its own file, so the damage
    travels into its full backups and shows in DBCC CHECKDB wherever they are restored)."""
    if runner.engine.faults.consume("corrupt_database", database=db_info.name) is not None:
        mark_damaged(db)


def mark_damaged(db) -> None:  # noqa: ANN001 - engine._Db
    from sqlserver_standin.storage import INTERNAL_PREFIX

    own = not db.conn.in_transaction
    if own:
        db.conn.execute("BEGIN IMMEDIATE")
    db.conn.execute(f"INSERT INTO {INTERNAL_PREFIX}damage (object_id, page) VALUES (?, ?)", (1977058079, "1:153"))
    if own:
        db.conn.execute("COMMIT")


def _slow_io(runner: Runner, size: int) -> None:
    fault = runner.engine.faults.find("slow_io")
    if fault is not None:
        time.sleep(float(fault.get("seconds_per_mb", 0)) * size / 1024 / 1024)
