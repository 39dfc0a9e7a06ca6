"""The T-SQL builder against Microsoft's documented syntax, with hostile names.

No available T-SQL parser understands BACKUP/RESTORE, so this module carries a small parser for the
documented grammar ("BACKUP (Transact-SQL)", "RESTORE Statements (Transact-SQL)"):

    BACKUP { DATABASE | LOG } name TO DISK = 'file' [ ,...n ] [ WITH option [ ,...n ] ]
    RESTORE { DATABASE | LOG } name [ FROM DISK = 'file' [ ,...n ] ] [ WITH option [ ,...n ] ]
    RESTORE { HEADERONLY | FILELISTONLY | VERIFYONLY } FROM DISK = 'file' [ ,...n ] [ WITH option ]
    option ::= KEYWORD | KEYWORD = value | MOVE 'logical' TO 'physical' | STOPATMARK = 'mark' [ AFTER 'datetime' ]

It decodes every quoted name and string, so a test can check that what SQL Server would read is
exactly what the caller asked for, whatever characters it holds.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biztalk_dr.domain import tsql
from biztalk_dr.domain.errors import TsqlBuildError
from biztalk_dr.domain.tsql import Move, Recovery

_TOKEN = re.compile(r"""\s*(?:
    (?P<ident>\[(?:[^\]]|\]\])*\])
  | (?P<string>N'(?:[^']|'')*')
  | (?P<number>\d+)
  | (?P<word>[A-Z_]+)
  | (?P<punct>[=,().@])
)""", re.VERBOSE | re.DOTALL)

_BACKUP_OPTIONS = {"DIFFERENTIAL", "COPY_ONLY", "COMPRESSION", "NO_COMPRESSION", "CHECKSUM", "NO_CHECKSUM",
                   "INIT", "NOINIT", "STATS"}
_RESTORE_OPTIONS = {"RECOVERY", "NORECOVERY", "REPLACE", "FILE", "MOVE", "STATS", "STOPATMARK", "STOPBEFOREMARK",
                    "STOPAT", "STANDBY"}


def tokens(sql: str, pattern: re.Pattern = _TOKEN) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(sql):
        m = pattern.match(sql, pos)
        assert m and m.end() > pos, f"unexpected text at {pos}: {sql[pos:pos + 20]!r}"
        kind = m.lastgroup
        text = m.group(kind)
        if kind == "ident":
            text = text[1:-1].replace("]]", "]")
        elif kind == "string":
            text = text[2:-1].replace("''", "'")
        out.append((kind, text))
        pos = m.end()
    return out


class Parser:
    def __init__(self, sql: str) -> None:
        self.toks = tokens(sql)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, kind: str, text: str | None = None) -> str:
        tok = self.peek()
        assert tok is not None, f"expected {kind} {text or ''}, got end"
        assert tok[0] == kind and (text is None or tok[1] == text), f"expected {kind} {text}, got {tok}"
        self.i += 1
        return tok[1]

    def accept(self, kind: str, text: str | None = None) -> bool:
        tok = self.peek()
        if tok and tok[0] == kind and (text is None or tok[1] == text):
            self.i += 1
            return True
        return False

    def devices(self) -> list[str]:
        paths = []
        while True:
            self.take("word", "DISK")
            self.take("punct", "=")
            paths.append(self.take("string"))
            if not (self.peek() == ("punct", ",") and self.toks[self.i + 1] == ("word", "DISK")):
                return paths
            self.take("punct", ",")

    def options(self, allowed: set[str]) -> list[tuple]:
        if not self.accept("word", "WITH"):
            return []
        opts = []
        while True:
            name = self.take("word")
            assert name in allowed, f"{name} is not a documented option here"
            if name == "MOVE":
                logical = self.take("string")
                self.take("word", "TO")
                opts.append(("MOVE", logical, self.take("string")))
            elif self.accept("punct", "="):
                tok = self.peek()
                value = self.take(tok[0])
                if name in ("STOPATMARK", "STOPBEFOREMARK") and self.accept("word", "AFTER"):
                    opts.append((name, value, self.take("string")))
                else:
                    opts.append((name, value))
            else:
                opts.append((name,))
            if not self.accept("punct", ","):
                return opts

    def end(self) -> None:
        assert self.peek() is None, f"trailing text: {self.toks[self.i:]}"


def parse_backup(sql: str) -> dict:
    p = Parser(sql)
    p.take("word", "BACKUP")
    kind = p.take("word")
    assert kind in ("DATABASE", "LOG")
    name = p.take("ident")
    p.take("word", "TO")
    paths = p.devices()
    opts = p.options(_BACKUP_OPTIONS)
    p.end()
    return {"kind": kind, "name": name, "paths": paths, "options": opts}


def parse_restore(sql: str) -> dict:
    p = Parser(sql)
    p.take("word", "RESTORE")
    kind = p.take("word")
    name = p.take("ident") if kind in ("DATABASE", "LOG") else None
    paths = p.devices() if p.accept("word", "FROM") else []
    opts = p.options(_RESTORE_OPTIONS)
    p.end()
    recovery = [o[0] for o in opts if o[0] in ("RECOVERY", "NORECOVERY", "STANDBY")]
    assert len(recovery) <= 1, f"conflicting recovery options {recovery}"
    return {"kind": kind, "name": name, "paths": paths, "options": opts}


HOSTILE = ["Biz]Talk", "a'b", "x;DROP DATABASE master;--", "名前ü", "[x]", "a]]b''c", "sp ace", "\u202eevil"]


# ---------------------------------------------------------------------------------------------- quoting
@pytest.mark.parametrize("name", HOSTILE)
def test_quote_name_doubles_closing_brackets_and_round_trips(name):
    quoted = tsql.quote_name(name)
    assert quoted == "[" + name.replace("]", "]]") + "]"
    assert tokens(quoted) == [("ident", name)]


@pytest.mark.parametrize("value", HOSTILE + ["", "O'Brien's", "\\\\share\\path\\"])
def test_quote_string_is_unicode_literal_round_trip(value):
    quoted = tsql.quote_string(value)
    assert quoted.startswith("N'") and quoted.endswith("'")
    assert tokens(quoted) == [("string", value)]


@pytest.mark.parametrize("bad,message", [
    ("", "identifier must not be empty"),
    ("x" * 129, "identifier is 129 characters long; SQL Server allows at most 128"),
    ("a\x00b", "identifier contains a NUL character"),
])
def test_quote_name_refuses_what_sql_server_refuses(bad, message):
    with pytest.raises(TsqlBuildError, match=re.escape(message)):
        tsql.quote_name(bad)


def test_literal_values():
    assert tsql.literal(None) == "NULL"
    assert tsql.literal(True) == "1"
    assert tsql.literal(False) == "0"
    assert tsql.literal(14) == "14"
    assert tsql.literal(decimal.Decimal("39000000012300001")) == "39000000012300001"
    assert tsql.literal("it's") == "N'it''s'"
    assert tsql.literal(dt.datetime(2026, 11, 25, 3, 4, 5, 678000)) == "N'2026-11-25T03:04:05.678'"
    with pytest.raises(TsqlBuildError, match="no T-SQL literal for float"):
        tsql.literal(1.5)


# ---------------------------------------------------------------------------------------------- EXEC
def test_exec_procedure_with_named_arguments():
    sql = tsql.exec_procedure(("BizTalkMgmtDb", "dbo", "sp_BackupAllFull_Schedule"),
                              {"Frequency": "d", "MarkName": "BTS", "BackupPath": "\\\\fs\\b'k\\",
                               "ForceFullBackupAfterPartialSetFailure": True, "BackupHour": 1})
    assert sql == ("EXEC [BizTalkMgmtDb].[dbo].[sp_BackupAllFull_Schedule] @Frequency = N'd', @MarkName = N'BTS', "
                   "@BackupPath = N'\\\\fs\\b''k\\', @ForceFullBackupAfterPartialSetFailure = 1, @BackupHour = 1")


@pytest.mark.parametrize("bad", ["x; DROP", "1abc", "@@x", "a b", ""])
def test_exec_procedure_refuses_bad_parameter_names(bad):
    with pytest.raises(TsqlBuildError, match="invalid procedure parameter name"):
        tsql.exec_procedure("sp_x", {bad: 1})


def test_exec_procedure_quotes_hostile_procedure_names():
    assert tsql.exec_procedure(("db]x", "dbo", "p")) == "EXEC [db]]x].[dbo].[p]"


# ---------------------------------------------------------------------------------------------- BACKUP
def test_backup_database_copy_only_matches_documented_syntax():
    sql = tsql.backup_database("BizTalkMgmtDb", "D:\\b\\m.bak", copy_only=True, compression=True, stats=10)
    assert sql == "BACKUP DATABASE [BizTalkMgmtDb] TO DISK = N'D:\\b\\m.bak' WITH COPY_ONLY, COMPRESSION, STATS = 10"
    assert parse_backup(sql)["options"] == [("COPY_ONLY",), ("COMPRESSION",), ("STATS", "10")]


def test_backup_log_striped():
    sql = tsql.backup_log("SSODB", ["/b/1.trn", "/b/2.trn"], compression=False)
    parsed = parse_backup(sql)
    assert parsed == {"kind": "LOG", "name": "SSODB", "paths": ["/b/1.trn", "/b/2.trn"],
                      "options": [("NO_COMPRESSION",)]}


def test_backup_without_options_has_no_with_clause():
    assert tsql.backup_log("x", "/b/x.trn") == "BACKUP LOG [x] TO DISK = N'/b/x.trn'"


def test_copy_only_differential_is_refused():
    with pytest.raises(TsqlBuildError, match="a copy-only backup is never a base"):
        tsql.backup_database("x", "/b/x.bak", copy_only=True, differential=True)


@pytest.mark.parametrize("stats", [0, 101, True, "10"])
def test_stats_must_be_a_percentage(stats):
    with pytest.raises(TsqlBuildError, match="STATS must be a whole percentage from 1 to 100"):
        tsql.backup_log("x", "/b/x.trn", stats=stats)


def test_backup_needs_a_device_and_at_most_64():
    with pytest.raises(TsqlBuildError, match="needs at least one backup file"):
        tsql.backup_log("x", [])
    with pytest.raises(TsqlBuildError, match="at most 64 backup devices"):
        tsql.backup_log("x", [f"/b/{i}" for i in range(65)])


# ---------------------------------------------------------------------------------------------- RESTORE
def test_restore_database_with_move_replace_norecovery():
    sql = tsql.restore_database(
        "BizTalkMsgBoxDb", "E:\\L\\SQL1_BizTalkMsgBoxDb_Full_BTS_2026_11_25_01_00_00_000.bak",
        moves=[Move("BizTalkMsgBoxDb", "E:\\D\\BizTalkMsgBoxDb.mdf"), Move("BizTalkMsgBoxDb_log", "F:\\L\\m.ldf")],
        replace=True, file=1)
    assert sql == ("RESTORE DATABASE [BizTalkMsgBoxDb] FROM DISK = "
                   "N'E:\\L\\SQL1_BizTalkMsgBoxDb_Full_BTS_2026_11_25_01_00_00_000.bak' WITH FILE = 1, "
                   "MOVE N'BizTalkMsgBoxDb' TO N'E:\\D\\BizTalkMsgBoxDb.mdf', "
                   "MOVE N'BizTalkMsgBoxDb_log' TO N'F:\\L\\m.ldf', REPLACE, NORECOVERY")
    assert parse_restore(sql)["options"][-1] == ("NORECOVERY",)


def test_restore_log_to_mark_with_recovery():
    sql = tsql.restore_log("SSODB", "/l/x.bak", recovery=Recovery.RECOVERY, stop_at_mark="BTS_2026_11_25_03_15_00_123")
    assert sql == ("RESTORE LOG [SSODB] FROM DISK = N'/l/x.bak' WITH RECOVERY, "
                   "STOPATMARK = N'BTS_2026_11_25_03_15_00_123'")
    assert parse_restore(sql)["options"] == [("RECOVERY",), ("STOPATMARK", "BTS_2026_11_25_03_15_00_123")]


def test_restore_log_stop_before_mark_after_time():
    sql = tsql.restore_log("d", "/l/x", stop_before_mark="M1", mark_after=dt.datetime(2026, 1, 2, 3, 4, 5))
    assert parse_restore(sql)["options"][1] == ("STOPBEFOREMARK", "M1", "2026-01-02T03:04:05.000")


def test_restore_log_stop_at_time_needs_local_naive_time():
    sql = tsql.restore_log("d", "/l/x", stop_at=dt.datetime(2026, 1, 2, 3, 4, 5, 6000))
    assert sql.endswith("STOPAT = N'2026-01-02T03:04:05.006'")
    with pytest.raises(TsqlBuildError, match="server's local time"):
        tsql.restore_log("d", "/l/x", stop_at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))


def test_restore_log_refuses_two_stop_points_and_stray_after():
    with pytest.raises(TsqlBuildError, match="only one of STOPATMARK, STOPBEFOREMARK and STOPAT"):
        tsql.restore_log("d", "/l/x", stop_at_mark="a", stop_before_mark="b")
    with pytest.raises(TsqlBuildError, match="AFTER only qualifies"):
        tsql.restore_log("d", "/l/x", mark_after=dt.datetime(2026, 1, 1))


def test_mark_names_longer_than_sql_server_allows_are_refused():
    with pytest.raises(TsqlBuildError, match="STOPATMARK mark name is 33 characters long; SQL Server allows at most 32"):
        tsql.restore_log("d", "/l/x", stop_at_mark="M" * 33)


def test_move_of_the_same_logical_file_twice_is_refused():
    with pytest.raises(TsqlBuildError, match="moved twice"):
        tsql.restore_database("d", "/x", moves=[Move("a", "/1"), Move("A", "/2")])


def test_recover_and_inspection_statements():
    assert tsql.recover_database("a]b") == "RESTORE DATABASE [a]]b] WITH RECOVERY"
    assert parse_restore(tsql.restore_headeronly("/x.bak")) == {
        "kind": "HEADERONLY", "name": None, "paths": ["/x.bak"], "options": []}
    assert tsql.restore_filelistonly("/x.bak", file=2) == "RESTORE FILELISTONLY FROM DISK = N'/x.bak' WITH FILE = 2"
    assert "CHECKSUM" not in tsql.restore_verifyonly("/x.bak")  # BizTalk's backups have none: 3187


def test_dbcc_checkdb():
    assert tsql.dbcc_checkdb("drv_Biz]Talk") == "DBCC CHECKDB ([drv_Biz]]Talk]) WITH NO_INFOMSGS, ALL_ERRORMSGS"


# ---------------------------------------------------------------------------------------------- properties
names = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1, max_size=128)
paths = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1, max_size=200)
marks = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1, max_size=32)


@settings(max_examples=200, deadline=None)
@given(name=names, files=st.lists(paths, min_size=1, max_size=4), copy_only=st.booleans(),
       compression=st.sampled_from([None, True, False]))
def test_any_backup_parses_and_names_exactly_what_was_asked(name, files, copy_only, compression):
    parsed = parse_backup(tsql.backup_log(name, files, copy_only=copy_only, compression=compression))
    assert parsed["name"] == name and parsed["paths"] == files


@settings(max_examples=200, deadline=None)
@given(name=names, file=paths, mark=marks, logical=names, physical=paths)
def test_any_restore_parses_and_names_exactly_what_was_asked(name, file, mark, logical, physical):
    log_sql = tsql.restore_log(name, file, recovery=Recovery.RECOVERY, stop_at_mark=mark)
    parsed = parse_restore(log_sql)
    assert (parsed["name"], parsed["paths"]) == (name, [file])
    assert parsed["options"] == [("RECOVERY",), ("STOPATMARK", mark)]
    db_sql = tsql.restore_database(name, file, moves=[Move(logical, physical)])
    assert ("MOVE", logical, physical) in parse_restore(db_sql)["options"]


# ---------------------------------------------------------------------------------------------- render
def test_render_quotes_names_and_values():
    sql = tsql.render("SELECT name FROM {table} WHERE name IN ({names}) AND x = {x}",
                      table=tsql.Name("db]x", "dbo", "t"), names=["a'b", "c"], x=3)
    assert sql == "SELECT name FROM [db]]x].[dbo].[t] WHERE name IN (N'a''b', N'c') AND x = 3"


@pytest.mark.parametrize("template", ["SELECT 'x' FROM {t}", "SELECT [x] FROM {t}", 'SELECT "x" FROM {t}'])
def test_render_refuses_templates_with_quoted_text(template):
    with pytest.raises(TsqlBuildError, match="a template holds no quoted text"):
        tsql.render(template, t=tsql.Name("t"))


def test_render_refuses_missing_or_extra_values_and_empty_lists():
    with pytest.raises(TsqlBuildError, match="do not match arguments"):
        tsql.render("SELECT {a}", b=1)
    with pytest.raises(TsqlBuildError, match="IN \\(\\) is not valid"):
        tsql.render("SELECT 1 WHERE x IN ({a})", a=[])


# ---------------------------------------------------------------------------------------------- one RESTORE formatter
class _File:
    def __init__(self, logical_name: str, physical_name: str, type: str) -> None:
        self.logical_name, self.physical_name, self.type = logical_name, physical_name, type


_FILES = [_File("BizTalkMsgBoxDb", r"D:\Data\BizTalkMsgBoxDb.mdf", "D"),
          _File("BizTalkMsgBoxDb_log", r"L:\Logs\BizTalkMsgBoxDb_log.LDF", "L")]


def test_moved_files_keep_their_names_when_restored_under_their_own_name():
    moves = tsql.move_files(_FILES, data_folder=r"E:\StandbyData", log_folder="/var/opt/mssql/log")
    assert moves == [Move("BizTalkMsgBoxDb", r"E:\StandbyData\BizTalkMsgBoxDb.mdf"),
                     Move("BizTalkMsgBoxDb_log", "/var/opt/mssql/log/BizTalkMsgBoxDb_log.LDF")]


def test_a_folder_not_configured_leaves_those_files_where_the_backup_says():
    assert tsql.move_files(_FILES, data_folder=None, log_folder=r"E:\Logs") == [
        Move("BizTalkMsgBoxDb_log", r"E:\Logs\BizTalkMsgBoxDb_log.LDF")]
    assert tsql.move_files(_FILES, data_folder=None, log_folder=None) == []


def test_moved_files_are_named_after_the_new_name_when_restored_under_another():
    moves = tsql.move_files(_FILES, data_folder="/val/data", log_folder="/val/log", restored_as="drv_BizTalkMsgBoxDb")
    assert moves == [Move("BizTalkMsgBoxDb", "/val/data/drv_BizTalkMsgBoxDb_BizTalkMsgBoxDb.mdf"),
                     Move("BizTalkMsgBoxDb_log", "/val/log/drv_BizTalkMsgBoxDb_BizTalkMsgBoxDb_log.ldf")]


@pytest.mark.parametrize("name", HOSTILE)
def test_restore_statement_of_a_full_with_moves_and_of_a_log_to_its_mark(name):
    moves = tsql.move_files(_FILES, data_folder="/d", log_folder="/l")
    full = parse_restore(tsql.restore_statement(name, ["/land/a.bak", "/land/b.bak"], log=False, file=2,
                                                moves=moves, replace=True))
    assert full == {"kind": "DATABASE", "name": name, "paths": ["/land/a.bak", "/land/b.bak"], "options": [
        ("FILE", "2"), ("MOVE", "BizTalkMsgBoxDb", "/d/BizTalkMsgBoxDb.mdf"),
        ("MOVE", "BizTalkMsgBoxDb_log", "/l/BizTalkMsgBoxDb_log.LDF"), ("REPLACE",), ("NORECOVERY",)]}
    last = parse_restore(tsql.restore_statement(name, "/land/x.trn", log=True, recovery=Recovery.RECOVERY,
                                                stop_at_mark="BTS_2026_11_25_01_00_00_000"))
    assert last == {"kind": "LOG", "name": name, "paths": ["/land/x.trn"],
                    "options": [("RECOVERY",), ("STOPATMARK", "BTS_2026_11_25_01_00_00_000")]}


def test_restore_statement_refuses_options_of_the_other_kind():
    with pytest.raises(TsqlBuildError, match="MOVE and REPLACE"):
        tsql.restore_statement("db", "/x.trn", log=True, replace=True)
    with pytest.raises(TsqlBuildError, match="belongs to the restore of a log backup"):
        tsql.restore_statement("db", "/x.bak", log=False, stop_at_mark="m")


# ---------------------------------------------------------------------------------------------- the named queries
_QUERY_TOKEN = re.compile(r"""\s*(?:
    (?P<ident>\[(?:[^\]]|\]\])*\])
  | (?P<string>N'(?:[^']|'')*')
  | (?P<constant>'[A-Za-z_]*')
  | (?P<number>\d+)
  | (?P<word>@{0,2}[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[=,().*+;>])
)""", re.VERBOSE | re.DOTALL)


def query_tokens(sql: str) -> list[tuple[str, str]]:
    """Every token of a query; quoted names and strings decoded (a value that escaped its quoting fails here)."""
    return tokens(sql, _QUERY_TOKEN)


@pytest.mark.parametrize("name", HOSTILE)
def test_named_queries_take_values_only_through_the_quoting(name):
    assert query_tokens(tsql.database_state(name))[-1] == ("string", name)
    restorehistory = query_tokens(tsql.last_stop_at_mark(name))
    assert ("string", name) in restorehistory and restorehistory.count(("string", name)) == 1
    assert query_tokens(tsql.drop_database(name)) == [("word", "DROP"), ("word", "DATABASE"), ("ident", name)]
    assert ("ident", name) in query_tokens(tsql.orphaned_sql_users(name))
    assert query_tokens(tsql.map_user_to_login("db", name)).count(("ident", name)) == 2
    assert ("ident", name) in query_tokens(tsql.backup_history(name, limit=7))
    for query in (tsql.management_group_rows(name), tsql.spool_readable(name), tsql.catalog_readable(name),
                  tsql.biztalk_database_servers(name)):
        assert ("ident", name) in query_tokens(query)
    catalog = query_tokens(tsql.backup_catalog([name, "/b/c.trn"]))
    assert ("string", name) in catalog and ("string", "/b/c.trn") in catalog
    assert ("string", name) in query_tokens(tsql.register_custom_database("mgmt", name, "SQL01"))
    assert ("string", name) in query_tokens(tsql.move_custom_database("mgmt", name, "SQL01"))
    assert ("string", name) in query_tokens(tsql.sql_agent_job(name))
    assert ("string", name) in query_tokens(tsql.folder_seen_by_server(name))
    assert query_tokens(tsql.database_recovery_states([name, "b"])).count(("string", name)) == 1


def test_the_restorehistory_query_reads_the_newest_restore_of_one_database():
    assert tsql.last_stop_at_mark("BizTalkMgmtDb") == (
        "SELECT TOP (1) stop_at_mark_name FROM msdb.dbo.restorehistory WHERE "
        "destination_database_name = N'BizTalkMgmtDb' ORDER BY restore_history_id DESC")


def test_the_clock_is_read_in_biztalk_s_clock():
    assert tsql.clock_now(local_time=True) == "SELECT SYSDATETIME() AS now"
    assert tsql.clock_now(local_time=False) == "SELECT SYSUTCDATETIME() AS now"


def test_an_empty_list_of_names_is_refused_before_any_sql():
    with pytest.raises(TsqlBuildError, match="empty list"):
        tsql.database_recovery_states([])
    with pytest.raises(TsqlBuildError, match="empty list"):
        tsql.backup_catalog([])


def test_no_product_module_but_tsql_writes_sql_text():
    """Every query the product (include/biztalk_dr, dags, plugins) sends is made in tsql.py: no ``.query``/``.run``
    is given text written in place, and no other module holds a string that reads like a statement."""
    import ast

    from tests.conftest import ROOT, product_files

    statement = re.compile(r"\s*(SELECT\b.*\bFROM\b|INSERT\s+INTO\b|UPDATE\s+\S+\s+SET\b|DELETE\s+FROM\b|"
                           r"DROP\s+DATABASE\b|ALTER\s+(USER|DATABASE)\s|USE\s+\[|EXEC\s+\[|"
                           r"(RESTORE|BACKUP)\s+(DATABASE|LOG)\s+[\[{]|SELECT\s+@@)", re.DOTALL)

    def text_of(node) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
        if isinstance(node, ast.BinOp):
            left, right = text_of(node.left), text_of(node.right)
            return None if left is None and right is None else (left or "") + (right or "")
        return None

    written = []
    for path in product_files(but=("tsql.py",)):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("query", "run") and node.args and text_of(node.args[0]) is not None):
                written.append(f"{where}: .{node.func.attr}() of text written in place")
            text = text_of(node) if isinstance(node, ast.Constant | ast.JoinedStr) else None
            if text and statement.match(text):
                written.append(f"{where}: {text[:50]!r}")
    assert not written, written
