"""Logins and users through a real driver: a SQL login's users are orphaned on another instance until ALTER USER
... WITH LOGIN; Windows logins keep their domain SID; SQL Server's error numbers for the mistakes."""

from __future__ import annotations

import pytest

from tests.sqlserver_standin.conftest import new_instance

ORPHANS = ("SELECT dp.name FROM [Orders].sys.database_principals AS dp LEFT JOIN sys.server_principals AS sp "
           "ON sp.sid = dp.sid WHERE dp.type = 'S' AND dp.authentication_type = 1 AND dp.principal_id > 4 "
           "AND sp.sid IS NULL")


@pytest.fixture(scope="module")
def two_sites(tmp_path_factory):
    primary = new_instance(tmp_path_factory.mktemp("p"), "SQLPRD01").start()
    standby = new_instance(tmp_path_factory.mktemp("s"), "SQLDR01").start()
    yield primary, standby, tmp_path_factory.mktemp("backups")
    primary.stop()
    standby.stop()


def test_a_restored_sql_user_is_orphaned_until_mapped_to_its_login(two_sites):
    primary, standby, folder = two_sites
    p, s = primary.connect(), standby.connect()
    for sql in (p, s):  # the DR instance is prepared with the same logins; a SQL login gets a new SID there
        sql.run("CREATE LOGIN [OrdersApp] WITH PASSWORD = N'Secret-1', CHECK_POLICY = OFF")
        sql.run("CREATE LOGIN [DEMO\\BizTalk Application Users] FROM WINDOWS")
    p.run("CREATE DATABASE [Orders]")
    p.run("USE [Orders]; CREATE USER [OrdersApp] FOR LOGIN [OrdersApp]; CREATE USER [DEMO\\BizTalk Application Users]")
    assert sorted(r[0] for r in p.rows("SELECT name, type_desc FROM [Orders].sys.database_principals WHERE "
                                       "principal_id > 4")) == ["DEMO\\BizTalk Application Users", "OrdersApp"]
    assert p.rows(ORPHANS) == []
    p.run(f"BACKUP DATABASE [Orders] TO DISK = N'{folder}/orders.bak'")
    s.run(f"RESTORE DATABASE [Orders] FROM DISK = N'{folder}/orders.bak' WITH RECOVERY")
    assert [r[0] for r in s.rows(ORPHANS)] == ["OrdersApp"]  # the Windows group is not orphaned
    s.run("USE [Orders]; ALTER USER [OrdersApp] WITH LOGIN = [OrdersApp]")
    assert s.rows(ORPHANS) == []


def test_mistakes_get_sql_servers_numbers(two_sites):
    primary, _, _ = two_sites
    p = primary.connect()
    p.run("CREATE LOGIN [Twice] WITH PASSWORD = N'x'")
    assert p.error("CREATE LOGIN [Twice] WITH PASSWORD = N'x'").number == 15025
    p.run("CREATE DATABASE [Mistakes]")
    assert p.error("USE [Mistakes]; CREATE USER [Ghost] FOR LOGIN [NoSuchLogin]").number == 15007
    p.run("USE [Mistakes]; CREATE USER [Twice]")
    assert p.error("USE [Mistakes]; CREATE USER [Twice]").number == 15023
    assert p.error("USE [Mistakes]; ALTER USER [Nobody] WITH LOGIN = [Twice]").number == 15151
    assert p.error("USE [Mistakes]; CREATE USER [Other] FOR LOGIN [Twice]").number == 15063
