"""CREATE / ALTER / DROP DATABASE: the lifecycle and recovery model of a database.

Rules ("CREATE DATABASE", "ALTER DATABASE SET Options", "DROP DATABASE", "Recovery Models (SQL
Server)"): a new database takes the recovery model of ``model`` (FULL on a fresh instance); in FULL
recovery the log is only kept once a full backup has started a chain, and switching to SIMPLE
breaks the chain (a log backup then fails with 4214 until the next full). A database in use by
another session cannot be dropped (3702).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlserver_standin import commands as cmd
from sqlserver_standin import txlog
from sqlserver_standin.catalog import SYSTEM_DATABASES, now_text
from sqlserver_standin.messages import sql_error

if TYPE_CHECKING:
    from sqlserver_standin.engine import Runner

__all__ = ["run", "new_database_file", "break_chain"]


def new_database_file(name: str) -> str:
    """The file of a database under DATA-DIR (unique: a restore under another name never collides)."""
    safe = "".join(c if c.isalnum() else "_" for c in name)[:40]
    return f"data/{safe}-{uuid.uuid4().hex[:8]}.sqlite"


def break_chain(runner: Runner, database_id: int) -> None:
    """No log backup is possible until the next full backup (SIMPLE recovery, or no base)."""
    engine = runner.engine
    info = engine.catalog.by_id(database_id)
    db = engine.handle(info)
    engine.master.execute("BEGIN IMMEDIATE")
    engine.catalog.update(database_id, chain_base_seq=None, last_log_backup_seq=None)
    engine.master.execute("COMMIT")
    db.conn.execute("BEGIN IMMEDIATE")
    txlog.set_logging(db.conn, False)
    db.conn.execute("COMMIT")


def run(runner: Runner, parsed: cmd.CreateDatabase | cmd.AlterDatabase | cmd.DropDatabase) -> None:
    if isinstance(parsed, cmd.CreateDatabase):
        _create(runner, parsed.name)
    elif isinstance(parsed, cmd.AlterDatabase):
        _alter(runner, parsed)
    else:
        for name in parsed.names:
            _drop(runner, name, parsed.if_exists)


def _create(runner: Runner, name: str) -> None:
    engine = runner.engine
    if engine.catalog.get(name) is not None:
        raise sql_error(1801, name)
    model = engine.catalog.get("model")
    database_id = engine.catalog.next_id()
    engine.master.execute("BEGIN IMMEDIATE")
    try:
        engine.catalog.add(database_id=database_id, name=name, file=new_database_file(name),
                           recovery=model.recovery_model_desc if model else "FULL", state="ONLINE",
                           create_date=now_text(), files=engine.default_files(name))
        engine.master.execute("COMMIT")
    except BaseException:
        engine.master.execute("ROLLBACK")
        raise
    engine.handle(engine.catalog.by_id(database_id))


def _alter(runner: Runner, parsed: cmd.AlterDatabase) -> None:
    engine = runner.engine
    name = runner.state.session.database if parsed.current else parsed.name
    info = engine.catalog.get(name)
    if info is None:
        raise sql_error(5011, name)
    setting = parsed.setting
    if setting.startswith("RECOVERY "):
        model = setting.split()[1]
        if info.name.lower() == "tempdb" and model != "SIMPLE":
            raise sql_error(5069)
        engine.master.execute("BEGIN IMMEDIATE")
        engine.catalog.set_recovery(info.database_id, model)
        engine.master.execute("COMMIT")
        if model == "SIMPLE" and info.name.lower() not in SYSTEM_DATABASES:
            break_chain(runner, info.database_id)
        return
    if setting in ("OFFLINE", "ONLINE"):
        if info.restoring:
            raise sql_error(5011, info.name)
        if setting == "OFFLINE" and engine.sessions_using(info.name, besides=runner.state.session.spid):
            raise sql_error(3101)
        engine.master.execute("BEGIN IMMEDIATE")
        engine.catalog.set_state(info.database_id, setting)
        engine.master.execute("COMMIT")
        return
    # SINGLE_USER / MULTI_USER / RESTRICTED_USER: accepted; user access is not modelled beyond that


def _drop(runner: Runner, name: str, if_exists: bool) -> None:
    engine = runner.engine
    info = engine.catalog.get(name)
    if info is None:
        if if_exists:
            return
        raise sql_error(3701, "database", name)
    if info.name.lower() in SYSTEM_DATABASES:
        raise sql_error(3701, "database", info.name)
    if runner.state.session.database.lower() == info.name.lower() or engine.sessions_using(
            info.name, besides=runner.state.session.spid):
        raise sql_error(3702, info.name)
    engine.close_handle(info.database_id)
    engine.master.execute("BEGIN IMMEDIATE")
    engine.catalog.remove(info.database_id)
    engine.master.execute("COMMIT")
    (engine.dir.root / info.file).unlink(missing_ok=True)
