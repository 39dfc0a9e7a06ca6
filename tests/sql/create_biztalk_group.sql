-- For trying biztalk-dr out on plain SQL Server: the databases of a small BizTalk group, in FULL recovery.
-- NOT a replacement for BizTalk's own setup. Idempotent. Run before biztalk_backup_procedures.sql.
SET NOCOUNT ON;
DECLARE @dbs TABLE (name sysname);
INSERT INTO @dbs VALUES (N'BizTalkMgmtDb'), (N'BizTalkMsgBoxDb'), (N'BizTalkDTADb'), (N'SSODB'),
                        (N'BizTalkRuleEngineDb'), (N'BAMPrimaryImport');
DECLARE @name sysname, @sql nvarchar(max);
DECLARE c CURSOR LOCAL FAST_FORWARD FOR SELECT name FROM @dbs;
OPEN c;
FETCH NEXT FROM c INTO @name;
WHILE @@FETCH_STATUS = 0
BEGIN
    IF DB_ID(@name) IS NULL
    BEGIN
        SET @sql = N'CREATE DATABASE ' + QUOTENAME(@name);
        EXEC (@sql);
    END;
    SET @sql = N'ALTER DATABASE ' + QUOTENAME(@name) + N' SET RECOVERY FULL';
    EXEC (@sql);
    -- every database of the set gets a table the marked transaction writes to, so the mark is in its log
    SET @sql = N'IF OBJECT_ID(N''dbo.bdr_MarkLog'') IS NULL CREATE TABLE dbo.bdr_MarkLog '
             + N'(MarkName nvarchar(32) NOT NULL, MarkedAt datetime2 NOT NULL DEFAULT SYSUTCDATETIME())';
    SET @sql = N'USE ' + QUOTENAME(@name) + N'; EXEC (N''' + REPLACE(@sql, N'''', N'''''') + N''')';
    EXEC (@sql);
    FETCH NEXT FROM c INTO @name;
END;
CLOSE c;
DEALLOCATE c;
GO
USE BizTalkMgmtDb;
GO
IF OBJECT_ID(N'dbo.adm_Group') IS NULL
    CREATE TABLE dbo.adm_Group (id int IDENTITY PRIMARY KEY, Name nvarchar(256) NOT NULL,
        TrackingDBServerName nvarchar(80) NOT NULL, TrackingDBName nvarchar(128) NOT NULL,
        SubscriptionDBServerName nvarchar(80) NOT NULL, SubscriptionDBName nvarchar(128) NOT NULL,
        SSOServerName nvarchar(80) NULL);
IF OBJECT_ID(N'dbo.adm_MessageBox') IS NULL
    CREATE TABLE dbo.adm_MessageBox (id int IDENTITY PRIMARY KEY, DBServerName nvarchar(80) NOT NULL,
        DBName nvarchar(128) NOT NULL, IsMasterMsgBox int NOT NULL DEFAULT 0, DisableNewMsgPublication int NOT NULL DEFAULT 0);
IF OBJECT_ID(N'dbo.adm_OtherDatabases') IS NULL
    CREATE TABLE dbo.adm_OtherDatabases (DefaultDatabaseName nvarchar(128) NOT NULL, DatabaseName nvarchar(128) NOT NULL,
        ServerName nvarchar(80) NOT NULL, BTSServerName nvarchar(80) NOT NULL);
IF OBJECT_ID(N'dbo.adm_Server') IS NULL
    CREATE TABLE dbo.adm_Server (id int IDENTITY PRIMARY KEY, Name nvarchar(63) NOT NULL);
IF NOT EXISTS (SELECT 1 FROM dbo.adm_Group)
    INSERT INTO dbo.adm_Group (Name, TrackingDBServerName, TrackingDBName, SubscriptionDBServerName, SubscriptionDBName, SSOServerName)
    VALUES (N'DOCKER-BTS', @@SERVERNAME, N'BizTalkDTADb', @@SERVERNAME, N'BizTalkMsgBoxDb', @@SERVERNAME);
IF NOT EXISTS (SELECT 1 FROM dbo.adm_MessageBox)
    INSERT INTO dbo.adm_MessageBox (DBServerName, DBName, IsMasterMsgBox) VALUES (@@SERVERNAME, N'BizTalkMsgBoxDb', 1);
IF NOT EXISTS (SELECT 1 FROM dbo.adm_OtherDatabases)
    INSERT INTO dbo.adm_OtherDatabases (DefaultDatabaseName, DatabaseName, ServerName, BTSServerName)
    VALUES (N'BizTalkDTADb', N'BizTalkDTADb', @@SERVERNAME, @@SERVERNAME),
           (N'SSODB', N'SSODB', @@SERVERNAME, @@SERVERNAME),
           (N'BizTalkRuleEngineDb', N'BizTalkRuleEngineDb', @@SERVERNAME, @@SERVERNAME),
           (N'BAMPrimaryImport', N'BAMPrimaryImport', @@SERVERNAME, @@SERVERNAME);
GO
