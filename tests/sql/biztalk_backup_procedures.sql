-- For trying biztalk-dr out on plain SQL Server: a compatible subset of BizTalk Server 2020's backup machinery
-- (same procedure names, parameters and history table semantics; biztalk-dr.md section 2).
-- NOT a replacement for BizTalk's own scripts; never install it next to a real BizTalk group. Idempotent.
USE BizTalkMgmtDb;
GO
IF OBJECT_ID(N'dbo.adm_BackupSettings') IS NULL
BEGIN
    CREATE TABLE dbo.adm_BackupSettings (UseCompression bit NOT NULL DEFAULT 0, ForceFull bit NOT NULL DEFAULT 0,
        LastFullBackup datetime NULL);
    INSERT INTO dbo.adm_BackupSettings (UseCompression, ForceFull) VALUES (0, 0);
END;
IF OBJECT_ID(N'dbo.adm_BackupHistory') IS NULL
    CREATE TABLE dbo.adm_BackupHistory (BackupId int IDENTITY PRIMARY KEY, BackupSetId int NOT NULL,
        MarkName nvarchar(32) NOT NULL, DatabaseName nvarchar(128) NOT NULL, ServerName nvarchar(80) NOT NULL,
        BackupFileName nvarchar(500) NOT NULL, BackupFileLocation nvarchar(500) NOT NULL,
        BackupType char(2) NOT NULL, BackupDateTime datetime NOT NULL DEFAULT GETUTCDATE(), SetComplete bit NOT NULL DEFAULT 0);
IF OBJECT_ID(N'dbo.adm_OtherBackupDatabases') IS NULL
    CREATE TABLE dbo.adm_OtherBackupDatabases (DefaultDatabaseName nvarchar(128) NOT NULL,
        DatabaseName nvarchar(128) NOT NULL, ServerName nvarchar(80) NOT NULL, BTSServerName nvarchar(80) NOT NULL);
GO
-- The databases of a backup set: the management database, the MessageBoxes, the group's other databases,
-- and the custom databases registered in adm_OtherBackupDatabases (this subset: all on this instance).
CREATE OR ALTER VIEW dbo.admv_BackupDatabases AS
    SELECT DB_NAME() AS DatabaseName, @@SERVERNAME AS ServerName
    UNION SELECT DBName, DBServerName FROM dbo.adm_MessageBox
    UNION SELECT DatabaseName, ServerName FROM dbo.adm_OtherDatabases
    UNION SELECT DatabaseName, ServerName FROM dbo.adm_OtherBackupDatabases;
GO
CREATE OR ALTER PROCEDURE dbo.sp_SetBackupCompression @bCompression bit = 0 AS
BEGIN
    SET NOCOUNT ON;
    UPDATE dbo.adm_BackupSettings SET UseCompression = @bCompression;
END;
GO
CREATE OR ALTER PROCEDURE dbo.sp_ForceFullBackup AS
BEGIN
    SET NOCOUNT ON;
    UPDATE dbo.adm_BackupSettings SET ForceFull = 1;
END;
GO
CREATE OR ALTER PROCEDURE dbo.sp_DeleteBackupHistory @DaysToKeep smallint = 14 AS
BEGIN
    SET NOCOUNT ON;  -- rows only: BizTalk never deletes backup files
    DELETE FROM dbo.adm_BackupHistory WHERE BackupDateTime < DATEADD(day, -@DaysToKeep, GETUTCDATE());
END;
GO
-- One backup of every database of the set; 'db' = full, 'lg' = log. Shared by the two procedures below.
CREATE OR ALTER PROCEDURE dbo.bdr_BackupSet @Kind char(2), @MarkName nvarchar(32), @BackupPath nvarchar(128) AS
BEGIN
    SET NOCOUNT ON;
    DECLARE @setId int = ISNULL((SELECT MAX(BackupSetId) FROM dbo.adm_BackupHistory), 0) + 1;
    DECLARE @compress bit = (SELECT TOP (1) UseCompression FROM dbo.adm_BackupSettings);
    DECLARE @db sysname, @server nvarchar(80), @file nvarchar(500), @sql nvarchar(max), @failed int = 0;
    IF RIGHT(@BackupPath, 1) NOT IN (N'\', N'/') SET @BackupPath = @BackupPath + N'/';
    DECLARE c CURSOR LOCAL FAST_FORWARD FOR SELECT DatabaseName, ServerName FROM dbo.admv_BackupDatabases;
    OPEN c;
    FETCH NEXT FROM c INTO @db, @server;
    WHILE @@FETCH_STATUS = 0
    BEGIN
        SET @file = REPLACE(@server, N'\', N'_') + N'_' + @db + CASE @Kind WHEN 'db' THEN N'_Full_' ELSE N'_Log_' END
                  + @MarkName + N'.bak';
        SET @sql = CASE @Kind WHEN 'db' THEN N'BACKUP DATABASE ' ELSE N'BACKUP LOG ' END + QUOTENAME(@db)
                 + N' TO DISK = N''' + REPLACE(@BackupPath + @file, N'''', N'''''') + N''''
                 + CASE WHEN @compress = 1 AND @db <> N'SSODB' THEN N' WITH COMPRESSION' ELSE N'' END;
        BEGIN TRY
            EXEC (@sql);
            INSERT INTO dbo.adm_BackupHistory (BackupSetId, MarkName, DatabaseName, ServerName, BackupFileName,
                BackupFileLocation, BackupType, SetComplete)
            VALUES (@setId, @MarkName, @db, @server, @file, @BackupPath, @Kind, 0);
        END TRY
        BEGIN CATCH
            SET @failed = @failed + 1;
            PRINT ERROR_MESSAGE();
        END CATCH;
        FETCH NEXT FROM c INTO @db, @server;
    END;
    CLOSE c;
    DEALLOCATE c;
    IF @failed = 0 UPDATE dbo.adm_BackupHistory SET SetComplete = 1 WHERE BackupSetId = @setId;
    IF @Kind = 'db' AND @failed = 0 UPDATE dbo.adm_BackupSettings SET ForceFull = 0, LastFullBackup = GETUTCDATE();
END;
GO
CREATE OR ALTER PROCEDURE dbo.sp_BackupAllFull_Schedule @Frequency nchar(1), @MarkName nvarchar(8),
    @BackupPath nvarchar(128), @ForceFullBackupAfterPartialSetFailure bit = 0, @BackupHour int = 0,
    @UseLocalTime bit = 0 AS
BEGIN
    SET NOCOUNT ON;
    DECLARE @last datetime = (SELECT TOP (1) LastFullBackup FROM dbo.adm_BackupSettings);
    DECLARE @forced bit = (SELECT TOP (1) ForceFull FROM dbo.adm_BackupSettings);
    DECLARE @partial bit = CASE WHEN EXISTS (SELECT 1 FROM dbo.adm_BackupHistory WHERE SetComplete = 0) THEN 1 ELSE 0 END;
    DECLARE @due bit = CASE
        WHEN @last IS NULL OR @forced = 1 THEN 1
        WHEN @ForceFullBackupAfterPartialSetFailure = 1 AND @partial = 1 THEN 1
        WHEN @Frequency = N'h' AND DATEDIFF(hour, @last, GETUTCDATE()) >= 1 THEN 1
        WHEN @Frequency = N'd' AND DATEDIFF(day, @last, GETUTCDATE()) >= 1 AND DATEPART(hour, GETUTCDATE()) >= @BackupHour THEN 1
        WHEN @Frequency = N'w' AND DATEDIFF(week, @last, GETUTCDATE()) >= 1 THEN 1
        WHEN @Frequency = N'm' AND DATEDIFF(month, @last, GETUTCDATE()) >= 1 THEN 1
        WHEN @Frequency = N'y' AND DATEDIFF(year, @last, GETUTCDATE()) >= 1 THEN 1
        ELSE 0 END;
    IF @due = 0 RETURN 0;
    DECLARE @now datetime2(3) = CASE WHEN @UseLocalTime = 1 THEN SYSDATETIME() ELSE SYSUTCDATETIME() END;
    DECLARE @mark nvarchar(32) = @MarkName + N'_' + REPLACE(REPLACE(REPLACE(CONVERT(nvarchar(23), @now, 121), N'-', N'_'), N':', N'_'), N' ', N'_');
    SET @mark = REPLACE(@mark, N'.', N'_');
    EXEC dbo.bdr_BackupSet @Kind = 'db', @MarkName = @mark, @BackupPath = @BackupPath;
END;
GO
CREATE OR ALTER PROCEDURE dbo.sp_MarkAll @MarkName nvarchar(8), @BackupPath nvarchar(128), @UseLocalTime bit = 0 AS
BEGIN
    SET NOCOUNT ON;
    DECLARE @now datetime2(3) = CASE WHEN @UseLocalTime = 1 THEN SYSDATETIME() ELSE SYSUTCDATETIME() END;
    DECLARE @mark nvarchar(32) = REPLACE(@MarkName + N'_' + REPLACE(REPLACE(REPLACE(CONVERT(nvarchar(23), @now, 121),
        N'-', N'_'), N':', N'_'), N' ', N'_'), N'.', N'_');
    -- one marked transaction that writes to every database of the set: the same mark in every log
    DECLARE @sql nvarchar(max) = N'';
    SELECT @sql = @sql + N'INSERT INTO ' + QUOTENAME(DatabaseName) + N'.dbo.bdr_MarkLog (MarkName) VALUES (@m);'
    FROM dbo.admv_BackupDatabases;
    SET @sql = N'BEGIN TRANSACTION ' + QUOTENAME(@mark) + N' WITH MARK; ' + @sql + N' COMMIT TRANSACTION;';
    EXEC sp_executesql @sql, N'@m nvarchar(32)', @m = @mark;
    EXEC dbo.bdr_BackupSet @Kind = 'lg', @MarkName = @mark, @BackupPath = @BackupPath;
END;
GO
IF NOT EXISTS (SELECT 1 FROM msdb.dbo.sysjobs WHERE name = N'Backup BizTalk Server (BizTalkMgmtDb)')
    EXEC msdb.dbo.sp_add_job @job_name = N'Backup BizTalk Server (BizTalkMgmtDb)', @enabled = 0,
        @description = N'Created disabled by biztalk-dr''s trial script: biztalk-dr schedules the backups.';
GO
