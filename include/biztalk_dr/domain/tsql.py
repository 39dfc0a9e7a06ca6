"""The only place that writes T-SQL text: every statement and query the product sends is made here.

BACKUP and RESTORE cannot take parameters for every clause and no available T-SQL parser
understands them, so a strict builder is the line of defence: identifiers are bracket-quoted with
``]`` doubled, strings are ``N'...'`` with ``'`` doubled, and every value is checked before any
text is produced. The statements follow the syntax documented by Microsoft ("BACKUP (Transact-SQL)",
"RESTORE Statements (Transact-SQL)", "RESTORE Statements - Arguments", "DBCC CHECKDB",
"EXECUTE (Transact-SQL)"); tests check the output against that grammar.

Three parts: the quoting builder (``quote_name``, ``quote_string``, ``literal``, ``render``); BACKUP/RESTORE/DBCC
statements, with ``restore_statement`` the one formatter from a restore step to its RESTORE and ``move_files``
the one rule for naming moved files; and the named queries the product sends (catalog views, msdb, BizTalk's
tables), every value in them through the builder's quoting.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from biztalk_dr.domain.errors import TsqlBuildError
from biztalk_dr.domain.paths import sql_join

__all__ = [
    "Recovery",
    "Move",
    "quote_name",
    "quote_string",
    "qualified_name",
    "literal",
    "exec_procedure",
    "backup_database",
    "backup_log",
    "restore_database",
    "restore_log",
    "restore_database_options",
    "restore_log_options",
    "restore_statement",
    "move_files",
    "recover_database",
    "restore_headeronly",
    "restore_filelistonly",
    "restore_verifyonly",
    "dbcc_checkdb",
    "drop_database",
    "map_user_to_login",
    "server_identity",
    "current_session_id",
    "clock_now",
    "database_names",
    "database_ids",
    "database_states",
    "database_state",
    "database_recovery_states",
    "free_bytes_of_master_volume",
    "last_stop_at_mark",
    "stop_at_marks",
    "backup_catalog",
    "backup_history",
    "sql_agent_job",
    "folder_seen_by_server",
    "registered_custom_databases",
    "move_custom_database",
    "register_custom_database",
    "biztalk_database_servers",
    "orphaned_sql_users",
    "sql_login_names",
    "user_sessions",
    "management_group_rows",
    "spool_readable",
    "catalog_readable",
    "Name",
    "render",
    "MAX_IDENTIFIER_LENGTH",
    "MAX_MARK_NAME_LENGTH",
]

MAX_IDENTIFIER_LENGTH = 128  # sysname
MAX_MARK_NAME_LENGTH = 32  # "BEGIN TRANSACTION": mark (transaction) names longer than 32 characters are not allowed
_MAX_PATH_LENGTH = 259  # BACKUP/RESTORE device names: nvarchar(260) incl. terminator
_PARAMETER_NAME = re.compile(r"@?[A-Za-z_][A-Za-z0-9_]*\Z")
_FORBIDDEN = ("\x00",)


class Recovery(enum.Enum):
    """How a RESTORE leaves the database."""

    RECOVERY = "RECOVERY"  # online: no further backups can be applied
    NORECOVERY = "NORECOVERY"  # restoring: ready for the next log


@dataclass(frozen=True)
class Move:
    """``MOVE N'logical_file_name' TO N'operating_system_file_name'``"""

    logical_name: str
    physical_name: str


def _check_text(value: object, what: str, max_length: int) -> str:
    if not isinstance(value, str):
        raise TsqlBuildError(f"{what} must be a string, got {type(value).__name__}")
    if not value:
        raise TsqlBuildError(f"{what} must not be empty")
    if len(value) > max_length:
        raise TsqlBuildError(f"{what} is {len(value)} characters long; SQL Server allows at most {max_length}: {value!r}")
    if any(ch in value for ch in _FORBIDDEN):
        raise TsqlBuildError(f"{what} contains a NUL character: {value!r}")
    return value


def quote_name(name: str) -> str:
    """``[name]`` with ``]`` doubled (QUOTENAME's rule); refuses what SQL Server would refuse."""
    _check_text(name, "identifier", MAX_IDENTIFIER_LENGTH)
    return "[" + name.replace("]", "]]") + "]"


def quote_string(value: str) -> str:
    """``N'value'`` with ``'`` doubled: a Unicode literal, whatever the server's collation."""
    if not isinstance(value, str):
        raise TsqlBuildError(f"string literal must be a string, got {type(value).__name__}")
    if "\x00" in value:
        raise TsqlBuildError(f"string literal contains a NUL character: {value!r}")
    return "N'" + value.replace("'", "''") + "'"


def qualified_name(*parts: str) -> str:
    """``[db].[schema].[object]``; every part quoted."""
    if not 1 <= len(parts) <= 4:
        raise TsqlBuildError(f"a qualified name has 1 to 4 parts, got {len(parts)}")
    return ".".join(quote_name(p) for p in parts)


def literal(value: object) -> str:
    """A T-SQL literal for a procedure argument."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise TsqlBuildError(f"numeric literal must be finite, got {value}")
        return format(value, "f")
    if isinstance(value, str):
        return quote_string(value)
    if isinstance(value, dt.datetime):
        return quote_string(value.isoformat(timespec="milliseconds"))
    raise TsqlBuildError(f"no T-SQL literal for {type(value).__name__} {value!r}")


@dataclass(frozen=True)
class Name:
    """An identifier (one to four parts) for :func:`render`: it becomes ``[a].[b].[c]``."""

    parts: tuple[str, ...]

    def __init__(self, *parts: str) -> None:
        object.__setattr__(self, "parts", tuple(parts))


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render(template: str, **values: object) -> str:
    """Fill ``{placeholders}`` of a fixed query: a :class:`Name` becomes a quoted identifier, any other
    value a literal, and a list of values comma-separated literals (for ``IN ({names})``). The template itself must not contain quotes or brackets, so every quoted part of
    the result comes from this module."""
    if any(ch in template for ch in "'[]\""):
        raise TsqlBuildError("a template holds no quoted text: pass names as Name(...) and values as arguments")
    used = set(_PLACEHOLDER.findall(template))
    if used != set(values):
        raise TsqlBuildError(f"template placeholders {sorted(used)} do not match arguments {sorted(values)}")
    def one(value: object) -> str:
        if isinstance(value, Name):
            return qualified_name(*value.parts)
        if isinstance(value, list | tuple):
            if not value:
                raise TsqlBuildError("an empty list cannot be rendered (IN () is not valid T-SQL)")
            return ", ".join(literal(v) for v in value)
        return literal(value)

    rendered = {k: one(v) for k, v in values.items()}
    return _PLACEHOLDER.sub(lambda m: rendered[m.group(1)], template)


def exec_procedure(procedure: Sequence[str] | str, arguments: Mapping[str, object] | None = None) -> str:
    """``EXEC [db].[dbo].[proc] @Name = value, ...`` with named arguments only (order-proof)."""
    parts = (procedure,) if isinstance(procedure, str) else tuple(procedure)
    text = "EXEC " + qualified_name(*parts)
    args = []
    for name, value in (arguments or {}).items():
        if not isinstance(name, str) or not _PARAMETER_NAME.match(name):
            raise TsqlBuildError(f"invalid procedure parameter name {name!r}")
        args.append(f"@{name.lstrip('@')} = {literal(value)}")
    return text + (" " + ", ".join(args) if args else "")


def _disks(paths: Sequence[str] | str, keyword: str) -> str:
    paths = [paths] if isinstance(paths, str) else list(paths)
    if not paths:
        raise TsqlBuildError(f"{keyword} needs at least one backup file")
    if len(paths) > 64:
        raise TsqlBuildError(f"a media set has at most 64 backup devices, got {len(paths)}")
    for p in paths:
        _check_text(p, "backup file path", _MAX_PATH_LENGTH)
    return f"{keyword} " + ", ".join(f"DISK = {quote_string(p)}" for p in paths)


def _stats(stats: int | None) -> list[str]:
    if stats is None:
        return []
    if isinstance(stats, bool) or not isinstance(stats, int) or not 1 <= stats <= 100:
        raise TsqlBuildError(f"STATS must be a whole percentage from 1 to 100, got {stats!r}")
    return [f"STATS = {stats}"]


def _file_position(file: int | None) -> list[str]:
    if file is None:
        return []
    if isinstance(file, bool) or not isinstance(file, int) or file < 1:
        raise TsqlBuildError(f"FILE (backup set position) must be a whole number from 1, got {file!r}")
    return [f"FILE = {file}"]


def _with(options: list[str]) -> str:
    return " WITH " + ", ".join(options) if options else ""


def _backup(kind: str, database: str, paths: Sequence[str] | str, *, copy_only: bool, compression: bool | None,
            checksum: bool, stats: int | None, differential: bool = False) -> str:
    options = []
    if differential:
        options.append("DIFFERENTIAL")
    if copy_only:
        options.append("COPY_ONLY")
    if compression is not None:
        options.append("COMPRESSION" if compression else "NO_COMPRESSION")
    if checksum:
        options.append("CHECKSUM")
    options += _stats(stats)
    return f"BACKUP {kind} {quote_name(database)} {_disks(paths, 'TO')}{_with(options)}"


def backup_database(database: str, paths: Sequence[str] | str, *, copy_only: bool = False,
                    differential: bool = False, compression: bool | None = None, checksum: bool = False,
                    stats: int | None = None) -> str:
    """A full (or differential) backup. Outside BizTalk's procedures it must be COPY_ONLY, or the
    BizTalk log chain breaks (biztalk-dr.md section 2); callers decide, the builder only checks syntax."""
    if copy_only and differential:
        raise TsqlBuildError("COPY_ONLY and DIFFERENTIAL cannot be combined: a copy-only backup is never a base")
    return _backup("DATABASE", database, paths, copy_only=copy_only, compression=compression,
                   checksum=checksum, stats=stats, differential=differential)


def backup_log(database: str, paths: Sequence[str] | str, *, copy_only: bool = False,
               compression: bool | None = None, checksum: bool = False, stats: int | None = None) -> str:
    return _backup("LOG", database, paths, copy_only=copy_only, compression=compression,
                   checksum=checksum, stats=stats)


def _moves(moves: Sequence[Move]) -> list[str]:
    seen = set()
    out = []
    for move in moves:
        _check_text(move.logical_name, "MOVE logical file name", MAX_IDENTIFIER_LENGTH)
        _check_text(move.physical_name, "MOVE physical file name", _MAX_PATH_LENGTH)
        if move.logical_name.lower() in seen:
            raise TsqlBuildError(f"logical file {move.logical_name!r} is moved twice")
        seen.add(move.logical_name.lower())
        out.append(f"MOVE {quote_string(move.logical_name)} TO {quote_string(move.physical_name)}")
    return out


def restore_database(database: str, paths: Sequence[str] | str, *, recovery: Recovery = Recovery.NORECOVERY,
                     moves: Sequence[Move] = (), replace: bool = False, file: int | None = None,
                     stats: int | None = None) -> str:
    """Restore a full or differential backup (the start of a restore sequence)."""
    options = restore_database_options(recovery=recovery, moves=moves, replace=replace, file=file, stats=stats)
    return f"RESTORE DATABASE {quote_name(database)} {_disks(paths, 'FROM')}{_with(options)}"


def restore_database_options(*, recovery: Recovery = Recovery.NORECOVERY, moves: Sequence[Move] = (),
                             replace: bool = False, file: int | None = None, stats: int | None = None) -> list[str]:
    """The WITH options of ``restore_database``, for plans that show them before anything runs."""
    options = _file_position(file) + _moves(moves)
    if replace:
        options.append("REPLACE")
    options.append(recovery.value)
    return options + _stats(stats)


def restore_log(database: str, paths: Sequence[str] | str, *, recovery: Recovery = Recovery.NORECOVERY,
                stop_at_mark: str | None = None, stop_before_mark: str | None = None,
                mark_after: dt.datetime | None = None, stop_at: dt.datetime | None = None,
                file: int | None = None, stats: int | None = None) -> str:
    """Apply one log backup. ``stop_at_mark`` includes the marked transaction, ``stop_before_mark``
    excludes it; with ``mark_after`` the first mark of that name after that time is used."""
    options = restore_log_options(recovery=recovery, stop_at_mark=stop_at_mark, stop_before_mark=stop_before_mark,
                                  mark_after=mark_after, stop_at=stop_at, file=file, stats=stats)
    return f"RESTORE LOG {quote_name(database)} {_disks(paths, 'FROM')}{_with(options)}"


def restore_log_options(*, recovery: Recovery = Recovery.NORECOVERY, stop_at_mark: str | None = None,
                        stop_before_mark: str | None = None, mark_after: dt.datetime | None = None,
                        stop_at: dt.datetime | None = None, file: int | None = None,
                        stats: int | None = None) -> list[str]:
    """The WITH options of ``restore_log``, for plans that show them before anything runs."""
    stops = [s for s in (stop_at_mark, stop_before_mark, stop_at) if s is not None]
    if len(stops) > 1:
        raise TsqlBuildError("give only one of STOPATMARK, STOPBEFOREMARK and STOPAT")
    if mark_after is not None and stop_at_mark is None and stop_before_mark is None:
        raise TsqlBuildError("AFTER only qualifies STOPATMARK or STOPBEFOREMARK")
    options = _file_position(file) + [recovery.value]
    for keyword, mark in (("STOPATMARK", stop_at_mark), ("STOPBEFOREMARK", stop_before_mark)):
        if mark is not None:
            _check_text(mark, f"{keyword} mark name", MAX_MARK_NAME_LENGTH)
            clause = f"{keyword} = {quote_string(mark)}"
            if mark_after is not None:
                clause += f" AFTER {quote_string(_datetime_text(mark_after))}"
            options.append(clause)
    if stop_at is not None:
        options.append(f"STOPAT = {quote_string(_datetime_text(stop_at))}")
    return options + _stats(stats)


def _datetime_text(value: dt.datetime) -> str:
    if not isinstance(value, dt.datetime):
        raise TsqlBuildError(f"a point in time must be a datetime, got {type(value).__name__}")
    if value.tzinfo is not None:
        raise TsqlBuildError("SQL Server compares restore points in the server's local time: pass a naive datetime")
    return value.isoformat(timespec="milliseconds")


def recover_database(database: str) -> str:
    """``RESTORE DATABASE [db] WITH RECOVERY``: bring a restoring database online, applying nothing."""
    return f"RESTORE DATABASE {quote_name(database)} WITH RECOVERY"


def restore_headeronly(paths: Sequence[str] | str) -> str:
    return f"RESTORE HEADERONLY {_disks(paths, 'FROM')}"


def restore_filelistonly(paths: Sequence[str] | str, *, file: int | None = None) -> str:
    return f"RESTORE FILELISTONLY {_disks(paths, 'FROM')}{_with(_file_position(file))}"


def restore_verifyonly(paths: Sequence[str] | str, *, file: int | None = None) -> str:
    """Readability only, not structure: DBCC CHECKDB after a real restore checks structure.
    No CHECKSUM: BizTalk's backups have none and SQL Server would answer 3187."""
    return f"RESTORE VERIFYONLY {_disks(paths, 'FROM')}{_with(_file_position(file))}"


def dbcc_checkdb(database: str, *, no_infomsgs: bool = True) -> str:
    options = ["NO_INFOMSGS", "ALL_ERRORMSGS"] if no_infomsgs else ["ALL_ERRORMSGS"]
    return f"DBCC CHECKDB ({quote_name(database)}){_with(options)}"


def drop_database(database: str) -> str:
    return f"DROP DATABASE {quote_name(database)}"


# ---------------------------------------------------------------------------------------------- one RESTORE formatter
class DatabaseFile(Protocol):
    """A file of a backed-up database as its backup header lists it (``backup_files.BackupFile``)."""

    logical_name: str
    physical_name: str
    type: str  # "D" data, "L" log, ...


def move_files(files: Sequence[DatabaseFile], *, data_folder: str | None, log_folder: str | None,
               restored_as: str | None = None) -> list[Move]:
    """WITH MOVE for the files of a backup, the one naming rule: log files go to ``log_folder``, the others to
    ``data_folder`` (a folder that is None: those files stay where the backup says). Restored under its own name, a
    file keeps its file name; restored under another name (``restored_as``, e.g. a validation copy beside the
    original), it is named ``<restored_as>_<logical name>.mdf`` (``.ldf`` for a log file), so no two copies share a
    file."""
    moves = []
    for f in files:
        is_log = f.type == "L"
        folder = log_folder if is_log else data_folder
        if folder is None:
            continue
        if restored_as is None:
            name = f.physical_name.replace("\\", "/").rsplit("/", 1)[-1]
        else:
            name = f"{restored_as}_{f.logical_name}.{'ldf' if is_log else 'mdf'}"
        moves.append(Move(f.logical_name, sql_join(folder, name)))
    return moves


def restore_statement(database: str, paths: Sequence[str] | str, *, log: bool,
                      recovery: Recovery = Recovery.NORECOVERY, file: int | None = None,
                      moves: Sequence[Move] = (), replace: bool = False, stop_at_mark: str | None = None,
                      stop_before_mark: str | None = None, mark_after: dt.datetime | None = None,
                      stop_at: dt.datetime | None = None) -> str:
    """The RESTORE of one step of a restore plan (shipping's standby restores, validation, the failover's last log,
    the CLI's plans): ``RESTORE LOG`` for a log backup (with its stop), else ``RESTORE DATABASE`` (with its moves)."""
    if log:
        if moves or replace:
            raise TsqlBuildError("MOVE and REPLACE belong to the restore of a full or differential backup")
        return restore_log(database, paths, recovery=recovery, file=file, stop_at_mark=stop_at_mark,
                           stop_before_mark=stop_before_mark, mark_after=mark_after, stop_at=stop_at)
    if any(v is not None for v in (stop_at_mark, stop_before_mark, mark_after, stop_at)):
        raise TsqlBuildError("a stop (STOPAT, STOPATMARK, STOPBEFOREMARK) belongs to the restore of a log backup")
    return restore_database(database, paths, recovery=recovery, file=file, moves=moves, replace=replace)


# ---------------------------------------------------------------------------------------------- the instance
def server_identity() -> str:
    return "SELECT @@SERVERNAME AS server_name, @@VERSION AS version"


def current_session_id() -> str:
    return "SELECT @@SPID AS spid"


def clock_now(*, local_time: bool) -> str:
    """The server's clock as ``now``: local time, or UTC."""
    return "SELECT SYSDATETIME() AS now" if local_time else "SELECT SYSUTCDATETIME() AS now"


def free_bytes_of_master_volume() -> str:
    """``available_bytes`` of the volume that holds master's data file."""
    return "SELECT available_bytes FROM sys.dm_os_volume_stats(1, 1)"


def folder_seen_by_server(path: str) -> str:
    """How SQL Server itself sees ``path`` (``file_exists``, ``file_is_a_directory``, ``parent_directory_exists``)."""
    return render("SELECT file_exists, file_is_a_directory, parent_directory_exists FROM {f}({path})",
                  f=Name("sys", "dm_os_file_exists"), path=path)


def user_sessions() -> str:
    return ("SELECT session_id, database_id, host_name, program_name, login_name FROM "
            "sys.dm_exec_sessions WHERE is_user_process = 1")


# ---------------------------------------------------------------------------------------------- databases
def database_names() -> str:
    return "SELECT name FROM sys.databases"


def database_ids() -> str:
    return "SELECT database_id, name FROM sys.databases"


def database_states() -> str:
    """Every database's ``name`` and ``state_desc``."""
    return "SELECT name, state_desc FROM sys.databases"


def database_state(database: str) -> str:
    """One database's ``state_desc`` (no row: it does not exist)."""
    return f"SELECT state_desc FROM sys.databases WHERE name = {literal(database)}"


def database_recovery_states(names: Sequence[str]) -> str:
    """``name``, ``state_desc`` and ``recovery_model_desc`` of the named databases."""
    return render("SELECT name, state_desc, recovery_model_desc FROM sys.databases WHERE name IN ({names}) "
                  "ORDER BY name", names=list(names))


def last_stop_at_mark(database: str) -> str:
    """The mark the newest restore of ``database`` stopped at (msdb.restorehistory; no row: never restored)."""
    return ("SELECT TOP (1) stop_at_mark_name FROM msdb.dbo.restorehistory WHERE "
            f"destination_database_name = {literal(database)} ORDER BY restore_history_id DESC")


def stop_at_marks() -> str:
    """Every restore (``name``, ``mark``) in msdb.restorehistory, oldest first."""
    return ("SELECT destination_database_name AS name, stop_at_mark_name AS mark "
            "FROM msdb.dbo.restorehistory ORDER BY restore_history_id")


def backup_catalog(paths: Sequence[str]) -> str:
    """msdb's record of the backups written to ``paths``: path, database, type and LSNs, oldest set first."""
    return render("""SELECT bmf.physical_device_name AS path, bs.database_name, bs.type, bs.first_lsn, bs.last_lsn
FROM msdb.dbo.backupset AS bs
JOIN msdb.dbo.backupmediafamily AS bmf ON bmf.media_set_id = bs.media_set_id
WHERE bmf.physical_device_name IN ({paths})
ORDER BY bs.backup_set_id""", paths=list(paths))


def sql_agent_job(job: str) -> str:
    return render("SELECT name, enabled FROM {t} WHERE name = {job}", t=Name("msdb", "dbo", "sysjobs"), job=job)


# ---------------------------------------------------------------------------------------------- logins and users
def orphaned_sql_users(database: str) -> str:
    """Users of SQL logins in ``database`` whose SID no login of the instance has."""
    db = quote_name(database)
    return (f"SELECT dp.name FROM {db}.sys.database_principals AS dp LEFT JOIN sys.server_principals AS sp "
            "ON sp.sid = dp.sid WHERE dp.type = 'S' AND dp.authentication_type = 1 AND dp.principal_id > 4 "
            "AND sp.sid IS NULL ORDER BY dp.name")


def sql_login_names() -> str:
    return "SELECT name FROM sys.server_principals WHERE type = 'S'"


def map_user_to_login(database: str, user: str) -> str:
    """``ALTER USER`` mapping ``user`` to the login of the same name."""
    return f"USE {quote_name(database)}; ALTER USER {quote_name(user)} WITH LOGIN = {quote_name(user)}"


# ---------------------------------------------------------------------------------------------- BizTalk's tables
def backup_history(management_database: str, *, limit: int = 5000) -> str:
    """The newest ``limit`` rows of BizTalk's backup history, newest first (the TOP keeps years of history cheap)."""
    return render("SELECT TOP ({limit}) BackupId, BackupSetId, MarkName, DatabaseName, ServerName, BackupFileName, "
                  "BackupFileLocation, BackupType, BackupDateTime, SetComplete "
                  "FROM {table} ORDER BY BackupSetId DESC, BackupId DESC",
                  limit=limit, table=Name(management_database, "dbo", "adm_BackupHistory"))


def _custom_databases(management_database: str) -> Name:
    return Name(management_database, "dbo", "adm_OtherBackupDatabases")


def registered_custom_databases(management_database: str) -> str:
    return render("SELECT DatabaseName, ServerName FROM {t}", t=_custom_databases(management_database))


def move_custom_database(management_database: str, database: str, server: str) -> str:
    return render("UPDATE {t} SET ServerName = {server}, BTSServerName = {server} WHERE DatabaseName = {name}",
                  t=_custom_databases(management_database), name=database, server=server)


def register_custom_database(management_database: str, database: str, server: str) -> str:
    return render("INSERT INTO {t} (DefaultDatabaseName, DatabaseName, ServerName, BTSServerName) "
                  "VALUES ({name}, {name}, {server}, {server})",
                  t=_custom_databases(management_database), name=database, server=server)


def biztalk_database_servers(management_database: str) -> str:
    """Where the management database says BizTalk's databases are (``db``, ``server``, table ``t``)."""
    m = quote_name(management_database)
    return (f"SELECT DBName AS db, DBServerName AS server, 'adm_MessageBox' AS t FROM "
            f"{m}.dbo.adm_MessageBox UNION ALL SELECT DatabaseName, ServerName, 'adm_OtherDatabases' "
            f"FROM {m}.dbo.adm_OtherDatabases")


def management_group_rows(database: str) -> str:
    """``n``: the group rows of a (restored) management database."""
    return f"SELECT COUNT(*) AS n FROM {quote_name(database)}.dbo.adm_Group"


def spool_readable(database: str) -> str:
    """``n`` > 0 when a (restored) MessageBox's core table, Spool, can be read."""
    return f"SELECT COUNT(*) + 1 AS n FROM {quote_name(database)}.dbo.Spool"


def catalog_readable(database: str) -> str:
    """``n`` > 0 when ``database``'s catalog can be read."""
    return f"SELECT COUNT(*) + 1 AS n FROM {quote_name(database)}.sys.tables"
