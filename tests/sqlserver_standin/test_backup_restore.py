"""BACKUP and RESTORE through a real driver: files, chains by LSN, marks, and SQL Server's errors.

Every number asserted here is the one SQL Server documents for the situation (see MODEL.md).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from sqlserver_standin import faults
from tests.sqlserver_standin.conftest import STACKS, Client


@pytest.fixture
def db(sql: Client) -> str:
    name = f"t_{uuid.uuid4().hex[:8]}"
    sql.run(f"CREATE DATABASE [{name}]")
    sql.run(f"ALTER DATABASE [{name}] SET RECOVERY FULL")
    sql.run(f"USE [{name}]; CREATE TABLE dbo.Orders (id int NOT NULL PRIMARY KEY, note nvarchar(100)); "
            "CREATE TABLE dbo.MarkLog (MarkName nvarchar(32) NOT NULL, DateMarked datetime NOT NULL); USE master")
    return name


def insert(sql: Client, db: str, *ids: int) -> None:
    for i in ids:
        sql.run(f"INSERT INTO [{db}].dbo.Orders (id, note) VALUES ({i}, N'order {i}')")


def mark(sql: Client, db: str, name: str) -> None:
    sql.run(f"BEGIN TRANSACTION [{name}] WITH MARK N'{name}'; "
            f"INSERT INTO [{db}].dbo.MarkLog (MarkName, DateMarked) VALUES (N'{name}', GETDATE()); COMMIT")


def chain(sql: Client, db: str, folder: Path) -> dict[str, str]:
    """full (1) | 2, mark M1, 3 | log1 | 4 | log2"""
    files = {k: str(folder / f"{db}_{k}.bak") for k in ("full", "log1", "log2")}
    insert(sql, db, 1)
    sql.run(f"BACKUP DATABASE [{db}] TO DISK = N'{files['full']}'")
    insert(sql, db, 2)
    mark(sql, db, "M1")
    insert(sql, db, 3)
    sql.run(f"BACKUP LOG [{db}] TO DISK = N'{files['log1']}'")
    insert(sql, db, 4)
    sql.run(f"BACKUP LOG [{db}] TO DISK = N'{files['log2']}'")
    return files


def ids(sql: Client, db: str) -> list[int]:
    return [r[0] for r in sql.rows(f"SELECT id FROM [{db}].dbo.Orders ORDER BY id")]


def state(sql: Client, db: str) -> str:
    return sql.value(f"SELECT state_desc FROM sys.databases WHERE name = N'{db}'")


def test_backups_write_real_files_whose_log_sizes_follow_the_activity(sql, db, tmp_path):
    files = chain(sql, db, tmp_path)
    assert all(Path(f).stat().st_size > 0 for f in files.values())
    rows = sql.rows(f"SELECT type, first_lsn, last_lsn, database_backup_lsn, backup_size FROM msdb.dbo.backupset "
                    f"WHERE database_name = N'{db}' ORDER BY backup_set_id")
    assert [r[0] for r in rows] == ["D", "L", "L"]
    (_, _, full_last, _, _), (_, log1_first, log1_last, log1_base, _), (_, log2_first, _, _, _) = rows
    assert log1_last == log2_first  # the log chain is unbroken by LSN
    assert log1_base < full_last  # database_backup_lsn: the full the logs are based on
    assert rows[1][4] > rows[2][4]  # log1 carried three changes and a mark, log2 one change


def test_headeronly_and_filelistonly_describe_the_file(sql, db, tmp_path):
    files = chain(sql, db, tmp_path)
    cursor = sql.conn.cursor()
    cursor.execute(f"RESTORE HEADERONLY FROM DISK = N'{files['log1']}'")
    columns = [c[0] for c in cursor.description]
    row = dict(zip(columns, cursor.fetchone(), strict=True))
    cursor.close()
    assert row["BackupType"] == 2 and row["DatabaseName"] == db and row["Position"] == 1
    assert row["ServerName"] == "SQLPRD01" and row["FirstLSN"] < row["LastLSN"]
    files_rows = sql.rows(f"RESTORE FILELISTONLY FROM DISK = N'{files['full']}'")
    assert {(r[0], r[2]) for r in files_rows} == {(db, "D"), (f"{db}_log", "L")}
    sql.run(f"RESTORE VERIFYONLY FROM DISK = N'{files['full']}'")


def test_the_files_are_microsoft_tape_format_that_the_product_reader_reads_like_headeronly(sql, db, tmp_path):
    """The stand-in writes the layout of real backups, so biztalk-dr's reader (tested on real SQL Server files)
    must report what RESTORE HEADERONLY reports, and a plan from the files alone is the chain just made."""
    from biztalk_dr.backup_files import read_backup_file
    from biztalk_dr.domain.restore_planner import Target, plan_restore

    files = chain(sql, db, tmp_path)
    sql.run(f"BACKUP LOG [{db}] TO DISK = N'{tmp_path / 'stripe1.bak'}', DISK = N'{tmp_path / 'stripe2.bak'}'")
    read = []
    for key in ("full", "log1", "log2"):
        (header,) = read_backup_file(files[key])
        cursor = sql.conn.cursor()
        cursor.execute(f"RESTORE HEADERONLY FROM DISK = N'{files[key]}'")
        columns = [c[0] for c in cursor.description]
        row = dict(zip(columns, cursor.fetchone(), strict=True))
        cursor.close()
        assert (header.database_name, header.server_name, header.position) == (db, row["ServerName"], 1)
        assert header.backup_type == {1: "FULL", 2: "LOG", 5: "DIFF"}[row["BackupType"]]
        assert (header.first_lsn, header.last_lsn, header.checkpoint_lsn, header.database_backup_lsn) == (
            int(row["FirstLSN"]), int(row["LastLSN"]), int(row["CheckpointLSN"]), int(row["DatabaseBackupLSN"]))
        assert header.backup_start_date == row["BackupStartDate"].replace(microsecond=0)
        assert header.software_version == "16.0.1000" and not header.compressed
        read.append(header)
    assert [(f.logical_name, f.type) for f in read[0].files] == [(db, "D"), (f"{db}_log", "L")]
    stripes = read_backup_file(tmp_path / "stripe1.bak") + read_backup_file(tmp_path / "stripe2.bak")
    assert [(h.family_sequence, h.family_count) for h in stripes] == [(1, 2), (2, 2)]
    assert stripes[0].media_set_id == stripes[1].media_set_id and stripes[0].first_lsn == read[2].last_lsn
    plan = plan_restore([*read, *stripes], db, Target())
    assert [len(step.backup.paths) for step in plan.steps] == [1, 1, 1, 2]
    packed = tmp_path / "compressed.bak"
    sql.run(f"BACKUP DATABASE [{db}] TO DISK = N'{packed}' WITH COMPRESSION")
    sql.run(f"BACKUP LOG [{db}] TO DISK = N'{packed}' WITH COMPRESSION")
    assert packed.read_bytes()[:8] == b"MSSQLBAK"  # SQL Server's container, [MS-XCA] frames inside
    full, log = read_backup_file(packed)
    assert (full.compressed, full.backup_type, log.backup_type, log.position) == (True, "FULL", "LOG", 2)
    assert log.first_lsn == stripes[0].last_lsn
    sql.run(f"RESTORE VERIFYONLY FROM DISK = N'{packed}' WITH FILE = 2")


def test_restore_to_a_mark_includes_the_marked_transaction_and_records_it(sql, db, tmp_path):
    files = chain(sql, db, tmp_path)
    copy = db + "_copy"
    moves = f"MOVE N'{db}' TO N'{tmp_path}/{copy}.mdf', MOVE N'{db}_log' TO N'{tmp_path}/{copy}_log.ldf'"
    sql.run(f"RESTORE DATABASE [{copy}] FROM DISK = N'{files['full']}' WITH NORECOVERY, {moves}")
    assert state(sql, copy) == "RESTORING"
    sql.run(f"RESTORE LOG [{copy}] FROM DISK = N'{files['log1']}' WITH STOPATMARK = N'M1', RECOVERY")
    assert state(sql, copy) == "ONLINE"
    assert ids(sql, copy) == [1, 2]  # the row written in the marked transaction is the mark's own (MarkLog)
    assert sql.value(f"SELECT MarkName FROM [{copy}].dbo.MarkLog") == "M1"
    assert sql.value(f"SELECT TOP (1) stop_at_mark_name FROM msdb.dbo.restorehistory "
                     f"WHERE destination_database_name = N'{copy}' ORDER BY restore_history_id DESC") == "M1"


def test_stopbeforemark_excludes_the_marked_transaction(sql, db, tmp_path):
    files = chain(sql, db, tmp_path)
    copy = db + "_b"
    moves = f"MOVE N'{db}' TO N'{tmp_path}/{copy}.mdf', MOVE N'{db}_log' TO N'{tmp_path}/{copy}_log.ldf'"
    sql.run(f"RESTORE DATABASE [{copy}] FROM DISK = N'{files['full']}' WITH NORECOVERY, {moves}")
    sql.run(f"RESTORE LOG [{copy}] FROM DISK = N'{files['log1']}' WITH STOPBEFOREMARK = N'M1', RECOVERY")
    assert ids(sql, copy) == [1, 2]
    assert sql.rows(f"SELECT MarkName FROM [{copy}].dbo.MarkLog") == []


def test_a_log_that_ends_before_the_mark_leaves_the_database_restoring_with_4329(sql, db, tmp_path):
    insert(sql, db, 1)
    sql.run(f"BACKUP DATABASE [{db}] TO DISK = N'{tmp_path}/full.bak'")
    insert(sql, db, 2)
    sql.run(f"BACKUP LOG [{db}] TO DISK = N'{tmp_path}/log1.bak'")
    mark(sql, db, "M9")
    sql.run(f"BACKUP LOG [{db}] TO DISK = N'{tmp_path}/log2.bak'")
    copy = db + "_c"
    moves = f"MOVE N'{db}' TO N'{tmp_path}/{copy}.mdf', MOVE N'{db}_log' TO N'{tmp_path}/{copy}_log.ldf'"
    sql.run(f"RESTORE DATABASE [{copy}] FROM DISK = N'{tmp_path}/full.bak' WITH NORECOVERY, {moves}")
    cursor = sql.conn.cursor()
    cursor.execute(f"RESTORE LOG [{copy}] FROM DISK = N'{tmp_path}/log1.bak' WITH STOPATMARK = N'M9', RECOVERY")
    messages = list(cursor.messages)
    while cursor.nextset():
        messages += cursor.messages
    cursor.close()
    assert any("(4329)" in str(m) for m in messages)
    assert state(sql, copy) == "RESTORING"
    sql.run(f"RESTORE LOG [{copy}] FROM DISK = N'{tmp_path}/log2.bak' WITH STOPATMARK = N'M9', RECOVERY")
    assert state(sql, copy) == "ONLINE"
    assert sql.value(f"SELECT MarkName FROM [{copy}].dbo.MarkLog") == "M9"


def test_chain_errors_carry_sql_servers_numbers(sql, db, tmp_path):
    files = chain(sql, db, tmp_path)
    copy = db + "_d"
    moves = f"MOVE N'{db}' TO N'{tmp_path}/{copy}.mdf', MOVE N'{db}_log' TO N'{tmp_path}/{copy}_log.ldf'"
    sql.run(f"RESTORE DATABASE [{copy}] FROM DISK = N'{files['full']}' WITH NORECOVERY, {moves}")
    assert sql.error(f"RESTORE LOG [{copy}] FROM DISK = N'{files['log2']}' WITH NORECOVERY").number == 4305  # gap
    sql.run(f"RESTORE LOG [{copy}] FROM DISK = N'{files['log1']}' WITH NORECOVERY")
    assert sql.error(f"RESTORE LOG [{copy}] FROM DISK = N'{files['log1']}' WITH NORECOVERY").number == 4326  # applied
    sql.run(f"RESTORE LOG [{copy}] FROM DISK = N'{files['log2']}' WITH RECOVERY")
    assert ids(sql, copy) == [1, 2, 3, 4]
    assert sql.error(f"RESTORE LOG [{copy}] FROM DISK = N'{files['log2']}' WITH NORECOVERY").number == 3117  # online
    # a full backup of another database over an existing one needs REPLACE
    assert sql.error(f"RESTORE DATABASE [{copy}] FROM DISK = N'{files['full']}' WITH NORECOVERY, {moves}").number \
        in (3154, 3159)
    # the source's log tail was not backed up: 3159 unless REPLACE
    insert(sql, db, 5)
    assert sql.error(f"RESTORE DATABASE [{db}] FROM DISK = N'{files['full']}' WITH NORECOVERY").number == 3159
    assert sql.error(f"RESTORE LOG [{db}] FROM DISK = N'{files['full']}'").number == 3135  # not a log backup


def test_backup_and_restore_refuse_to_run_inside_a_transaction(sql, db, tmp_path):
    error = sql.error(f"BEGIN TRANSACTION; BACKUP DATABASE [{db}] TO DISK = N'{tmp_path}/x.bak'")
    assert error.number == 3021
    sql.run("IF @@TRANCOUNT > 0 ROLLBACK")


def test_log_backups_need_full_recovery_and_a_full_backup(sql, tmp_path):
    name = f"s_{uuid.uuid4().hex[:8]}"
    sql.run(f"CREATE DATABASE [{name}]; ALTER DATABASE [{name}] SET RECOVERY SIMPLE")
    assert sql.error(f"BACKUP LOG [{name}] TO DISK = N'{tmp_path}/l.bak'").number == 4208
    sql.run(f"ALTER DATABASE [{name}] SET RECOVERY FULL")
    assert sql.error(f"BACKUP LOG [{name}] TO DISK = N'{tmp_path}/l.bak'").number == 4214
    assert sql.error(f"BACKUP DATABASE [{name}] TO DISK = N'{tmp_path}/d.bak' WITH DIFFERENTIAL").number == 3035


def test_copy_only_backups_leave_the_chain_alone(sql, db, tmp_path):
    insert(sql, db, 1)
    sql.run(f"BACKUP DATABASE [{db}] TO DISK = N'{tmp_path}/full.bak'")
    insert(sql, db, 2)
    sql.run(f"BACKUP DATABASE [{db}] TO DISK = N'{tmp_path}/copy.bak' WITH COPY_ONLY, COMPRESSION, CHECKSUM, INIT")
    sql.run(f"BACKUP LOG [{db}] TO DISK = N'{tmp_path}/log.bak'")
    [(is_copy_only, compressed_smaller)] = sql.rows(
        f"SELECT is_copy_only, CASE WHEN compressed_backup_size < backup_size THEN 1 ELSE 0 END "
        f"FROM msdb.dbo.backupset WHERE database_name = N'{db}' AND is_copy_only = 1")
    assert is_copy_only and compressed_smaller
    copy = db + "_e"
    moves = f"MOVE N'{db}' TO N'{tmp_path}/{copy}.mdf', MOVE N'{db}_log' TO N'{tmp_path}/{copy}_log.ldf'"
    sql.run(f"RESTORE DATABASE [{copy}] FROM DISK = N'{tmp_path}/full.bak' WITH NORECOVERY, {moves}")
    sql.run(f"RESTORE LOG [{copy}] FROM DISK = N'{tmp_path}/log.bak' WITH RECOVERY")
    assert ids(sql, copy) == [1, 2]


def test_damaged_files_are_reported_as_sql_server_does(sql, db, tmp_path):
    missing = sql.error(f"BACKUP DATABASE [{db}] TO DISK = N'{tmp_path}/no/such/folder/x.bak'")
    assert missing.number == 3201
    path = tmp_path / "full.bak"
    sql.run(f"BACKUP DATABASE [{db}] TO DISK = N'{path}'")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert sql.error(f"RESTORE VERIFYONLY FROM DISK = N'{path}'").number in (3203, 3183)
    (tmp_path / "text.bak").write_text("not a backup\n")
    assert sql.error(f"RESTORE HEADERONLY FROM DISK = N'{tmp_path}/text.bak'").number == 3241


def test_exclusive_access_is_refused_while_another_session_uses_the_database(instance, sql, db, tmp_path):
    sql.run(f"BACKUP DATABASE [{db}] TO DISK = N'{tmp_path}/full.bak'")
    other = instance.connect("freetds", database=db)
    try:
        assert sql.error(f"RESTORE DATABASE [{db}] FROM DISK = N'{tmp_path}/full.bak' WITH REPLACE").number == 3101
    finally:
        other.close()


def test_checkdb_reports_an_injected_corruption(instance, sql, db):
    sql.run(f"DBCC CHECKDB (N'{db}') WITH NO_INFOMSGS")
    faults.inject(instance.data_dir, "corrupt_database", database=db)
    error = sql.error(f"DBCC CHECKDB (N'{db}') WITH NO_INFOMSGS")
    assert error.number in (8939, 8928, 8989)


@pytest.mark.parametrize("stack", STACKS)
def test_each_client_stack_sees_the_same_chain_errors(instance, stack, tmp_path):
    client = instance.connect(stack)
    try:
        name = f"k_{stack}_{uuid.uuid4().hex[:6]}"
        client.run(f"CREATE DATABASE [{name}]")
        client.run(f"ALTER DATABASE [{name}] SET RECOVERY FULL")
        client.run(f"BACKUP DATABASE [{name}] TO DISK = N'{tmp_path}/f.bak'")
        client.run(f"BACKUP LOG [{name}] TO DISK = N'{tmp_path}/l1.bak'")
        client.run(f"BACKUP LOG [{name}] TO DISK = N'{tmp_path}/l2.bak'")
        copy = name + "_r"
        moves = (f"MOVE N'{name}' TO N'{tmp_path}/{copy}.mdf', "
                 f"MOVE N'{name}_log' TO N'{tmp_path}/{copy}_log.ldf'")
        client.run(f"RESTORE DATABASE [{copy}] FROM DISK = N'{tmp_path}/f.bak' WITH NORECOVERY, {moves}")
        assert client.error(f"RESTORE LOG [{copy}] FROM DISK = N'{tmp_path}/l2.bak' WITH NORECOVERY").number == 4305
        client.run(f"RESTORE LOG [{copy}] FROM DISK = N'{tmp_path}/l1.bak' WITH NORECOVERY")
        assert client.error(f"RESTORE LOG [{copy}] FROM DISK = N'{tmp_path}/l1.bak' WITH NORECOVERY").number == 4326
        client.run(f"RESTORE DATABASE [{copy}] WITH RECOVERY")
        assert client.value(f"SELECT state_desc FROM sys.databases WHERE name = N'{copy}'") == "ONLINE"
    finally:
        client.close()


# ------------------------------------------------------------------------------------------ recovery forks
def headeronly(sql: Client, path: str) -> dict:
    cursor = sql.conn.cursor()
    cursor.execute(f"RESTORE HEADERONLY FROM DISK = N'{path}'")
    columns = [c[0] for c in cursor.description]
    row = dict(zip(columns, cursor.fetchone(), strict=True))
    cursor.close()
    return row


def test_recovering_a_restore_starts_a_new_recovery_fork_and_a_log_of_another_branch_is_refused_with_4330(
        sql, db, tmp_path):
    """"Recovery Paths": recovery after a restore starts a new branch; its backups carry the new RecoveryForkID,
    the old one as their parent and the fork point; a log of another branch is refused with 4330 even where its
    LSNs fit. The product's reader sees in the files what HEADERONLY reports."""
    from biztalk_dr.backup_files import read_backup_file

    insert(sql, db, 1)
    sql.run(f"BACKUP DATABASE [{db}] TO DISK = N'{tmp_path}/full.bak'")
    insert(sql, db, 2)
    sql.run(f"BACKUP LOG [{db}] TO DISK = N'{tmp_path}/log1.bak'")
    insert(sql, db, 3)
    sql.run(f"BACKUP LOG [{db}] TO DISK = N'{tmp_path}/log2.bak'")  # the old branch goes on
    before = headeronly(sql, f"{tmp_path}/log2.bak")
    # the database restored over itself to log1 and recovered (as a failover does): a new branch
    sql.run(f"RESTORE DATABASE [{db}] FROM DISK = N'{tmp_path}/full.bak' WITH REPLACE, NORECOVERY")
    sql.run(f"RESTORE LOG [{db}] FROM DISK = N'{tmp_path}/log1.bak' WITH RECOVERY")
    insert(sql, db, 20, 21, 22, 23)  # more than the old branch wrote after log1: its log overlaps log2's LSNs
    sql.run(f"BACKUP LOG [{db}] TO DISK = N'{tmp_path}/new_log1.bak'")
    after = headeronly(sql, f"{tmp_path}/new_log1.bak")
    log1 = headeronly(sql, f"{tmp_path}/log1.bak")
    assert after["FamilyGUID"] == before["FamilyGUID"] == before["RecoveryForkID"]
    assert after["RecoveryForkID"] != before["RecoveryForkID"] and after["BindingID"] != before["BindingID"]
    assert after["FirstLSN"] == log1["LastLSN"] < before["LastLSN"] < after["LastLSN"]  # overlapping LSNs
    (read,) = read_backup_file(tmp_path / "new_log1.bak")
    assert read.recovery_fork_id == str(after["RecoveryForkID"]).lower()
    assert read.branch_parent_id == str(before["RecoveryForkID"]).lower() and read.branch_lsn == int(log1["LastLSN"])
    assert read.family_guid == str(after["FamilyGUID"]).lower()
    copy = db + "_f"
    moves = f"MOVE N'{db}' TO N'{tmp_path}/{copy}.mdf', MOVE N'{db}_log' TO N'{tmp_path}/{copy}_log.ldf'"
    sql.run(f"RESTORE DATABASE [{copy}] FROM DISK = N'{tmp_path}/full.bak' WITH NORECOVERY, {moves}")
    sql.run(f"RESTORE LOG [{copy}] FROM DISK = N'{tmp_path}/log1.bak' WITH NORECOVERY")
    sql.run(f"RESTORE LOG [{copy}] FROM DISK = N'{tmp_path}/log2.bak' WITH NORECOVERY")
    error = sql.error(f"RESTORE LOG [{copy}] FROM DISK = N'{tmp_path}/new_log1.bak' WITH RECOVERY")
    assert error.number == 4330 and "recovery path that is inconsistent" in str(error)
    # at the fork point both branches continue: the new branch's log applies right after log1
    other = db + "_g"
    moves = f"MOVE N'{db}' TO N'{tmp_path}/{other}.mdf', MOVE N'{db}_log' TO N'{tmp_path}/{other}_log.ldf'"
    sql.run(f"RESTORE DATABASE [{other}] FROM DISK = N'{tmp_path}/full.bak' WITH NORECOVERY, {moves}")
    sql.run(f"RESTORE LOG [{other}] FROM DISK = N'{tmp_path}/log1.bak' WITH NORECOVERY")
    sql.run(f"RESTORE LOG [{other}] FROM DISK = N'{tmp_path}/new_log1.bak' WITH RECOVERY")
    assert ids(sql, other) == [1, 2, 20, 21, 22, 23]


def test_stopatmark_lsn_includes_the_record_at_the_lsn_and_stopbeforemark_excludes_it(sql, db, tmp_path):
    insert(sql, db, 1)
    sql.run(f"BACKUP DATABASE [{db}] TO DISK = N'{tmp_path}/full.bak'")
    insert(sql, db, 2, 3, 4)
    sql.run(f"BACKUP LOG [{db}] TO DISK = N'{tmp_path}/log.bak'")
    log = headeronly(sql, f"{tmp_path}/log.bak")
    results = {}
    for n, (option, lsn) in enumerate([("STOPATMARK", int(log["LastLSN"]) - 1), ("STOPBEFOREMARK", int(log["FirstLSN"])),
                                       ("STOPATMARK", int(log["FirstLSN"]))]):
        copy = f"{db}_l{n}"
        moves = f"MOVE N'{db}' TO N'{tmp_path}/{copy}.mdf', MOVE N'{db}_log' TO N'{tmp_path}/{copy}_log.ldf'"
        sql.run(f"RESTORE DATABASE [{copy}] FROM DISK = N'{tmp_path}/full.bak' WITH NORECOVERY, {moves}")
        sql.run(f"RESTORE LOG [{copy}] FROM DISK = N'{tmp_path}/log.bak' WITH {option} = N'lsn:{lsn}', RECOVERY")
        results[(option, lsn)] = ids(sql, copy)
    assert list(results.values()) == [[1, 2, 3, 4], [1], [1]]


def test_a_restore_held_by_slow_restore_goes_on_once_the_fault_is_cleared(instance, sql, db, tmp_path):
    """How the engine tests hold a restore in progress for exactly as long as they need (MODEL.md, faults)."""
    import threading

    files = chain(sql, db, tmp_path)
    faults.inject(instance.data_dir, "slow_restore", seconds=600)
    other, done = instance.connect("freetds"), []
    restore = threading.Thread(target=lambda: done.append(other.run(
        f"RESTORE DATABASE [{db}_held] FROM DISK = N'{files['full']}' WITH NORECOVERY, "
        f"MOVE N'{db}' TO N'{tmp_path}/held.mdf', MOVE N'{db}_log' TO N'{tmp_path}/held.ldf'")), daemon=True)
    try:
        restore.start()
        restore.join(timeout=3)
        assert restore.is_alive()  # held by the fault
        faults.clear(instance.data_dir, "slow_restore")
        restore.join(timeout=60)  # 600 s if the clear did not end the wait
        assert not restore.is_alive()
        assert state(sql, f"{db}_held") == "RESTORING"
    finally:
        faults.clear(instance.data_dir)
        restore.join(timeout=5)
        other.close()
