"""Logins and database users, enough to model orphaned users ("Troubleshoot orphaned users (SQL Server)",
"CREATE LOGIN", "CREATE USER", "ALTER USER" pages of the sql-docs repository).

A login lives in master (``sys.server_principals``) with a SID; a database user lives inside its
database (``sys.database_principals``, a table of the database file, so it travels with backups and
restores) and names its login only by SID. A SQL login created on another instance gets another SID,
so after a restore there the user is *orphaned* until ``ALTER USER ... WITH LOGIN``. Windows logins
carry the domain's SID, the same on every instance (modelled as a hash of the name).

Only the instance's own login can log in; other logins exist as principals only. Not modelled:
``SID =`` in CREATE LOGIN, roles and permissions, contained users, users created after the last full
backup being carried by log backups (they are kept in the database file, not in its log).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlserver_standin.messages import SqlError, sql_error
from sqlserver_standin.storage import INTERNAL_PREFIX

__all__ = ["CreateLogin", "CreateUser", "AlterUser", "SERVER_PRINCIPALS_SCHEMA", "ensure_login", "run"]

SERVER_PRINCIPALS_SCHEMA = """
CREATE TABLE IF NOT EXISTS "sys.server_principals" (
    principal_id INTEGER PRIMARY KEY AUTOINCREMENT, name nvarchar(128) NOT NULL COLLATE NOCASE UNIQUE,
    sid varbinary(85) NOT NULL, type char(1) NOT NULL, type_desc nvarchar(60) NOT NULL,
    is_disabled bit NOT NULL DEFAULT 0);
"""
_TYPE_DESC = {"S": "SQL_LOGIN", "U": "WINDOWS_LOGIN", "G": "WINDOWS_GROUP"}


@dataclass(frozen=True)
class CreateLogin:
    name: str
    windows: bool  # FROM WINDOWS; else WITH PASSWORD


@dataclass(frozen=True)
class CreateUser:
    name: str
    login: str | None  # None: WITHOUT LOGIN


@dataclass(frozen=True)
class AlterUser:
    name: str
    login: str


def _windows_sid(name: str) -> bytes:
    """A Windows account's SID comes from its domain: the same on every instance."""
    return b"\x01\x05" + hashlib.sha256(name.lower().encode()).digest()[:26]


def ensure_login(master, name: str, *, windows: bool = False) -> None:  # noqa: ANN001 - sqlite3 connection
    sid = _windows_sid(name) if windows else secrets.token_bytes(16)
    kind = ("G" if "\\" in name else "U") if windows else "S"
    master.execute('INSERT OR IGNORE INTO "sys.server_principals" (name, sid, type, type_desc) VALUES (?, ?, ?, ?)',
                   (name, sid, kind, _TYPE_DESC[kind]))


def _login_sid(master, name: str) -> bytes:  # noqa: ANN001
    row = master.execute('SELECT sid FROM "sys.server_principals" WHERE name = ?', (name,)).fetchone()
    if row is None:
        raise sql_error(15007, name)
    return row[0]


def run(runner, stmt: CreateLogin | CreateUser | AlterUser) -> None:  # noqa: ANN001 - the engine's Runner
    engine = runner.engine
    with engine.lock:
        if isinstance(stmt, CreateLogin):
            if engine.master.execute('SELECT 1 FROM "sys.server_principals" WHERE name = ?', (stmt.name,)).fetchone():
                raise sql_error(15025, stmt.name)
            ensure_login(engine.master, stmt.name, windows=stmt.windows)
            return
        info = engine.catalog.get(runner.state.session.database)
        if info is None or info.state_desc != "ONLINE":
            raise sql_error(911, runner.state.session.database)
        db = engine.handle(info)
        table = f"{INTERNAL_PREFIX}principals"
        if isinstance(stmt, CreateUser):
            if db.conn.execute(f"SELECT 1 FROM {table} WHERE name = ?", (stmt.name,)).fetchone():
                raise sql_error(15023, stmt.name)
            sid = _login_sid(engine.master, stmt.login) if stmt.login else secrets.token_bytes(16)
            if stmt.login and db.conn.execute(f"SELECT 1 FROM {table} WHERE sid = ?", (sid,)).fetchone():
                raise sql_error(15063)
            kind = "S" if stmt.login is None else engine.master.execute(
                'SELECT type FROM "sys.server_principals" WHERE name = ?', (stmt.login,)).fetchone()[0]
            top = db.conn.execute(f"SELECT MAX(principal_id) FROM {table}").fetchone()[0] or 4
            db.conn.execute(f"INSERT INTO {table} (principal_id, name, type, sid, authentication_type) "
                            "VALUES (?, ?, ?, ?, ?)", (max(top, 4) + 1, stmt.name, kind, sid,
                                                       0 if stmt.login is None else (3 if kind != "S" else 1)))
            return
        if not db.conn.execute(f"SELECT 1 FROM {table} WHERE name = ?", (stmt.name,)).fetchone():
            raise SqlError(15151, f"Cannot alter the user '{stmt.name}', because it does not exist or you do not "
                                  "have permission.", severity=16)
        sid = _login_sid(engine.master, stmt.login)
        other = db.conn.execute(f"SELECT name FROM {table} WHERE sid = ? AND name <> ?", (sid, stmt.name)).fetchone()
        if other:
            raise sql_error(15063)
        db.conn.execute(f"UPDATE {table} SET sid = ?, authentication_type = 1 WHERE name = ?", (sid, stmt.name))
