"""One error tree for biztalk-dr, so callers react to what went wrong, never to message text.

    BizTalkDrError
    ├── ConfigError                 the group's YAML file is invalid (every problem, with its line)
    ├── GroupFileBroken             the DAGs run on the file's last valid version (the health check fails)
    ├── TsqlBuildError              a T-SQL statement was asked for with values it cannot take
    ├── PathOutsideRootError        a file path escapes its configured root
    ├── SetupError                  the environment is not set up (an Airflow connection, the ODBC driver):
    │   │                           the CLI exits 2 with one line
    │   └── PrerequisiteMissing     unixODBC, a driver or a connection a command needs (prerequisites.py)
    ├── PreflightError              a check before a backup/restore step failed (with what to do)
    │   └── FailoverRefused         the failover assessment: a database cannot reach the target mark
    ├── FailoverRequestError        the failover form's values are not valid (ValueError too)
    ├── FailoverNotApproved         the failover approval was rejected or timed out; nothing was changed
    ├── WindowsStepError            a step on a BizTalk server (stop, update, start) failed
    ├── StandbyStateUnreadable      the standby state file cannot be read (a re-seed rebuilds it)
    ├── StandbyBusy                 another run holds the standby lock
    ├── CopyVerificationError       a copy at its destination is not what was read from the source
    ├── ShippingError               log shipping cannot go on for now (with what to do)
    │   ├── ChainGapError           a shipped log does not continue the previous one
    │   ├── SourceUnverified        the source file failed its read-back when taken: never shipped
    │   ├── LandingUnwritable       the landing folder cannot be written (read-only, full, permissions)
    │   └── ShippedFileDamaged      a shipped copy is damaged (hash or SQL Server); quarantined
    ├── BackupSetProblem            a backup set is partial, incomplete, or its files are missing
    ├── BackupScheduleMissed        no new backup set where the schedule promised one
    ├── FirstFullSetPending         a new group's check waits for its first full set (the task skips)
    ├── BackupFileError             a file is not a readable SQL Server backup (which file, why)
    ├── RestorePlanError            the backups cannot reach the target (gap, missing stripe, no full)
    ├── ValidationFailed            the restore validation proved a problem (the report says where)
    ├── DataLossWindowExceeded      what a failover now would lose is over the critical threshold
    └── SqlServerError              SQL Server answered with an error (number, severity, state, text)
        ├── SqlConnectionError      the instance cannot be reached or refused the login
        │   ├── LoginRefused        18456
        │   └── ConnectionNotConfigured  no such Airflow connection, or it names no ODBC driver (also a SetupError)
        ├── DriverError             the ODBC driver's own error: no SQL Server answered (0, FreeTDS 200xx)
        └── (by number) see ``SQL_ERROR_CLASSES``: LogTooRecent 4305, LogAlreadyApplied 4326,
            DatabaseNotRestoring 3117, MarkNotFound 4334, DatabaseInUse 3101, BackupDeviceError 3201,
            BackupMediaDamaged 3203/3241/3242/3183/3189, BackupOfOtherDatabase 3154,
            TailLogNotBackedUp 3159, ChecksumNotAvailable 3187, InsideTransaction 3021,
            BackupRestoreAbnormal 3013 (alone)

SQL Server's error numbers are mapped to these classes once, here (``sql_error_for``, called by ``sqlserver.py``);
each class carries what callers decide on: ``advice_key`` (the advice-table entry when the error carries no advice
of its own), ``restore_advice_key`` (the entry for a failed standby RESTORE) and ``restore_retry_pauses`` (how often,
and after which pauses, a standby RESTORE is sent again). Callers catch classes and read these; none looks at a
number or a message text to decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from biztalk_dr.edge.prerequisites import Missing

__all__ = [
    "BizTalkDrError",
    "ConfigError",
    "ConfigProblem",
    "GroupFileBroken",
    "TsqlBuildError",
    "PathOutsideRootError",
    "PreflightError",
    "BackupSetProblem",
    "BackupScheduleMissed",
    "FirstFullSetPending",
    "BackupFileError",
    "ShippingError",
    "ShippedFileDamaged",
    "LandingUnwritable",
    "SourceUnverified",
    "ChainGapError",
    "StandbyStateUnreadable",
    "FailoverRefused",
    "SetupError",
    "PrerequisiteMissing",
    "FailoverRequestError",
    "FailoverNotApproved",
    "WindowsStepError",
    "StandbyBusy",
    "CopyVerificationError",
    "ValidationFailed",
    "DataLossWindowExceeded",
    "RestorePlanError",
    "SqlMessage",
    "SqlServerError",
    "SqlConnectionError",
    "ConnectionNotConfigured",
    "LoginRefused",
    "DriverError",
    "BackupRestoreAbnormal",
    "LogTooRecent",
    "LogAlreadyApplied",
    "DatabaseNotRestoring",
    "MarkNotFound",
    "DatabaseInUse",
    "BackupDeviceError",
    "BackupMediaDamaged",
    "BackupOfOtherDatabase",
    "TailLogNotBackedUp",
    "ChecksumNotAvailable",
    "InsideTransaction",
    "SQL_ERROR_CLASSES",
    "sql_error_class",
    "sql_error_for",
]


class BizTalkDrError(Exception):
    """Base of every error biztalk-dr raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a configuration file: where it is and what is expected instead."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ConfigError(BizTalkDrError):
    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class GroupFileBroken(BizTalkDrError):
    """The group's file does not validate and the DAGs run on its last valid version: backups go on, and the
    health check is red until the file is fixed."""

    def __init__(self, detail: str, advice: str) -> None:
        self.advice = advice
        super().__init__(detail)


class TsqlBuildError(BizTalkDrError, ValueError):
    """Raised before any SQL is sent: the caller passed a value the statement cannot take."""


class PathOutsideRootError(BizTalkDrError, ValueError):
    def __init__(self, path: str, root: str) -> None:
        super().__init__(f"{path!r} is outside its configured root {root!r}; refusing to touch it")
        self.path = path
        self.root = root


class PreflightError(BizTalkDrError):
    """A precondition of a DR step does not hold; ``advice`` tells the operator how to fix it."""

    def __init__(self, problems: Sequence[str], advice: str = "") -> None:
        self.problems = list(problems)
        self.advice = advice
        super().__init__("; ".join(self.problems) + (f". {advice}" if advice else ""))


class SetupError(BizTalkDrError):
    """biztalk-dr cannot even start: an Airflow connection, an ODBC driver or a setting is missing. Not a fault
    of the group; ``biztalk-dr`` commands exit 2 with this one line."""


class PrerequisiteMissing(SetupError):
    """A command cannot start: ``missing`` says what is missing and how to provide it."""

    def __init__(self, missing: Sequence[Missing]) -> None:
        self.missing = list(missing)
        super().__init__("; ".join(str(m) for m in self.missing))


class FailoverRefused(PreflightError):
    """The failover assessment refuses a real run: some database cannot reach the one target mark."""


class FailoverRequestError(BizTalkDrError, ValueError):
    """The failover form's values are not valid; ``problems`` names every field that is wrong."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("the failover request is not valid: " + "; ".join(problems))


class FailoverNotApproved(BizTalkDrError):
    """The approval was rejected or timed out; nothing was changed."""

    def __init__(self, detail: str, advice: str) -> None:
        self.advice = advice
        super().__init__(detail)


class WindowsStepError(BizTalkDrError):
    """A step on a BizTalk server (``server``, ``step``) failed."""

    def __init__(self, server: str, step: str, message: str) -> None:
        self.server, self.step = server, step
        super().__init__(f"{step} on {server}: {message}")


class StandbyStateUnreadable(BizTalkDrError):
    """The standby state file is unreadable (``path``); ``advice`` says what to do (a re-seed rebuilds it)."""

    def __init__(self, path: str, reason: str, advice: str) -> None:
        self.path = path
        self.advice = advice
        super().__init__(f"{path}: the standby state cannot be read ({reason})")


class StandbyBusy(BizTalkDrError):
    """Another run holds the standby lock (restores must never interleave)."""


class CopyVerificationError(BizTalkDrError):
    """The copy at the destination is not what was read from the source."""


class BackupSetProblem(BizTalkDrError):
    """A backup set cannot be used for recovery (partial, databases missing, files missing)."""

    def __init__(self, set_id: int | None, problems: Sequence[str], advice: str = "",
                 number: int | None = None) -> None:
        self.set_id = set_id
        self.problems = list(problems)
        self.advice = advice
        self.number = number  # SQL Server's error number when SQL Server found the problem
        super().__init__("; ".join(self.problems))


class BackupScheduleMissed(BizTalkDrError):
    """The newest complete backup set of a kind is older than its schedule allows."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        from biztalk_dr.domain.advice import advice

        self.advice = advice("backup_schedule_missed")
        super().__init__("; ".join(self.problems))


class FirstFullSetPending(BizTalkDrError):
    """A new group, within its grace (``first_full_set``): what the check needs is not there yet. Not a failure:
    the DAG task skips with this reason."""


class ShippingError(BizTalkDrError):
    """Log shipping cannot go on for now; ``number`` is SQL Server's error when SQL Server found the
    problem, ``advice`` what the operator does next."""

    def __init__(self, problems: Sequence[str], advice: str = "", number: int | None = None) -> None:
        self.problems = list(problems)
        self.advice = advice
        self.number = number
        super().__init__("; ".join(self.problems))


class ChainGapError(ShippingError):
    """A shipped log does not start where the previous log of its database ends."""


class SourceUnverified(ShippingError):
    """The source backup file failed its read-back when it was taken; it is never shipped as good."""


class LandingUnwritable(ShippingError):
    """The standby site's landing folder cannot be written (read-only, full, no permission)."""


class ShippedFileDamaged(ShippingError):
    """A shipped copy is not what was verified (content hash) or SQL Server found it damaged; it was quarantined
    (``quarantined``); ``source_bad``: the source file is damaged too (copying again cannot help)."""

    def __init__(self, problems: Sequence[str], advice: str = "", number: int | None = None, *,
                 file_name: str = "", quarantined: str = "", source_bad: bool = False) -> None:
        super().__init__(problems, advice, number)
        self.file_name = file_name
        self.quarantined = quarantined
        self.source_bad = source_bad


class ValidationFailed(BizTalkDrError):
    """The restore validation proved a problem; the report says which database and check."""

    def __init__(self, detail: str, advice: str) -> None:
        self.advice = advice
        super().__init__(detail)


class DataLossWindowExceeded(BizTalkDrError):
    """The data-loss window (what a failover now would lose) is over the critical threshold."""

    def __init__(self, detail: str, advice: str) -> None:
        self.advice = advice
        super().__init__(detail)


class BackupFileError(BizTalkDrError):
    """A file cannot be read as a SQL Server backup; the message names the file and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class RestorePlanError(BizTalkDrError):
    """No restore sequence of the given backups reaches the target; every problem is named with its
    LSNs and files."""

    def __init__(self, database: str, problems: Sequence[str]) -> None:
        self.database = database
        self.problems = list(problems)
        super().__init__(f"{database}: " + "; ".join(self.problems))


@dataclass(frozen=True)
class SqlMessage:
    """An error or informational message from SQL Server, as the driver reported it."""

    number: int
    text: str
    sqlstate: str = ""
    severity: int | None = None  # ODBC does not report severity; None when unknown


class SqlServerError(BizTalkDrError):
    """SQL Server refused a statement. ``number`` is the primary error (not the 3013 that follows).

    The class decides what callers do: ``advice_key`` (entry of the advice table when the error carries no advice
    of its own; "" for none), ``restore_advice_key`` (the entry when a standby RESTORE fails with it) and
    ``restore_retry_pauses`` (a standby RESTORE is sent again after each of these pauses, in seconds)."""

    advice_key: ClassVar[str] = ""
    restore_advice_key: ClassVar[str] = "restore_other"
    restore_retry_pauses: ClassVar[tuple[float, ...]] = ()

    def __init__(self, number: int, text: str, *, messages: Sequence[SqlMessage] = (),
                 conn_id: str = "", statement: str = "") -> None:
        self.number = number
        self.text = text
        self.messages = tuple(messages)
        self.conn_id = conn_id
        self.statement = statement
        where = f" on {conn_id}" if conn_id else ""
        # number 0: the driver's own error (no server answered): it is not a SQL Server error number
        super().__init__(f"{f'SQL Server error {number}' if number else 'connection error'}{where}: {text}")

    @property
    def numbers(self) -> tuple[int, ...]:
        return tuple(m.number for m in self.messages) or (self.number,)


class SqlConnectionError(SqlServerError):
    """The instance cannot be reached, or it refused the login (18456)."""


class LoginRefused(SqlConnectionError):
    """18456: the instance refused the login (wrong password, disabled login): retrying cannot help."""

    advice_key: ClassVar[str] = "sql_login_refused"


class DriverError(SqlServerError):
    """The ODBC driver's own error: no SQL Server answered (number 0, or FreeTDS's 20002-20017 when the server went
    away mid-statement); a standby RESTORE stopped by it says the standby is unreachable."""

    restore_advice_key: ClassVar[str] = "standby_unreachable"


class ConnectionNotConfigured(SetupError, SqlConnectionError):
    """The Airflow connection of an instance is not defined, or names no ODBC driver: nothing was tried."""


class LogTooRecent(SqlServerError):
    """4305: a log backup is missing before this one; the standby needs a re-seed."""

    advice_key: ClassVar[str] = "restore_gap"
    restore_advice_key: ClassVar[str] = "restore_gap"


class LogAlreadyApplied(SqlServerError):
    """4326: this log is older than what the database has; skipping it is safe."""

    advice_key: ClassVar[str] = "sql_log_already_applied"


class DatabaseNotRestoring(SqlServerError):
    """3117: the database was recovered (by hand?) and cannot take more logs."""

    advice_key: ClassVar[str] = "standby_recovered"
    restore_advice_key: ClassVar[str] = "standby_recovered"


class MarkNotFound(SqlServerError):
    """4334: the named mark is not in the log at a valid LSN."""

    advice_key: ClassVar[str] = "sql_mark_not_found"


class DatabaseInUse(SqlServerError):
    """3101: exclusive access could not be obtained; sessions still use the database."""

    advice_key: ClassVar[str] = "sql_in_use"
    restore_advice_key: ClassVar[str] = "restore_in_use"
    restore_retry_pauses: ClassVar[tuple[float, ...]] = (10.0, 30.0, 60.0)


class BackupDeviceError(SqlServerError):
    """3201: the backup file cannot be opened (path, share, permissions)."""

    advice_key: ClassVar[str] = "sql_device"
    restore_advice_key: ClassVar[str] = "restore_device"
    restore_retry_pauses: ClassVar[tuple[float, ...]] = (5.0, 15.0)


class BackupMediaDamaged(SqlServerError):
    """3203, 3241, 3242, 3183, 3189: the backup file is unreadable or damaged."""

    advice_key: ClassVar[str] = "sql_media_damaged"


class BackupOfOtherDatabase(SqlServerError):
    """3154: the backup is of a different database than the one being restored."""

    advice_key: ClassVar[str] = "sql_other_database"


class TailLogNotBackedUp(SqlServerError):
    """3159: restoring over a database whose log tail was not backed up."""


class ChecksumNotAvailable(SqlServerError):
    """3187: WITH CHECKSUM on a backup taken without checksums (BizTalk's are)."""


class InsideTransaction(SqlServerError):
    """3021: BACKUP/RESTORE inside a user transaction; the connection must be in autocommit."""


class BackupRestoreAbnormal(SqlServerError):
    """3013 when SQL Server said nothing else: "BACKUP/RESTORE is terminating abnormally"."""

    advice_key: ClassVar[str] = "sql_abnormal"


SQL_ERROR_CLASSES: dict[int, type[SqlServerError]] = {
    4305: LogTooRecent,
    4326: LogAlreadyApplied,
    3117: DatabaseNotRestoring,
    4334: MarkNotFound,
    3101: DatabaseInUse,
    3201: BackupDeviceError,
    3203: BackupMediaDamaged,
    3241: BackupMediaDamaged,
    3242: BackupMediaDamaged,
    3183: BackupMediaDamaged,
    3189: BackupMediaDamaged,
    3154: BackupOfOtherDatabase,
    3159: TailLogNotBackedUp,
    3187: ChecksumNotAvailable,
    3021: InsideTransaction,
    3013: BackupRestoreAbnormal,
    18456: LoginRefused,
    # the driver's own errors (FreeTDS/DB-Library numbers): the server went away, nobody answered
    0: DriverError,
    20002: DriverError,
    20003: DriverError,
    20004: DriverError,
    20006: DriverError,
    20009: DriverError,
    20017: DriverError,
}

# 3013 ("BACKUP/RESTORE is terminating abnormally") only accompanies the error that matters.
_ACCOMPANYING = {3013}


def sql_error_class(number: int | None) -> type[SqlServerError]:
    """The class of SQL Server's error ``number`` (SqlServerError for a number without one of its own)."""
    return SQL_ERROR_CLASSES.get(number, SqlServerError) if isinstance(number, int) else SqlServerError


def sql_error_for(messages: Sequence[SqlMessage], *, conn_id: str = "", statement: str = "") -> SqlServerError:
    """The typed error for what SQL Server said: the first error that is not the 3013 trailer."""
    if not messages:
        return DriverError(0, "the driver reported an error without a message", conn_id=conn_id,
                           statement=statement)
    primary = next((m for m in messages if m.number not in _ACCOMPANYING), messages[0])
    return sql_error_class(primary.number)(primary.number, primary.text, messages=messages, conn_id=conn_id, statement=statement)
