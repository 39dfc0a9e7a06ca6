"""SQL Server's messages, by number, with their severity and text (sys.messages, language 1033).

Texts are those of "Database Engine events and errors" (MicrosoftDocs sql-docs, the SQL Server 2022
tables); the stand-in fills the ``%ls``/``%d`` placeholders as SQL Server does. :class:`SqlError`
is how the engine's parts report a T-SQL error: the engine turns it into a Message event.
"""

from __future__ import annotations

import enum
import re

from sqlserver_standin.events import Message

__all__ = ["Abort", "SqlError", "sql_error", "info", "message_text", "MESSAGES"]

# number: (severity, text)
MESSAGES: dict[int, tuple[int, str]] = {
    102: (15, "Incorrect syntax near '%.*ls'."),
    156: (15, "Incorrect syntax near the keyword '%.*ls'."),
    105: (15, "Unclosed quotation mark after the character string '%.*ls'."),
    113: (15, "Missing end comment mark '*/'."),
    137: (15, 'Must declare the scalar variable "%.*ls".'),
    134: (15, "The variable name '%.*ls' has already been declared. Variable names must be unique within a query batch or stored procedure."),
    141: (15, "A SELECT statement that assigns a value to a variable must not be combined with data-retrieval operations."),
    195: (15, "'%.*ls' is not a recognized %S_MSG."),
    201: (16, "Procedure or function '%.*ls' expects parameter '%.*ls', which was not supplied."),
    207: (16, "Invalid column name '%.*ls'."),
    208: (16, "Invalid object name '%.*ls'."),
    209: (16, "Ambiguous column name '%.*ls'."),
    213: (16, "Column name or number of supplied values does not match table definition."),
    226: (16, "%ls statement not allowed within multi-statement transaction."),
    245: (16, "Conversion failed when converting the %ls value '%.*ls' to data type %ls."),
    266: (16, "Transaction count after EXECUTE indicates a mismatching number of BEGIN and COMMIT statements. Previous count = %ld, current count = %ld."),
    515: (16, "Cannot insert the value NULL into column '%.*ls', table '%.*ls'; column does not allow nulls. %ls fails."),
    911: (16, "Database '%.*ls' does not exist. Make sure that the name is entered correctly."),
    927: (14, "Database '%.*ls' cannot be opened. It is in the middle of a restore."),
    942: (14, "Database '%.*ls' cannot be opened because it is offline."),
    1222: (16, "Lock request time out period exceeded."),
    1801: (16, "Database '%.*ls' already exists. Choose a different database name."),
    1834: (16, "The file '%ls' cannot be overwritten.  It is being used by database '%.*ls'."),
    2526: (16, "Incorrect DBCC statement. Check the documentation for the correct DBCC syntax and options."),
    2528: (10, "DBCC execution completed. If DBCC printed error messages, contact your system administrator."),
    2627: (14, "Violation of %ls constraint '%.*ls'. Cannot insert duplicate key in object '%.*ls'. The duplicate key value is %ls."),
    2714: (16, "There is already an object named '%.*ls' in the database."),
    2812: (16, "Could not find stored procedure '%.*ls'."),
    3013: (16, "%hs is terminating abnormally."),
    3014: (10, "%hs successfully processed %I64d pages in %d.%03d seconds (%d.%03d MB/sec)."),
    3021: (16, "Cannot perform a backup or restore operation within a transaction."),
    3035: (16, "Cannot perform a differential backup for database \"%ls\", because a current database backup does not exist. Perform a full database backup by reissuing BACKUP DATABASE, omitting the WITH DIFFERENTIAL option."),
    3101: (16, "Exclusive access could not be obtained because the database is in use."),
    3108: (16, "To restore the master database, the server must be running in single-user mode. For information on starting in single-user mode, see \"How to: Start an Instance of SQL Server (sqlservr.exe)\" in Books Online."),
    3117: (16, "The log or differential backup cannot be restored because no files are ready to rollforward."),
    3118: (16, "The database \"%ls\" does not exist. RESTORE can only create a database when restoring either a full backup or a file backup of the primary file."),
    3132: (16, "The media set has %d media families but only %d are provided. All members must be provided."),
    3135: (16, "The backup set in file '%ls' was created by %hs and cannot be used for this restore operation."),
    3136: (16, "This differential backup cannot be restored because the database has not been restored to the correct earlier state."),
    3147: (16, "Backup and restore operations are not allowed on database tempdb."),
    3154: (16, "The backup set holds a backup of a database other than the existing '%ls' database."),
    3156: (16, "File '%ls' cannot be restored to '%ls'. Use WITH MOVE to identify a valid location for the file."),
    3159: (16, "The tail of the log for the database \"%ls\" has not been backed up. Use BACKUP LOG WITH NORECOVERY to backup the log if it contains work you do not want to lose. Use the WITH REPLACE or WITH STOPAT clause of the RESTORE statement to just overwrite the contents of the log."),
    3183: (16, "RESTORE detected an error on page (%d:%d) in database \"%ls\" as read from the backup set."),
    3187: (16, "RESTORE WITH CHECKSUM cannot be specified because the backup set does not contain checksum information."),
    3201: (16, "Cannot open backup device '%ls'. Operating system error %ls."),
    3203: (16, "Read on \"%ls\" failed: %ls"),
    3206: (16, "Backup device '%.*ls' does not exist. To view existing backup devices, use the sys.backup_devices catalog view. To create a new backup device use either sp_addumpdevice or SQL Server Management Studio."),
    3211: (10, "%d percent processed."),
    3234: (16, "Logical file '%.*ls' is not part of database '%ls'. Use RESTORE FILELISTONLY to list the logical file names."),
    3241: (16, "The media family on device '%ls' is incorrectly formed. SQL Server cannot process this media family."),
    3242: (16, "The file on device '%ls' is not a valid Microsoft Tape Format backup set."),
    3262: (10, "The backup set on file %d is valid."),
    3119: (16, "Problems were identified while planning for the RESTORE statement. Previous messages provide details."),
    103: (15, "The identifier that starts with '%.*ls' is too long. Maximum length is %d."),
    3701: (11, "Cannot drop the %ls '%.*ls', because it does not exist or you do not have permission."),
    3702: (16, "Cannot drop database \"%.*ls\" because it is currently in use."),
    3906: (16, "Failed to update database \"%.*ls\" because the database is read-only."),
    3902: (16, "The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION."),
    3903: (16, "The ROLLBACK TRANSACTION request has no corresponding BEGIN TRANSACTION."),
    4035: (10, "Processed %I64d pages for database '%ls', file '%ls' on file %d."),
    4208: (16, "The statement %hs is not allowed while the recovery model is SIMPLE. Use BACKUP DATABASE or change the recovery model using ALTER DATABASE."),
    4212: (16, "Cannot back up the log of the master database. Use BACKUP DATABASE instead."),
    4214: (16, "BACKUP LOG cannot be performed because there is no current database backup."),
    4305: (16, "The log in this backup set begins at LSN %.*ls, which is too recent to apply to the database. An earlier log backup that includes LSN %.*ls can be restored."),
    4322: (10, "This backup set contains records that were logged before the designated point in time. The database is being left in the restoring state so that more roll forward can be performed."),
    4326: (16, "The log in this backup set terminates at LSN %.*ls, which is too early to apply to the database. A more recent log backup that includes LSN %.*ls can be restored."),
    4329: (10, "This log file contains records logged before the designated mark. The database is being left in the Restoring state so you can apply another log file."),
    4330: (16, "This backup set cannot be applied because it is on a recovery path that is inconsistent with the database. The recovery path is the sequence of data and log backups that have brought the database to a particular recovery point. Find a compatible backup to restore, or restore the rest of the database to match a recovery point within this backup set, which will restore the database to a different point in time. For more information about recovery paths, see SQL Server Books Online."),
    4334: (16, "The named mark does not identify a valid LSN."),
    4338: (16, "The STOPAT clause specifies a point too early to allow this backup set to be restored. Choose a different stop point or use RESTORE DATABASE WITH RECOVERY to recover at the current point."),
    5133: (16, "Directory lookup for the file \"%ls\" failed with the operating system error %ls."),
    5011: (14, "User does not have permission to alter database '%.*ls', the database does not exist, or the database is not in a state that allows access checks."),
    5069: (16, "ALTER DATABASE statement failed."),
    8145: (16, "%.*ls is not a parameter for procedure %.*ls."),
    8144: (16, "Procedure or function %.*ls has too many arguments specified."),
    8928: (16, "Object ID %d, index ID %d, partition ID %I64d, alloc unit ID %I64d (type %.*ls): Page %S_PGID could not be processed.  See other errors for details."),
    8939: (16, "Table error: Object ID %d, index ID %d, partition ID %I64d, alloc unit ID %I64d (type %.*ls), page %S_PGID. Test (%hs) failed. Values are %ld and %ld."),
    8989: (10, "CHECKDB found %d allocation errors and %d consistency errors in database '%ls'."),
    8958: (10, "%ls is the minimum repair level for the errors found by DBCC CHECKDB (%ls)."),
    15151: (16, "Cannot find the %S_MSG '%.*ls', because it does not exist or you do not have permission."),
    15007: (16, "'%ls' is not a valid login or you do not have permission."),
    15023: (16, "User, group, or role '%ls' already exists in the current database."),
    15025: (16, "The server principal '%ls' already exists."),
    15063: (16, "The login already has an account under a different user name."),
    14262: (16, "The specified %s ('%s') does not exist."),
    18456: (14, "Login failed for user '%.*ls'."),
    50000: (16, "%ls"),
}

_PLACEHOLDER = re.compile(r"%(?:\.\*ls|ls|hs|I64d|03d|d|ld|lc|s|S_PGID|S_MSG|u)")


class Abort(enum.Enum):
    """What an error ends, as SQL Server decides: the statement, or the whole batch."""

    STATEMENT = "statement"
    BATCH = "batch"


def message_text(number: int, *args: object) -> str:
    _severity, template = MESSAGES[number]
    values = iter(args)

    def fill(match: re.Match[str]) -> str:
        value = next(values)
        return f"{value:03d}" if match.group(0) == "%03d" else str(value)

    return _PLACEHOLDER.sub(fill, template)


class SqlError(Exception):
    """A T-SQL error with SQL Server's number, severity and text; ``abort`` says what it ends."""

    def __init__(self, number: int, text: str, severity: int = 16, state: int = 1,
                 abort: Abort = Abort.STATEMENT, extra: tuple[Message, ...] = ()) -> None:
        super().__init__(f"Msg {number}, Level {severity}: {text}")
        self.number = number
        self.text = text
        self.severity = severity
        self.state = state
        self.abort = abort
        self.extra = extra  # messages that follow this one (the 3013 after a BACKUP/RESTORE error)

    def messages(self) -> list[Message]:
        return [Message(self.number, self.severity, self.state, self.text), *self.extra]


def sql_error(number: int, *args: object, state: int = 1, abort: Abort = Abort.STATEMENT,
              extra: tuple[Message, ...] = ()) -> SqlError:
    severity, _ = MESSAGES[number]
    return SqlError(number, message_text(number, *args), severity, state, abort, extra)


def info(number: int, *args: object, state: int = 1) -> Message:
    severity, _ = MESSAGES[number]
    return Message(number, severity, state, message_text(number, *args))
