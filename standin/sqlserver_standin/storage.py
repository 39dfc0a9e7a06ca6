"""Where an instance keeps its state under DATA-DIR, so it survives being killed like a real one.

    DATA-DIR/master.sqlite      the server catalog (sys.databases, sys.master_files) + private state
    DATA-DIR/msdb.sqlite        backup/restore history and SQL Agent jobs (msdb.dbo.*)
    DATA-DIR/data/*.sqlite      one file per other database: its tables, LSN counter and active log
    DATA-DIR/faults.json        injected faults (written by ``biztalk-dr-standin fault``)

SQLite gives atomic, durable commits (``synchronous=FULL``, rollback journal); anything else is
written with write-temp + fsync + ``os.replace`` (:func:`atomic_write`). A table ``dbo.X`` of a
database is the SQLite table ``"dbo.X"``; catalog views are tables such as ``"sys.databases"``.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

__all__ = ["family_guid", "DataDir", "atomic_write", "connect", "USER_DB_SCHEMA", "install_log_triggers", "is_internal_table"]

INTERNAL_PREFIX = "_standin_"

# Every database file: the LSN counter, the active log and control flags (see txlog.py).
USER_DB_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {INTERNAL_PREFIX}lsn (seq INTEGER NOT NULL);
INSERT INTO {INTERNAL_PREFIX}lsn (seq) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM {INTERNAL_PREFIX}lsn);
CREATE TABLE IF NOT EXISTS {INTERNAL_PREFIX}ctl (logging INTEGER NOT NULL, xact INTEGER NOT NULL);
INSERT INTO {INTERNAL_PREFIX}ctl (logging, xact) SELECT 0, 0 WHERE NOT EXISTS (SELECT 1 FROM {INTERNAL_PREFIX}ctl);
CREATE TABLE IF NOT EXISTS {INTERNAL_PREFIX}log (
    seq INTEGER PRIMARY KEY, xact INTEGER NOT NULL, kind TEXT NOT NULL, tbl TEXT, rid INTEGER,
    img TEXT, mark TEXT, at TEXT);
CREATE TABLE IF NOT EXISTS {INTERNAL_PREFIX}procedures (name TEXT PRIMARY KEY COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS {INTERNAL_PREFIX}damage (object_id INTEGER NOT NULL, page TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {INTERNAL_PREFIX}identity (family_guid TEXT NOT NULL);
INSERT INTO {INTERNAL_PREFIX}identity (family_guid) SELECT lower(hex(randomblob(16)))
    WHERE NOT EXISTS (SELECT 1 FROM {INTERNAL_PREFIX}identity);
-- sys.database_principals (principals.py): dbo, guest, INFORMATION_SCHEMA and sys, as every database has them
CREATE TABLE IF NOT EXISTS {INTERNAL_PREFIX}principals (
    principal_id INTEGER PRIMARY KEY, name TEXT NOT NULL COLLATE NOCASE UNIQUE, type TEXT NOT NULL,
    sid BLOB, authentication_type INTEGER NOT NULL DEFAULT 0);
INSERT OR IGNORE INTO {INTERNAL_PREFIX}principals (principal_id, name, type, sid, authentication_type)
    VALUES (1, 'dbo', 'S', x'01', 1), (2, 'guest', 'S', x'00', 0), (3, 'INFORMATION_SCHEMA', 'S', NULL, 0),
           (4, 'sys', 'S', NULL, 0);
"""


def family_guid(conn: sqlite3.Connection) -> str:
    """The identity a database keeps through backup and restore (a new database gets a new one)."""
    return conn.execute(f"SELECT family_guid FROM {INTERNAL_PREFIX}identity").fetchone()[0]


def is_internal_table(name: str) -> bool:
    return name.lower().startswith(INTERNAL_PREFIX) or name.lower().startswith("sqlite_")


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def connect(path: Path) -> sqlite3.Connection:
    """A connection in manual-transaction mode with durable commits."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn


def _json_value(column: str, row: str) -> str:
    ref = f'{row}."{column}"'
    return f"CASE WHEN typeof({ref}) = 'blob' THEN json_object('hex', hex({ref})) ELSE {ref} END"


def install_log_triggers(conn: sqlite3.Connection, table: str) -> None:
    """Triggers that give every change of ``table`` an LSN and, while the log is kept, a log record
    (row image by rowid) that a log backup carries and RESTORE LOG replays."""
    columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
    quoted = table.replace('"', '""')
    new_image = "json_array(NEW.rowid" + "".join(f", {_json_value(c, 'NEW')}" for c in columns) + ")"
    p = INTERNAL_PREFIX
    seq = f"(SELECT seq FROM {p}lsn)"
    xact = f"(SELECT xact FROM {p}ctl)"
    now = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    logging = f"(SELECT logging FROM {p}ctl) = 1"
    for event, kind, rid, image in (("INSERT", "I", "NEW.rowid", new_image), ("UPDATE", "U", "OLD.rowid", new_image),
                                    ("DELETE", "D", "OLD.rowid", "NULL")):
        name = f"{p}{kind}_{table}".replace('"', '""')
        conn.execute(f'DROP TRIGGER IF EXISTS "{name}"')
        conn.execute(
            f'CREATE TRIGGER "{name}" AFTER {event} ON "{quoted}" FOR EACH ROW BEGIN '
            f"UPDATE {p}lsn SET seq = seq + 1; "
            f"INSERT INTO {p}log (seq, xact, kind, tbl, rid, img, at) SELECT {seq}, {xact}, '{kind}', "
            f"'{quoted.replace(chr(39), chr(39) * 2)}', {rid}, {image}, {now} WHERE {logging}; END")


class DataDir:
    """The files of one instance."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.data = self.root / "data"
        self.data.mkdir(exist_ok=True)

    @property
    def master(self) -> Path:
        return self.root / "master.sqlite"

    @property
    def msdb(self) -> Path:
        return self.root / "msdb.sqlite"

    @property
    def faults(self) -> Path:
        return self.root / "faults.json"

    def database_file(self, file_name: str) -> Path:
        return self.data / file_name
