"""A BizTalk group's databases on a fresh stand-in primary, as BizTalk's setup leaves them.

Run in-process before the server starts (``make run``, tests). Everything is created through the
engine's own T-SQL path, so a seeded instance is indistinguishable from one a client set up:
every database of the config in FULL recovery (biztalk-dr.md section 1) with the ``dbo.MarkLog``
table the marked transactions write to, the management database's ``adm_*`` tables and BizTalk's
backup procedures, and the SQL Agent job "Backup BizTalk Server (BizTalkMgmtDb)" in ``msdb``, enabled
as BizTalk's configuration leaves it. Each database also gets ``dbo.StandinActivity``, the table the
stand-in's background workload writes to (``workload.py``), so log backups differ in size. Custom databases exist but are *not*
registered in ``adm_OtherBackupDatabases``: registering them is the backup DAG's job (issue 5).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from sqlserver_standin.batch import quote_name
from sqlserver_standin.engine import StandinEngine
from sqlserver_standin.events import Message
from sqlserver_standin.procedures import install_biztalk_procedures

if TYPE_CHECKING:
    from biztalk_dr.domain.config import GroupConfig

__all__ = ["seed_biztalk_group", "prepare_dr_instance", "BACKUP_JOB_NAME", "OTHER_DATABASE_NAMES", "WINDOWS_GROUP", "APP_LOGIN"]

BACKUP_JOB_NAME = "Backup BizTalk Server (BizTalkMgmtDb)"
# role -> adm_OtherDatabases.DefaultDatabaseName (BizTalk's default names of those databases)
OTHER_DATABASE_NAMES = {
    "tracking": "BizTalkDTADb", "sso": "SSODB", "rules_engine": "BizTalkRuleEngineDb",
    "bam_primary_import": "BAMPrimaryImport", "bam_star_schema": "BAMStarSchema", "bam_archive": "BAMArchive",
    "bam_alerts_application": "BAMAlertsApplication", "bam_alerts_ns_main": "BAMAlertsNSMain",
}
_MGMT_TABLES = """
CREATE TABLE dbo.adm_Group (id int IDENTITY PRIMARY KEY, Name nvarchar(256) NOT NULL,
    TrackingDBServerName nvarchar(80) NOT NULL, TrackingDBName nvarchar(128) NOT NULL,
    SubscriptionDBServerName nvarchar(80) NOT NULL, SubscriptionDBName nvarchar(128) NOT NULL,
    SSOServerName nvarchar(80) NULL);
CREATE TABLE dbo.adm_Server (id int IDENTITY PRIMARY KEY, Name nvarchar(63) NOT NULL);
CREATE TABLE dbo.adm_MessageBox (id int IDENTITY PRIMARY KEY, DBServerName nvarchar(80) NOT NULL,
    DBName nvarchar(128) NOT NULL, IsMasterMsgBox int NOT NULL DEFAULT 0, DisableNewMsgPublication int NOT NULL DEFAULT 0);
CREATE TABLE dbo.adm_OtherDatabases (DefaultDatabaseName nvarchar(128) NOT NULL, DatabaseName nvarchar(128) NOT NULL,
    ServerName nvarchar(80) NOT NULL, BTSServerName nvarchar(80) NOT NULL);
CREATE TABLE dbo.adm_OtherBackupDatabases (DefaultDatabaseName nvarchar(128) NOT NULL,
    DatabaseName nvarchar(128) NOT NULL, ServerName nvarchar(80) NOT NULL, BTSServerName nvarchar(80) NOT NULL);
CREATE TABLE dbo.adm_BackupSettings (UseCompression bit NOT NULL DEFAULT 0, ForceFull bit NOT NULL DEFAULT 0,
    LastFullBackup datetime NULL);
CREATE TABLE dbo.adm_BackupHistory (BackupId int IDENTITY PRIMARY KEY, BackupSetId int NOT NULL,
    MarkName nvarchar(32) NOT NULL, DatabaseName nvarchar(128) NOT NULL, ServerName nvarchar(80) NOT NULL,
    BackupFileName nvarchar(500) NOT NULL, BackupFileLocation nvarchar(500) NOT NULL, BackupType char(2) NOT NULL,
    BackupDateTime datetime NOT NULL, SetComplete bit NOT NULL DEFAULT 0);
INSERT INTO dbo.adm_BackupSettings (UseCompression, ForceFull) VALUES (0, 0);
"""
# A few core MessageBox tables, so that a restored MessageBox can be checked for readability.
_MESSAGEBOX_TABLES = """
CREATE TABLE dbo.Applications (nAppID int IDENTITY PRIMARY KEY, nvcApplicationName nvarchar(256) NOT NULL);
CREATE TABLE dbo.Spool (uidMessageID uniqueidentifier NOT NULL PRIMARY KEY, dtTimeStamp datetime NOT NULL);
INSERT INTO dbo.Applications (nvcApplicationName) VALUES (N'BizTalkServerApplication');
"""


# The group's logins: BizTalk's Windows group (the domain's SID: the same on every instance, never orphaned)
# and a SQL login a custom application uses (a new SID on every instance it is created on). The DR instances
# are prepared with matching logins (biztalk-dr.md section 5: "Prepared in advance").
WINDOWS_GROUP = "DEMO\\BizTalk Application Users"
APP_LOGIN = "DemoOrdersApp"


class SeedError(RuntimeError):
    """A seeding statement failed (the message carries SQL Server's error)."""


def seed_biztalk_group(data_dir: Path, cfg: GroupConfig, *, instance_name: str) -> None:
    """Create the group of ``cfg`` on the stand-in whose state is in ``data_dir`` (must not be running)."""
    engine = StandinEngine(Path(data_dir), instance_name, "seed", uuid.uuid4().hex)
    try:
        session = engine.login(user="seed", password=engine._password, database=None, host_name="seed",
                               program_name="biztalk-dr stand-in seed")

        def run(sql: str, params: dict[str, object] | None = None) -> None:
            errors = [e for e in engine.execute(session, sql, params) if isinstance(e, Message) and e.is_error]
            if errors:
                raise SeedError(f"seeding {instance_name} failed on {sql.strip()[:80]!r}: {errors[0].text}")

        mgmt = next(db.name for db in cfg.databases if db.role == "management")
        _create_logins(run)
        for db in cfg.databases:
            name = quote_name(db.name)
            run(f"CREATE DATABASE {name}")
            run(f"ALTER DATABASE {name} SET RECOVERY FULL")
            run(f"USE {name}; CREATE USER {quote_name(WINDOWS_GROUP)} FOR LOGIN {quote_name(WINDOWS_GROUP)}")
            if db.role == "custom":
                run(f"USE {name}; CREATE USER {quote_name(APP_LOGIN)} FOR LOGIN {quote_name(APP_LOGIN)}")
            run(f"USE {name}; CREATE TABLE dbo.MarkLog (MarkName nvarchar(32) NOT NULL, DateMarked datetime NOT NULL)")
            run(f"USE {name}; CREATE TABLE dbo.StandinActivity (id int IDENTITY PRIMARY KEY, "
                "at datetime NOT NULL, payload nvarchar(4000) NOT NULL)")
            if db.role == "messagebox":
                run(f"USE {name};" + _MESSAGEBOX_TABLES)
        run(f"USE {quote_name(mgmt)};" + _MGMT_TABLES)
        box = next((db.name for db in cfg.databases if db.role == "messagebox"), mgmt)
        tracking = next((db.name for db in cfg.databases if db.role == "tracking"), mgmt)
        params = {"@group": cfg.group.name, "@server": instance_name, "@tracking": tracking, "@box": box}
        run(f"USE {quote_name(mgmt)}; INSERT INTO dbo.adm_Group (Name, TrackingDBServerName, TrackingDBName, "
            "SubscriptionDBServerName, SubscriptionDBName, SSOServerName) "
            "VALUES (@group, @server, @tracking, @server, @box, @server)", params)
        boxes = [db for db in cfg.databases if db.role == "messagebox"]
        for db in boxes:
            run(f"USE {quote_name(mgmt)}; INSERT INTO dbo.adm_MessageBox (DBServerName, DBName, IsMasterMsgBox) "
                "VALUES (@server, @db, @master)",
                {"@server": instance_name, "@db": db.name, "@master": 1 if db.master or len(boxes) == 1 else 0})
        bts = cfg.sites.primary.biztalk_servers[0].name if cfg.sites.primary.biztalk_servers else instance_name
        for db in cfg.databases:
            if db.role in OTHER_DATABASE_NAMES:
                run(f"USE {quote_name(mgmt)}; INSERT INTO dbo.adm_OtherDatabases (DefaultDatabaseName, DatabaseName, "
                    "ServerName, BTSServerName) VALUES (@default, @db, @server, @bts)",
                    {"@default": OTHER_DATABASE_NAMES[db.role], "@db": db.name, "@server": instance_name, "@bts": bts})
        for server in cfg.sites.primary.biztalk_servers:
            run(f"USE {quote_name(mgmt)}; INSERT INTO dbo.adm_Server (Name) VALUES (@name)", {"@name": server.name})
        run("INSERT INTO msdb.dbo.sysjobs (job_id, originating_server_id, name, enabled, description, start_step_id, "
            "category_id, date_created, date_modified, version_number) "
            "VALUES (NEWID(), 0, @job, 1, N'Backs up the BizTalk Server databases.', 1, 3, GETDATE(), GETDATE(), 1)",
            {"@job": BACKUP_JOB_NAME})
        info = engine.database(mgmt)
        conn = engine.handle(info).conn
        conn.execute("BEGIN IMMEDIATE")
        install_biztalk_procedures(conn)
        conn.execute("COMMIT")
        engine.logout(session)
    finally:
        engine.close()


def _create_logins(run) -> None:  # noqa: ANN001 - the seeding statement runner
    run(f"CREATE LOGIN {quote_name(WINDOWS_GROUP)} FROM WINDOWS")
    run(f"CREATE LOGIN {quote_name(APP_LOGIN)} WITH PASSWORD = N'{uuid.uuid4().hex}'")


def prepare_dr_instance(data_dir: Path, *, instance_name: str) -> None:
    """A standby (or validation) stand-in as a DR instance is prepared: the group's logins, no databases."""
    engine = StandinEngine(Path(data_dir), instance_name, "seed", uuid.uuid4().hex)
    try:
        session = engine.login(user="seed", password=engine._password, database=None, host_name="seed",
                               program_name="biztalk-dr stand-in seed")

        def run(sql: str) -> None:
            errors = [e for e in engine.execute(session, sql) if isinstance(e, Message) and e.is_error]
            if errors and errors[0].number != 15025:  # already prepared
                raise SeedError(f"preparing {instance_name} failed on {sql[:80]!r}: {errors[0].text}")

        _create_logins(run)
        engine.logout(session)
    finally:
        engine.close()


