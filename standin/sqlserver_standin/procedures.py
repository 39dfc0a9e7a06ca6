"""Stored procedures: the system ones clients and the product call, and BizTalk's backup procedures.

BizTalk's procedures live in the management database (biztalk-dr.md section 2); the stand-in
"installs" them in a database by name (``install_biztalk_procedures``, as BizTalk's setup runs its
SQL scripts) and runs them as the T-SQL they stand for, through the same engine: a marked
transaction writing ``dbo.MarkLog`` in every database of the set, then one BACKUP per database,
history rows in ``adm_BackupHistory`` and ``SetComplete = 1`` only when every backup succeeded.
The databases of a set are the management database, the MessageBoxes (``adm_MessageBox``), the
group's other databases (``adm_OtherDatabases``) and the custom ones (``adm_OtherBackupDatabases``).
A database on another server would be reached through a linked server, which the stand-in does
not model: its backup fails and the set is partial.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sqlserver_standin.batch import quote_name
from sqlserver_standin.events import Column, Message, ResultSet, SqlType, StatementDone
from sqlserver_standin.messages import SqlError, sql_error
from sqlserver_standin.storage import INTERNAL_PREFIX

if TYPE_CHECKING:
    from sqlserver_standin.engine import Runner

__all__ = ["DEFAULT", "call", "install_biztalk_procedures", "BIZTALK_PROCEDURES", "set_databases"]


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()
_REQUIRED = object()

Procedure = Callable[["Runner", str, dict[str, object]], int]


def _bind(proc: str, signature: Sequence[tuple[str, object]], args: Sequence[tuple[str | None, object]]) -> dict:
    """Positional and named arguments onto the parameters, with SQL Server's errors (8144, 8145, 201)."""
    names = [p.lower() for p, _ in signature]
    values: dict[str, object] = {}
    for index, (name, value) in enumerate(args):
        if name:
            key = ("@" + name.lstrip("@")).lower()
            if key not in names:
                raise sql_error(8145, "@" + name.lstrip("@"), proc)
        else:
            if index >= len(names):
                raise sql_error(8144, proc)
            key = names[index]
        if value is not DEFAULT:
            values[key] = value
    for (param, default), key in zip(signature, names, strict=True):
        if key not in values:
            if default is _REQUIRED:
                raise sql_error(201, proc, param)
            values[key] = default
    return values


# ---------------------------------------------------------------------------------------------- dispatch
def call(runner: Runner, parts: Sequence[str], written: str, args: Sequence[tuple[str | None, object]], *,
         rpc: bool = False) -> int:
    """Run a procedure; returns its return status. ``parts`` are the name parts as written."""
    parts = [p for p in parts]
    name = parts[-1]
    database = parts[-3] if len(parts) >= 3 and parts[-3] else runner.state.session.database
    lname = name.lower()
    if lname in _SYSTEM:
        signature, fn = _SYSTEM[lname]
        return fn(runner, name, _bind(name, signature, args))
    engine = runner.engine
    db_info = engine.catalog.get(database)
    if db_info is not None and not db_info.restoring and db_info.state_desc == "ONLINE" and lname in BIZTALK_PROCEDURES:
        installed = engine.handle(db_info).conn.execute(
            f"SELECT 1 FROM {INTERNAL_PREFIX}procedures WHERE name = ?", (lname,)).fetchone()
        if installed:
            signature, fn = BIZTALK_PROCEDURES[lname]
            return fn(runner, db_info.name, _bind(name, signature, args))
    raise sql_error(2812, written or ".".join(parts))


def install_biztalk_procedures(conn: object) -> None:
    """Register BizTalk's backup procedures in a database file (the management database)."""
    for name in BIZTALK_PROCEDURES:
        conn.execute(f"INSERT OR IGNORE INTO {INTERNAL_PREFIX}procedures (name) VALUES (?)", (name,))


def _nested(runner: Runner, sql: str, params: dict[str, object] | None = None) -> list[Message]:
    """Run T-SQL inside the procedure; its messages reach the client; returns its errors."""
    events, errors = runner.engine.run_nested(runner.state, sql, params)
    runner.events.extend(e for e in events if not isinstance(e, ResultSet | StatementDone))
    return errors


def _query(runner: Runner, sql: str, params: dict[str, object] | None = None) -> list[tuple]:
    events, errors = runner.engine.run_nested(runner.state, sql, params)
    if errors:
        first = errors[0]
        raise SqlError(first.number, first.text, first.severity, first.state)
    rows: list[tuple] = []
    for event in events:
        if isinstance(event, ResultSet):
            rows.extend(tuple(r) for r in event.rows)
    return rows


# ---------------------------------------------------------------------------------------------- system
_TYPE_INFO = {  # ODBC SQL type -> (TYPE_NAME, COLUMN_SIZE, LITERAL_PREFIX, LITERAL_SUFFIX, CREATE_PARAMS)
    -9: ("nvarchar", 4000, "N'", "'", "max length"), 12: ("varchar", 8000, "'", "'", "max length"),
    -3: ("varbinary", 8000, "0x", None, "max length"), 93: ("datetime", 23, "'", "'", None),
    4: ("int", 10, None, None, None), -5: ("bigint", 19, None, None, None), 2: ("numeric", 38, None, None,
                                                                             "precision,scale"),
    -7: ("bit", 1, None, None, None), -11: ("uniqueidentifier", 36, "'", "'", None),
}
_TYPE_INFO_COLUMNS = (
    Column("TYPE_NAME", SqlType.NVARCHAR, False, 128), Column("DATA_TYPE", SqlType.SMALLINT, False),
    Column("PRECISION", SqlType.INT), Column("LITERAL_PREFIX", SqlType.NVARCHAR, True, 32),
    Column("LITERAL_SUFFIX", SqlType.NVARCHAR, True, 32), Column("CREATE_PARAMS", SqlType.NVARCHAR, True, 32),
    Column("NULLABLE", SqlType.SMALLINT, False), Column("CASE_SENSITIVE", SqlType.SMALLINT, False),
    Column("SEARCHABLE", SqlType.SMALLINT, False), Column("UNSIGNED_ATTRIBUTE", SqlType.SMALLINT),
    Column("MONEY", SqlType.SMALLINT, False), Column("AUTO_INCREMENT", SqlType.SMALLINT),
    Column("LOCAL_TYPE_NAME", SqlType.NVARCHAR, True, 128), Column("MINIMUM_SCALE", SqlType.SMALLINT),
    Column("MAXIMUM_SCALE", SqlType.SMALLINT), Column("SQL_DATA_TYPE", SqlType.SMALLINT, False),
    Column("SQL_DATETIME_SUB", SqlType.SMALLINT), Column("NUM_PREC_RADIX", SqlType.INT),
    Column("INTERVAL_PRECISION", SqlType.SMALLINT), Column("USERTYPE", SqlType.SMALLINT),
)


def _datatype_info(runner: Runner, name: str, args: dict) -> int:
    """What ODBC drivers ask after login (SQLGetTypeInfo): one row per type the stand-in has."""
    wanted = args["@data_type"]
    rows = []
    for code, (type_name, size, prefix, suffix, params) in _TYPE_INFO.items():
        if wanted in (0, None) or int(wanted) == code:
            rows.append((type_name, code, size, prefix, suffix, params, 1, 0, 3, None, 0, None, type_name, None,
                         None, code, None, 10 if code in (4, -5, 2, -7) else None, None, 0))
    runner.events.append(ResultSet(_TYPE_INFO_COLUMNS, rows))
    runner.events.append(StatementDone(len(rows)))
    return 0


def _update_job(runner: Runner, name: str, args: dict) -> int:
    """msdb.dbo.sp_update_job: only @enabled is modelled (the product disables BizTalk's backup job)."""
    job = args["@job_name"]
    rows = _query(runner, "SELECT job_id FROM msdb.dbo.sysjobs WHERE name = @job", {"@job": job})
    if not rows:
        raise sql_error(14262, "@job_name", job)
    if args["@enabled"] is not None:
        errors = _nested(runner, "UPDATE msdb.dbo.sysjobs SET enabled = @enabled, date_modified = GETDATE() "
                                 "WHERE name = @job", {"@enabled": int(args["@enabled"]), "@job": job})
        if errors:
            raise SqlError(errors[0].number, errors[0].text)
    return 0


_SYSTEM: dict[str, tuple[Sequence[tuple[str, object]], Procedure]] = {
    "sp_datatype_info_100": ((("@data_type", 0), ("@ODBCVer", 2)), _datatype_info),
    "sp_datatype_info": ((("@data_type", 0), ("@ODBCVer", 2)), _datatype_info),
    "sp_update_job": ((("@job_id", None), ("@job_name", None), ("@new_name", None), ("@enabled", None),
                       ("@description", None)), _update_job),
}


# ---------------------------------------------------------------------------------------------- BizTalk
def set_databases(runner: Runner, mgmt: str) -> list[tuple[str, str]]:
    """(database, server) of every database BizTalk's backup covers, management database first."""
    m = quote_name(mgmt)
    rows = _query(runner, f"SELECT DBName, DBServerName FROM {m}.dbo.adm_MessageBox "
                          f"UNION ALL SELECT DatabaseName, ServerName FROM {m}.dbo.adm_OtherDatabases "
                          f"UNION ALL SELECT DatabaseName, ServerName FROM {m}.dbo.adm_OtherBackupDatabases")
    result = [(mgmt, runner.engine.instance_name)]
    seen = {mgmt.lower()}
    for database, server in rows:
        if database.lower() not in seen:
            seen.add(database.lower())
            result.append((database, server))
    return result


def _clock(runner: Runner, use_local_time: object) -> dt.datetime:
    return dt.datetime.now() if use_local_time else dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _mark_name(prefix: str, when: dt.datetime) -> str:
    """``BTS_2014_05_06_14_15_01_327``: the prefix, then the time with punctuation replaced."""
    return f"{prefix}_{when:%Y_%m_%d_%H_%M_%S}_{when.microsecond // 1000:03d}"


def _settings(runner: Runner, mgmt: str) -> tuple[bool, bool, dt.datetime | None]:
    rows = _query(runner, f"SELECT TOP (1) UseCompression, ForceFull, LastFullBackup FROM {quote_name(mgmt)}.dbo.adm_BackupSettings")
    if not rows:
        return False, False, None
    compression, force, last = rows[0]
    return bool(compression), bool(force), last


def _backup_set(runner: Runner, mgmt: str, kind: str, mark: str, path: str, when: dt.datetime) -> list[str]:
    """One backup per database of the set and its history rows; returns the failures."""
    m = quote_name(mgmt)
    compression, _force, _last = _settings(runner, mgmt)
    [(top,)] = _query(runner, f"SELECT MAX(BackupSetId) FROM {m}.dbo.adm_BackupHistory")
    set_id = (top or 0) + 1
    separator = "" if path.endswith(("/", "\\")) else ("\\" if "\\" in path else "/")
    failures = []
    for database, server in set_databases(runner, mgmt):
        file_name = f"{server.replace(chr(92), '_')}_{database}_{'Full' if kind == 'db' else 'Log'}_{mark}.bak"
        if server.lower() != runner.engine.instance_name.lower():
            failures.append(f"{database} on {server}: linked servers are not modelled by the stand-in")
            runner.events.append(Message(50000, 16, 1, f"The backup of {database} on server {server} failed: the "
                                                       "SQL Server stand-in does not model linked servers."))
            continue
        statement = "BACKUP DATABASE" if kind == "db" else "BACKUP LOG"
        compress = compression and database.upper() != "SSODB"  # SSODB is never compressed (section 1)
        sql = f"{statement} {quote_name(database)} TO DISK = @file" + (" WITH COMPRESSION" if compress else "")
        errors = _nested(runner, sql, {"@file": path + separator + file_name})
        if errors and compress:  # the procedures retry a failed compressed backup uncompressed (section 2)
            errors = _nested(runner, f"{statement} {quote_name(database)} TO DISK = @file", {"@file": path + separator + file_name})
        if errors:
            failures.append(f"{database}: {errors[0].text}")
            continue
        errors = _nested(runner, f"INSERT INTO {m}.dbo.adm_BackupHistory (BackupSetId, MarkName, DatabaseName, ServerName, "
                                 "BackupFileName, BackupFileLocation, BackupType, BackupDateTime, SetComplete) "
                                 "VALUES (@set, @mark, @db, @server, @file, @path, @kind, @when, 0)",
                         {"@set": set_id, "@mark": mark, "@db": database, "@server": server, "@file": file_name,
                          "@path": path, "@kind": kind, "@when": when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]})
        if errors:
            failures.append(f"{database}: {errors[0].text}")
    if not failures:
        _nested(runner, f"UPDATE {m}.dbo.adm_BackupHistory SET SetComplete = 1 WHERE BackupSetId = @set",
                {"@set": set_id})
    return failures


def _fail(procedure: str, failures: list[str]) -> SqlError:
    return SqlError(50000, f"{procedure}: the backup set is partial (SetComplete = 0): " + "; ".join(failures))


def _mark_all(runner: Runner, mgmt: str, args: dict) -> int:
    """sp_MarkAll: one marked transaction across every database of the set, then a log backup of each."""
    when = _clock(runner, args["@uselocaltime"])
    mark = _mark_name(str(args["@markname"]), when)
    databases = [(d, s) for d, s in set_databases(runner, mgmt) if s.lower() == runner.engine.instance_name.lower()]
    inserts = "".join(f"INSERT INTO {quote_name(d)}.dbo.MarkLog (MarkName, DateMarked) VALUES (@mark, GETUTCDATE()); "
                      for d, _ in databases)
    errors = _nested(runner, f"BEGIN TRANSACTION {quote_name(mark)} WITH MARK @mark; {inserts}COMMIT TRANSACTION;",
                     {"@mark": mark})
    if errors:
        if runner.state.session.transaction_count:
            _nested(runner, "ROLLBACK TRANSACTION")
        raise SqlError(50000, f"sp_MarkAll: the marked transaction {mark} failed: {errors[0].text}")
    failures = _backup_set(runner, mgmt, "lg", mark, str(args["@backuppath"]), when)
    if failures:
        raise _fail("sp_MarkAll", failures)
    return 0


def _full_due(runner: Runner, mgmt: str, args: dict, when: dt.datetime) -> bool:
    """sp_BackupAllFull_Schedule takes a full only when forced, when there is no full yet, after a partial
    set (if asked), or when the frequency's period has turned since the last full (section 2)."""
    m = quote_name(mgmt)
    _compression, force, last = _settings(runner, mgmt)
    if force or last is None:
        return True
    if args["@forcefullbackupafterpartialsetfailure"]:
        rows = _query(runner, f"SELECT TOP (1) SetComplete FROM {m}.dbo.adm_BackupHistory ORDER BY BackupSetId DESC")
        if rows and not rows[0][0]:
            return True
    frequency = str(args["@frequency"]).lower()
    hour = int(args["@backuphour"] or 0)
    if frequency == "h":
        return when.replace(minute=0, second=0, microsecond=0) > last
    if when.hour < hour:
        return False
    turned = {"d": when.date() > last.date(),
              "w": when.isocalendar()[:2] != last.isocalendar()[:2],
              "m": (when.year, when.month) != (last.year, last.month),
              "y": when.year != last.year}
    if frequency not in turned:
        raise SqlError(50000, f"sp_BackupAllFull_Schedule: @Frequency must be h, d, w, m or y, not {frequency!r}")
    return turned[frequency]


def _backup_all_full(runner: Runner, mgmt: str, args: dict) -> int:
    when = _clock(runner, args["@uselocaltime"])
    if not _full_due(runner, mgmt, args, when):
        return 0
    mark = _mark_name(str(args["@markname"]), when)
    failures = _backup_set(runner, mgmt, "db", mark, str(args["@backuppath"]), when)
    if failures:
        raise _fail("sp_BackupAllFull_Schedule", failures)
    _nested(runner, f"UPDATE {quote_name(mgmt)}.dbo.adm_BackupSettings SET ForceFull = 0, LastFullBackup = @when",
            {"@when": when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]})
    return 0


def _force_full(runner: Runner, mgmt: str, args: dict) -> int:
    return _settings_update(runner, mgmt, "ForceFull = 1", {})


def _set_compression(runner: Runner, mgmt: str, args: dict) -> int:
    return _settings_update(runner, mgmt, "UseCompression = @c", {"@c": 1 if args["@bcompression"] else 0})


def _settings_update(runner: Runner, mgmt: str, assignment: str, params: dict) -> int:
    errors = _nested(runner, f"UPDATE {quote_name(mgmt)}.dbo.adm_BackupSettings SET {assignment}", params)
    if errors:
        raise SqlError(errors[0].number, errors[0].text)
    return 0


def _delete_history(runner: Runner, mgmt: str, args: dict) -> int:
    """History rows only: BizTalk never deletes backup files (section 2)."""
    errors = _nested(runner, f"DELETE FROM {quote_name(mgmt)}.dbo.adm_BackupHistory "
                             "WHERE BackupDateTime < DATEADD(day, -@days, GETUTCDATE())", {"@days": int(args["@daystokeep"])})
    if errors:
        raise SqlError(errors[0].number, errors[0].text)
    return 0


BIZTALK_PROCEDURES: dict[str, tuple[Sequence[tuple[str, object]], Procedure]] = {
    "sp_markall": ((("@MarkName", _REQUIRED), ("@BackupPath", _REQUIRED), ("@UseLocalTime", 0)), _mark_all),
    "sp_backupallfull_schedule": ((("@Frequency", _REQUIRED), ("@MarkName", _REQUIRED), ("@BackupPath", _REQUIRED),
                                   ("@ForceFullBackupAfterPartialSetFailure", 0), ("@BackupHour", 0),
                                   ("@UseLocalTime", 0)), _backup_all_full),
    "sp_forcefullbackup": ((), _force_full),
    "sp_setbackupcompression": ((("@bCompression", 0),), _set_compression),
    "sp_deletebackuphistory": ((("@DaysToKeep", 14),), _delete_history),
}
