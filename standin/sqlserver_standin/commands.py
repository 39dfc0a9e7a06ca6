"""A strict parser for the T-SQL statements sqlglot does not model: BACKUP, RESTORE, DBCC CHECKDB,
EXEC, SET, USE, DECLARE, BEGIN/COMMIT/ROLLBACK TRANSACTION, CREATE/ALTER/DROP DATABASE, PRINT,
RAISERROR. Grammar as in the Transact-SQL reference pages of the same names; anything outside it
is a syntax error (102/156) or, when valid T-SQL the stand-in does not model, a clear error saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlserver_standin.batch import RESERVED, Token
from sqlserver_standin.messages import Abort, SqlError, sql_error

__all__ = ["Value", "Backup", "Restore", "Dbcc", "Exec", "ExecDynamic", "SetOption", "SetVariable", "Use", "Declare",
           "BeginTran", "CommitTran", "RollbackTran", "CreateDatabase", "AlterDatabase", "DropDatabase", "Print",
           "Raiserror", "parse_command", "not_modelled"]


@dataclass(frozen=True)
class Value:
    """A literal, a variable (``@x``) or an expression text (evaluated by the engine)."""

    literal: object = None
    variable: str | None = None
    expression: str | None = None
    is_default: bool = False


@dataclass
class Backup:
    kind: str  # DATABASE | LOG
    database: Value
    disks: list[Value]
    options: dict[str, object] = field(default_factory=dict)  # upper-case option -> Value | True


@dataclass
class Restore:
    kind: str  # DATABASE | LOG | HEADERONLY | FILELISTONLY | VERIFYONLY | LABELONLY
    database: Value | None
    disks: list[Value]
    options: dict[str, object] = field(default_factory=dict)
    moves: list[tuple[Value, Value]] = field(default_factory=list)


@dataclass
class Dbcc:
    command: str
    database: Value | None
    options: set[str]


@dataclass
class Exec:
    procedure: list[str]  # name parts as written (unquoted)
    args: list[tuple[str | None, Value, bool]]  # (parameter name, value, OUTPUT)
    return_variable: str | None = None
    written: str = ""


@dataclass
class ExecDynamic:
    parts: list[Value]


@dataclass
class SetOption:
    options: list[str]
    value: str


@dataclass
class SetVariable:
    variable: str
    operator: str
    expression: str


@dataclass
class Use:
    database: str


@dataclass
class Declare:
    variables: list[tuple[str, str, str | None]]  # (name, type text, initial expression text)


@dataclass
class BeginTran:
    name: Value | None
    mark: bool
    description: Value | None


@dataclass
class CommitTran:
    name: str | None


@dataclass
class RollbackTran:
    name: str | None


@dataclass
class CreateDatabase:
    name: str


@dataclass
class AlterDatabase:
    name: str
    setting: str  # RECOVERY FULL | RECOVERY SIMPLE | RECOVERY BULK_LOGGED | OFFLINE | ONLINE | SINGLE_USER | MULTI_USER
    current: bool = False


@dataclass
class DropDatabase:
    names: list[str]
    if_exists: bool


@dataclass
class Print:
    expression: str


@dataclass
class Raiserror:
    message: Value
    severity: Value
    state: Value
    args: list[Value]


def not_modelled(what: str) -> SqlError:
    return sql_error(50000, f"{what} is valid T-SQL that the SQL Server stand-in does not model")


class _Stream:
    def __init__(self, tokens: list[Token], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.base = tokens[0].start if tokens else 0
        self.i = 0

    def peek(self, k: int = 0) -> Token | None:
        return self.tokens[self.i + k] if self.i + k < len(self.tokens) else None

    def at_end(self) -> bool:
        return self.i >= len(self.tokens)

    def next(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise sql_error(102, self.tokens[-1].text if self.tokens else "", abort=Abort.BATCH)
        self.i += 1
        return tok

    def fail(self, tok: Token | None = None) -> SqlError:
        tok = tok or self.peek() or (self.tokens[-1] if self.tokens else None)
        text = tok.text if tok else ""
        if tok is not None and tok.kind == "word" and tok.value in RESERVED:
            return sql_error(156, tok.value, abort=Abort.BATCH)
        return sql_error(102, text, abort=Abort.BATCH)

    def accept(self, *words: str) -> str | None:
        tok = self.peek()
        if tok is not None and tok.kind == "word" and tok.value in words:
            self.i += 1
            return tok.value
        return None

    def accept_op(self, op: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.value == op:
            self.i += 1
            return True
        return False

    def expect(self, *words: str) -> str:
        word = self.accept(*words)
        if word is None:
            raise self.fail()
        return word

    def expect_op(self, op: str) -> None:
        if not self.accept_op(op):
            raise self.fail()

    def name(self) -> str:
        tok = self.next()
        if tok.kind == "qname" or (tok.kind == "word" and tok.value not in RESERVED):
            return tok.name
        raise self.fail(tok)

    def dotted_name(self) -> list[str]:
        parts = [self.name()]
        while self.accept_op("."):
            if self.peek() is not None and self.peek().kind == "op" and self.peek().value == ".":
                parts.append("")
                continue
            parts.append(self.name())
        return parts

    def value(self) -> Value:
        tok = self.next()
        if tok.kind == "string":
            return Value(literal=tok.value)
        if tok.kind == "number":
            return Value(literal=_number(tok.text))
        if tok.kind == "op" and tok.value in "-+" and self.peek() is not None and self.peek().kind == "number":
            num = _number(self.next().text)
            return Value(literal=-num if tok.value == "-" else num)
        if tok.kind == "var":
            return Value(variable=tok.text)
        if tok.is_word("NULL"):
            return Value(literal=None)
        if tok.is_word("DEFAULT"):
            return Value(is_default=True)
        if tok.kind == "qname" or (tok.kind == "word" and tok.value not in RESERVED):
            return Value(literal=tok.name)  # EXEC proc word: an unquoted string argument
        raise self.fail(tok)

    def rest_text(self) -> str:
        if self.at_end():
            raise self.fail()
        start = self.tokens[self.i].start
        end = self.tokens[-1].end
        self.i = len(self.tokens)
        return self.text[start - self.base:end - self.base]

    def done(self) -> None:
        if not self.at_end():
            raise self.fail()


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _disks(s: _Stream) -> list[Value]:
    disks = []
    while True:
        device = s.expect("DISK", "URL", "TAPE")
        if device != "DISK":
            raise not_modelled(f"a backup device of type {device}")
        s.expect_op("=")
        disks.append(s.value())
        if not s.accept_op(","):
            return disks


_BACKUP_FLAGS = {"COPY_ONLY", "COMPRESSION", "NO_COMPRESSION", "CHECKSUM", "NO_CHECKSUM", "INIT", "NOINIT", "FORMAT",
                 "NOFORMAT", "SKIP", "NOSKIP", "DIFFERENTIAL", "NORECOVERY", "NO_TRUNCATE", "CONTINUE_AFTER_ERROR",
                 "STOP_ON_ERROR", "NOUNLOAD", "UNLOAD", "REWIND", "NOREWIND"}
_BACKUP_VALUES = {"NAME", "DESCRIPTION", "MEDIANAME", "MEDIADESCRIPTION", "BUFFERCOUNT", "MAXTRANSFERSIZE", "BLOCKSIZE",
                  "RETAINDAYS", "EXPIREDATE"}
_RESTORE_FLAGS = {"REPLACE", "RECOVERY", "NORECOVERY", "CHECKSUM", "NO_CHECKSUM", "CONTINUE_AFTER_ERROR",
                  "STOP_ON_ERROR", "KEEP_REPLICATION", "RESTRICTED_USER", "NOUNLOAD", "UNLOAD", "REWIND", "NOREWIND",
                  "KEEP_CDC", "ENABLE_BROKER", "NEW_BROKER", "ERROR_BROKER_CONVERSATIONS"}
_RESTORE_VALUES = {"FILE", "STANDBY", "STOPAT", "BUFFERCOUNT", "MAXTRANSFERSIZE", "BLOCKSIZE", "MEDIANAME"}


def _with_options(s: _Stream, flags: set[str], valued: set[str], restore: Restore | None = None) -> dict[str, object]:
    options: dict[str, object] = {}
    if not s.accept("WITH"):
        s.done()
        return options
    while True:
        tok = s.next()
        word = tok.value if tok.kind == "word" else None
        if word is None:
            raise s.fail(tok)
        if word == "STATS":
            options["STATS"] = s.value() if s.accept_op("=") else Value(literal=10)
        elif word in flags:
            options[word] = True
        elif word in valued:
            s.expect_op("=")
            options[word] = s.value()
        elif restore is not None and word == "MOVE":
            logical = s.value()
            s.expect("TO")
            restore.moves.append((logical, s.value()))
        elif restore is not None and word in ("STOPATMARK", "STOPBEFOREMARK"):
            s.expect_op("=")
            options[word] = s.value()
            if s.accept("AFTER"):
                options["AFTER"] = s.value()
        elif word in ("PASSWORD", "MEDIAPASSWORD", "ENCRYPTION", "CREDENTIAL", "FILE_SNAPSHOT", "PARTIAL",
                      "MIRROR", "COMPRESSION_ALGORITHM"):
            raise not_modelled(f"the {word} option")
        else:
            raise s.fail(tok)
        if not s.accept_op(","):
            break
    s.done()
    return options


def _backup(s: _Stream) -> Backup:
    s.expect("BACKUP")
    kind = s.expect("DATABASE", "LOG")
    tok = s.peek()
    database = Value(variable=s.next().text) if tok is not None and tok.kind == "var" else Value(literal=s.name())
    s.expect("TO")
    disks = _disks(s)
    if s.accept("MIRROR"):
        raise not_modelled("MIRROR TO")
    return Backup(kind, database, disks, _with_options(s, _BACKUP_FLAGS, _BACKUP_VALUES))


def _restore(s: _Stream) -> Restore:
    s.expect("RESTORE")
    kind = s.expect("DATABASE", "LOG", "HEADERONLY", "FILELISTONLY", "VERIFYONLY", "LABELONLY", "REWINDONLY")
    if kind == "REWINDONLY":
        raise not_modelled("RESTORE REWINDONLY")
    database = None
    if kind in ("DATABASE", "LOG"):
        tok = s.peek()
        database = Value(variable=s.next().text) if tok is not None and tok.kind == "var" else Value(literal=s.name())
        if s.accept("FILE", "FILEGROUP", "PAGE"):
            raise not_modelled("a file, filegroup or page restore")
    disks: list[Value] = []
    if s.accept("FROM"):
        if s.accept("DATABASE_SNAPSHOT"):
            raise not_modelled("RESTORE ... FROM DATABASE_SNAPSHOT")
        disks = _disks(s)
    elif kind != "DATABASE":
        raise s.fail()
    restore = Restore(kind, database, disks)
    restore.options = _with_options(s, _RESTORE_FLAGS, _RESTORE_VALUES, restore)
    return restore


def _dbcc(s: _Stream) -> Dbcc:
    s.expect("DBCC")
    tok = s.next()
    command = tok.value if tok.kind == "word" else ""
    if command != "CHECKDB":
        raise sql_error(2526)
    database = None
    options: set[str] = set()
    if s.accept_op("("):
        tok = s.peek()
        if tok is not None and tok.kind == "number":
            database = Value(literal=int(s.next().text))
        else:
            database = s.value()
        while s.accept_op(","):
            options.add(s.expect("NOINDEX", "REPAIR_ALLOW_DATA_LOSS", "REPAIR_FAST", "REPAIR_REBUILD"))
        s.expect_op(")")
    if s.accept("WITH"):
        while True:
            options.add(s.expect("NO_INFOMSGS", "ALL_ERRORMSGS", "PHYSICAL_ONLY", "TABLOCK", "DATA_PURITY",
                                 "EXTENDED_LOGICAL_CHECKS", "ESTIMATEONLY"))
            if not s.accept_op(","):
                break
    s.done()
    return Dbcc(command, database, options)


def _exec(s: _Stream, implicit: bool) -> Exec | ExecDynamic:
    if not implicit:
        s.expect("EXEC", "EXECUTE")
    if s.accept_op("("):
        parts = [s.value()]
        while s.accept_op("+"):
            parts.append(s.value())
        s.expect_op(")")
        if s.accept("AS", "AT"):
            raise not_modelled("EXEC (...) AS/AT")
        s.done()
        return ExecDynamic(parts)
    return_variable = None
    tok = s.peek()
    if tok is not None and tok.kind == "var" and s.peek(1) is not None and s.peek(1).value == "=":
        return_variable = s.next().text
        s.next()
    start_tok = s.peek()
    if start_tok is not None and start_tok.kind == "var":
        raise not_modelled("EXEC @procedure_name_variable")
    procedure = s.dotted_name()
    written = s.text[start_tok.start - s.base:s.tokens[s.i - 1].end - s.base] if start_tok else ""
    args: list[tuple[str | None, Value, bool]] = []
    if not s.at_end():
        while True:
            name = None
            tok = s.peek()
            if tok is not None and tok.kind == "var" and s.peek(1) is not None and s.peek(1).kind == "op" \
                    and s.peek(1).value == "=":
                name = s.next().text
                s.next()
            value = s.value()
            output = bool(s.accept("OUTPUT", "OUT"))
            args.append((name, value, output))
            if not s.accept_op(","):
                break
        if s.accept("WITH"):
            raise not_modelled("EXEC ... WITH RECOMPILE/RESULT SETS")
    s.done()
    return Exec(procedure, args, return_variable, written)


def _set(s: _Stream) -> SetOption | SetVariable:
    s.expect("SET")
    tok = s.peek()
    if tok is not None and tok.kind == "var":
        variable = s.next().text
        op = s.next()
        if op.kind != "op" or op.value not in ("=", "+=", "-=", "*=", "/="):
            raise s.fail(op)
        return SetVariable(variable, op.value, s.rest_text())
    options = [s.next().value]
    if options[0] == "TRANSACTION":
        s.expect("ISOLATION")
        s.expect("LEVEL")
        return SetOption(["TRANSACTION ISOLATION LEVEL"], " ".join(t.value for t in s.tokens[s.i:]))
    while s.accept_op(","):
        options.append(s.next().value)
    rest = s.tokens[s.i:]
    if not rest:
        raise s.fail()
    s.i = len(s.tokens)
    return SetOption(options, " ".join(t.value if t.kind == "word" else t.text for t in rest))


def _begin(s: _Stream) -> BeginTran:
    s.expect("BEGIN")
    s.accept("DISTRIBUTED")
    s.expect("TRAN", "TRANSACTION")
    name = None
    mark = False
    description = None
    tok = s.peek()
    if tok is not None and (tok.kind in ("var", "qname") or (tok.kind == "word" and tok.value not in RESERVED)):
        name = Value(variable=tok.text) if tok.kind == "var" else Value(literal=tok.name)
        s.next()
        if s.accept("WITH"):
            s.expect("MARK")
            mark = True
            if not s.at_end():
                description = s.value()
    s.done()
    return BeginTran(name, mark, description)


def _end_tran(s: _Stream, word: str) -> str | None:
    s.expect(word)
    s.accept("TRAN", "TRANSACTION", "WORK")
    name = None
    if not s.at_end():
        tok = s.next()
        name = tok.text if tok.kind == "var" else tok.name
    s.done()
    return name


def _declare(s: _Stream) -> Declare:
    s.expect("DECLARE")
    variables = []
    while True:
        tok = s.next()
        if tok.kind != "var":
            raise s.fail(tok)
        s.accept("AS")
        type_start = s.peek()
        if type_start is None:
            raise s.fail()
        if type_start.is_word("TABLE", "CURSOR"):
            raise not_modelled(f"DECLARE ... {type_start.value}")
        s.next()
        type_end = type_start
        if s.accept_op("("):
            depth = 1
            while depth:
                t = s.next()
                depth += 1 if t.value == "(" else -1 if t.value == ")" else 0
                type_end = t
        type_text = s.text[type_start.start - s.base:type_end.end - s.base]
        initial = None
        if s.accept_op("="):
            depth, start = 0, s.i
            while not s.at_end():
                t = s.peek()
                if t.kind == "op" and t.value == "(":
                    depth += 1
                elif t.kind == "op" and t.value == ")":
                    depth -= 1
                elif t.kind == "op" and t.value == "," and depth == 0:
                    break
                s.i += 1
            if s.i == start:
                raise s.fail()
            initial = s.text[s.tokens[start].start - s.base:s.tokens[s.i - 1].end - s.base]
        variables.append((tok.text, type_text, initial))
        if not s.accept_op(","):
            break
    s.done()
    return Declare(variables)


def _database_statement(s: _Stream, verb: str):  # noqa: ANN202 - one of three statement classes
    s.expect(verb)
    s.expect("DATABASE")
    if verb == "DROP":
        if_exists = False
        if s.accept("IF"):
            s.expect("EXISTS")
            if_exists = True
        names = [s.name()]
        while s.accept_op(","):
            names.append(s.name())
        s.done()
        return DropDatabase(names, if_exists)
    current = bool(s.accept("CURRENT"))
    name = "" if current else s.name()
    if verb == "CREATE":
        if not s.at_end():
            raise not_modelled("CREATE DATABASE with ON/LOG ON/COLLATE/FOR ATTACH clauses")
        return CreateDatabase(name)
    if s.accept("MODIFY", "ADD", "REMOVE", "COLLATE"):
        raise not_modelled("ALTER DATABASE other than SET")
    s.expect("SET")
    option = s.next().value
    if option == "RECOVERY":
        setting = "RECOVERY " + s.expect("FULL", "SIMPLE", "BULK_LOGGED")
    elif option in ("OFFLINE", "ONLINE", "SINGLE_USER", "MULTI_USER", "RESTRICTED_USER"):
        setting = option
        if s.accept("WITH"):
            if s.accept("ROLLBACK"):
                if not s.accept("IMMEDIATE"):
                    s.expect("AFTER")
                    s.next()
                    s.accept("SECONDS")
            else:
                s.expect("NO_WAIT")
    else:
        raise not_modelled(f"ALTER DATABASE ... SET {option}")
    s.done()
    return AlterDatabase(name, setting, current)


def _principal_statement(s: _Stream, verb: str):  # noqa: ANN202 - one of principals' statement classes
    """CREATE LOGIN name {FROM WINDOWS | WITH PASSWORD = '...' [, CHECK_POLICY = ON|OFF]},
    CREATE USER name [{FOR | FROM} LOGIN login | WITHOUT LOGIN], ALTER USER name WITH LOGIN = login."""
    from sqlserver_standin import principals

    s.expect(verb)
    what = s.expect("LOGIN", "USER")
    name = s.name()
    if verb == "CREATE" and what == "LOGIN":
        if s.accept("FROM"):
            s.expect("WINDOWS")
            s.done()
            return principals.CreateLogin(name, windows=True)
        s.expect("WITH")
        s.expect("PASSWORD")
        s.expect_op("=")
        s.value()
        while s.accept_op(","):
            option = s.next().value
            if option not in ("CHECK_POLICY", "CHECK_EXPIRATION"):
                raise not_modelled(f"CREATE LOGIN ... {option}")
            s.expect_op("=")
            s.expect("ON", "OFF")
        s.done()
        return principals.CreateLogin(name, windows=False)
    if verb == "CREATE":
        login = None
        if s.accept("FOR", "FROM"):
            s.expect("LOGIN")
            login = s.name()
        elif s.accept("WITHOUT"):
            s.expect("LOGIN")
        else:
            login = name  # CREATE USER name: the login of the same name
        s.done()
        return principals.CreateUser(name, login)
    s.expect("WITH")
    if not s.accept("LOGIN"):
        raise not_modelled("ALTER USER other than WITH LOGIN")
    s.expect_op("=")
    login = s.name()
    s.done()
    return principals.AlterUser(name, login)


def _raiserror(s: _Stream) -> Raiserror:
    s.expect("RAISERROR")
    s.expect_op("(")
    message = s.value()
    s.expect_op(",")
    severity = s.value()
    s.expect_op(",")
    state = s.value()
    args = []
    while s.accept_op(","):
        args.append(s.value())
    s.expect_op(")")
    if s.accept("WITH"):
        while True:
            s.expect("NOWAIT", "LOG", "SETERROR")
            if not s.accept_op(","):
                break
    s.done()
    return Raiserror(message, severity, state, args)


def parse_command(kind: str, tokens: list[Token], text: str):  # noqa: ANN201 - one of the statement classes
    """Parse one statement whose first keyword is ``kind`` (EXEC_IMPLICIT: a bare procedure call)."""
    s = _Stream(tokens, text)
    if kind == "BACKUP":
        return _backup(s)
    if kind == "RESTORE":
        return _restore(s)
    if kind == "DBCC":
        return _dbcc(s)
    if kind in ("EXEC", "EXECUTE", "EXEC_IMPLICIT"):
        return _exec(s, implicit=kind == "EXEC_IMPLICIT")
    if kind == "SET":
        return _set(s)
    if kind == "USE":
        s.expect("USE")
        name = s.name()
        s.done()
        return Use(name)
    if kind == "DECLARE":
        return _declare(s)
    if kind == "BEGIN":
        return _begin(s)
    if kind == "COMMIT":
        return CommitTran(_end_tran(s, "COMMIT"))
    if kind == "ROLLBACK":
        return RollbackTran(_end_tran(s, "ROLLBACK"))
    if kind in ("CREATE", "ALTER", "DROP") and len(tokens) > 1 and tokens[1].is_word("DATABASE"):
        return _database_statement(s, kind)
    if kind in ("CREATE", "ALTER") and len(tokens) > 1 and (tokens[1].is_word("LOGIN") or tokens[1].is_word("USER")):
        return _principal_statement(s, kind)
    if kind == "PRINT":
        s.expect("PRINT")
        return Print(s.rest_text())
    if kind == "RAISERROR":
        return _raiserror(s)
    raise not_modelled(f"the {kind} statement")
