"""Read SQL Server backup files without a server (uncompressed MTF and compressed MSSQLBAK): what
RESTORE HEADERONLY and RESTORE FILELISTONLY would report, for planning restores from files alone."""

from biztalk_dr.backup_files.headers import BackupSetHeader, BackupType, DatabaseFile, lsn_from_parts
from biztalk_dr.backup_files.reader import (
           BACKUP_FILE_SUFFIXES,
           FileResult,
           read_backup_file,
           read_backup_files,
)

__all__ = ["BACKUP_FILE_SUFFIXES", "BackupSetHeader", "BackupType", "DatabaseFile", "FileResult",
           "lsn_from_parts", "read_backup_file", "read_backup_files"]
