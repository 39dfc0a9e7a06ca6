"""A T-SQL batch split into statements, the way SQL Server's parser delimits them.

Semicolons are optional in T-SQL, so statements are delimited by the keyword that starts the next
one (outside parentheses), with the exceptions the grammar implies (``INSERT ... SELECT``,
``UNION SELECT``, ``UPDATE ... SET``, ``ALTER DATABASE ... SET``, ``INSERT ... EXEC``). ``IF``
and ``BEGIN ... END`` become nodes. ``GO`` is a client-side separator, not T-SQL: SQL Server
rejects it like any unknown word, and so does this parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlserver_standin.messages import Abort, sql_error

__all__ = ["Token", "tokenize", "Simple", "If", "Statement", "parse_batch", "RESERVED", "unquote", "quote_name"]

# SQL Server reserved keywords (Transact-SQL "Reserved Keywords"); an unexpected one is error 156.
RESERVED = frozenset("""
ADD ALL ALTER AND ANY AS ASC AUTHORIZATION BACKUP BEGIN BETWEEN BREAK BROWSE BULK BY CASCADE CASE CHECK
CHECKPOINT CLOSE CLUSTERED COALESCE COLLATE COLUMN COMMIT COMPUTE CONSTRAINT CONTAINS CONTAINSTABLE CONTINUE
CONVERT CREATE CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER CURSOR DATABASE DBCC
DEALLOCATE DECLARE DEFAULT DELETE DENY DESC DISK DISTINCT DISTRIBUTED DOUBLE DROP DUMP ELSE END ERRLVL ESCAPE
EXCEPT EXEC EXECUTE EXISTS EXIT EXTERNAL FETCH FILE FILLFACTOR FOR FOREIGN FREETEXT FREETEXTTABLE FROM FULL
FUNCTION GOTO GRANT GROUP HAVING HOLDLOCK IDENTITY IDENTITY_INSERT IDENTITYCOL IF IN INDEX INNER INSERT
INTERSECT INTO IS JOIN KEY KILL LEFT LIKE LINENO LOAD MERGE NATIONAL NOCHECK NONCLUSTERED NOT NULL NULLIF OF
OFF OFFSETS ON OPEN OPENDATASOURCE OPENQUERY OPENROWSET OPENXML OPTION OR ORDER OUTER OVER PERCENT PIVOT PLAN
PRECISION PRIMARY PRINT PROC PROCEDURE PUBLIC RAISERROR READ READTEXT RECONFIGURE REFERENCES REPLICATION
RESTORE RESTRICT RETURN REVERT REVOKE RIGHT ROLLBACK ROWCOUNT ROWGUIDCOL RULE SAVE SCHEMA SECURITYAUDIT SELECT
SEMANTICKEYPHRASETABLE SESSION_USER SET SETUSER SHUTDOWN SOME STATISTICS SYSTEM_USER TABLE TABLESAMPLE
TEXTSIZE THEN TO TOP TRAN TRANSACTION TRIGGER TRUNCATE TRY_CONVERT TSEQUAL UNION UNIQUE UNPIVOT UPDATE
UPDATETEXT USE USER VALUES VARYING VIEW WAITFOR WHEN WHERE WHILE WITH WRITETEXT
""".split())

_ALWAYS_STARTS = frozenset("""
BACKUP RESTORE DBCC USE DECLARE PRINT COMMIT ROLLBACK SAVE CREATE ALTER DROP TRUNCATE IF WHILE RETURN
RAISERROR THROW WAITFOR BEGIN GRANT REVOKE DENY MERGE KILL CHECKPOINT
""".split())
_SOMETIMES_STARTS = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "SET", "EXEC", "EXECUTE"})


@dataclass(frozen=True)
class Token:
    kind: str  # word | qname | string | number | var | sysvar | op
    text: str  # as written
    value: str  # word: upper-cased; qname/string: unquoted; others: text
    start: int
    end: int
    line: int

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.value in words

    @property
    def name(self) -> str:
        """The identifier this token names (bracketed or not), as SQL Server resolves it."""
        return self.value if self.kind == "qname" else self.text


def quote_name(name: str) -> str:
    """``[name]`` with ``]`` doubled: the identifier as T-SQL text (the inverse of ``unquote``)."""
    return "[" + name.replace("]", "]]") + "]"


def unquote(text: str) -> str:
    if text.startswith("[") and text.endswith("]"):
        return text[1:-1].replace("]]", "]")
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1].replace('""', '"')
    return text


def _syntax_error(text: str) -> Exception:
    if text.upper() in RESERVED:
        return sql_error(156, text.upper() if text.isalpha() else text, abort=Abort.BATCH)
    return sql_error(102, text, abort=Abort.BATCH)


def _quoted_end(sql: str, start: int, body: int, quote: str) -> int:
    """The index just past the quote that closes the quoted text opened at ``start`` (its text begins at
    ``body``); a doubled quote stands for itself. Unclosed: 105, as SQL Server says."""
    j = body
    while True:
        k = sql.find(quote, j)
        if k < 0:
            raise sql_error(105, sql[start:start + 40], abort=Abort.BATCH)
        if sql.startswith(quote * 2, k):
            j = k + 2
            continue
        return k + 1


def tokenize(sql: str) -> list[Token]:
    tokens: list[Token] = []
    i, n, line = 0, len(sql), 1
    while i < n:
        ch = sql[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch.isspace():
            i += 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
        elif sql.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:  # T-SQL block comments nest
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            if depth:
                raise sql_error(113, abort=Abort.BATCH)
            line += sql.count("\n", i, j)
            i = j
        elif ch == "'" or (ch in "Nn" and sql.startswith("'", i + 1)):
            body = i + (2 if ch != "'" else 1)
            j = _quoted_end(sql, i, body, "'")
            tokens.append(Token("string", sql[i:j], sql[body:j - 1].replace("''", "'"), i, j, line))
            line += sql.count("\n", i, j)
            i = j
        elif ch in '["':
            j = _quoted_end(sql, i, i + 1, "]" if ch == "[" else '"')
            tokens.append(Token("qname", sql[i:j], unquote(sql[i:j]), i, j, line))
            i = j
        elif ch.isdigit() or (ch == "." and i + 1 < n and sql[i + 1].isdigit()):
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] == "."):
                j += 1
            tokens.append(Token("number", sql[i:j], sql[i:j], i, j, line))
            i = j
        elif ch == "@":
            j = i + 1
            kind = "var"
            if sql.startswith("@", j):
                kind, j = "sysvar", j + 1
            while j < n and (sql[j].isalnum() or sql[j] in "_@#$"):
                j += 1
            tokens.append(Token(kind, sql[i:j], sql[i:j].upper() if kind == "sysvar" else sql[i:j], i, j, line))
            i = j
        elif ch.isalpha() or ch in "_#":
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] in "_@#$"):
                j += 1
            tokens.append(Token("word", sql[i:j], sql[i:j].upper(), i, j, line))
            i = j
        else:
            two = sql[i:i + 2]
            if two in ("<>", "!=", ">=", "<=", "!<", "!>", "+=", "-=", "*=", "/=", "::"):
                tokens.append(Token("op", two, two, i, i + 2, line))
                i += 2
            else:
                tokens.append(Token("op", ch, ch, i, i + 1, line))
                i += 1
    return tokens


@dataclass
class Simple:
    """One statement: its first keyword (``kind``), its text and tokens."""

    kind: str
    text: str
    tokens: list[Token]
    line: int


@dataclass
class If:
    condition: str
    condition_tokens: list[Token]
    then: list[Statement] = field(default_factory=list)
    otherwise: list[Statement] = field(default_factory=list)
    line: int = 1


Statement = Simple | If


class _Parser:
    def __init__(self, sql: str, tokens: list[Token]) -> None:
        self.sql = sql
        self.tokens = tokens
        self.pos = 0

    def peek(self, offset: int = 0) -> Token | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def statements(self, *, in_block: bool) -> list[Statement]:
        out: list[Statement] = []
        while True:
            tok = self.peek()
            if tok is None:
                if in_block:
                    raise sql_error(102, self.tokens[-1].text, abort=Abort.BATCH)
                return out
            if tok.kind == "op" and tok.value == ";":
                self.pos += 1
                continue
            if tok.is_word("END"):
                if in_block:
                    self.pos += 1
                    return out
                raise _syntax_error("END")
            if tok.is_word("ELSE"):
                raise _syntax_error("ELSE")
            out.extend(self.statement(first_in_batch=not out and self.pos == 0))

    def statement(self, *, first_in_batch: bool = False) -> list[Statement]:
        tok = self.peek()
        assert tok is not None
        if tok.is_word("IF"):
            return [self.if_statement()]
        if tok.is_word("BEGIN"):
            nxt = self.peek(1)
            if nxt is None or not nxt.is_word("TRAN", "TRANSACTION", "DISTRIBUTED"):
                if nxt is not None and nxt.is_word("TRY", "CATCH", "DIALOG", "CONVERSATION"):
                    raise sql_error(50000, f"BEGIN {nxt.value} is not modelled by the SQL Server stand-in",
                                    abort=Abort.BATCH)
                self.pos += 1
                return self.statements(in_block=True)
        if tok.kind in ("word", "qname") and not (tok.kind == "word" and tok.value in RESERVED) \
                and tok.value not in ("WITH",):
            if not first_in_batch:
                raise _syntax_error(tok.text)
            return [self.simple(kind="EXEC_IMPLICIT")]
        if tok.kind != "word":
            raise _syntax_error(tok.text)
        return [self.simple(kind=tok.value)]

    def if_statement(self) -> If:
        start_tok = self.tokens[self.pos]
        self.pos += 1
        cond_start = self.pos
        depth = 0
        cases = 0
        while True:
            tok = self.peek()
            if tok is None:
                raise sql_error(102, self.tokens[-1].text, abort=Abort.BATCH)
            if tok.is_word("CASE"):
                cases += 1
            elif cases and tok.is_word("END"):
                cases -= 1
            elif cases:
                pass
            elif tok.kind == "op" and tok.value == "(":
                depth += 1
            elif tok.kind == "op" and tok.value == ")":
                depth -= 1
            elif depth == 0 and tok.kind == "word" and (tok.value in _ALWAYS_STARTS or tok.value in _SOMETIMES_STARTS):
                break
            self.pos += 1
        cond_tokens = self.tokens[cond_start:self.pos]
        if not cond_tokens:
            raise _syntax_error(self.tokens[self.pos].text)
        condition = self.sql[cond_tokens[0].start:cond_tokens[-1].end]
        node = If(condition, cond_tokens, line=start_tok.line)
        node.then = self.statement()
        while self.peek() is not None and self.peek().kind == "op" and self.peek().value == ";":
            self.pos += 1
        if self.peek() is not None and self.peek().is_word("ELSE"):
            self.pos += 1
            node.otherwise = self.statement()
        return node

    def simple(self, kind: str) -> Simple:
        start = self.pos
        depth = 0
        cases = 0  # open CASE expressions: their ELSE and END belong to the statement
        seen: set[str] = set()
        self.pos += 1
        while True:
            tok = self.peek()
            if tok is None:
                break
            if tok.is_word("CASE"):
                cases += 1
            elif cases and tok.is_word("END"):
                cases -= 1
                self.pos += 1
                continue
            elif cases and tok.kind == "word" and tok.value in ("WHEN", "THEN", "ELSE"):
                self.pos += 1
                continue
            if tok.kind == "op":
                if tok.value == "(":
                    depth += 1
                elif tok.value == ")":
                    depth -= 1
                    if depth < 0:
                        raise _syntax_error(")")
                elif tok.value == ";" and depth == 0:
                    break
            elif tok.kind == "word" and depth == 0:
                if tok.value in ("END", "ELSE"):
                    break
                prev = self.tokens[self.pos - 1]
                if self._starts_new(kind, tok.value, prev, seen):
                    break
                seen.add(tok.value)
            self.pos += 1
        toks = self.tokens[start:self.pos]
        return Simple(kind, self.sql[toks[0].start:toks[-1].end], toks, toks[0].line)

    @staticmethod
    def _starts_new(kind: str, word: str, prev: Token, seen: set[str]) -> bool:
        prev_word = prev.value if prev.kind == "word" else ""
        if word in _ALWAYS_STARTS:
            if word == "BEGIN" and kind == "EXEC_IMPLICIT":
                return True
            return not (kind == "CREATE" and prev_word == "AS")
        if word not in _SOMETIMES_STARTS:
            return False
        if prev_word in ("UNION", "ALL", "EXCEPT", "INTERSECT", "AS", "FOR", "ON", "OF", "INSTEAD", "AFTER") \
                or (prev.kind == "op" and prev.value == ","):
            return False
        if kind == "WITH" and not seen & {"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"}:
            return False
        if word == "SELECT":
            return not (kind == "INSERT" and not seen & {"VALUES", "SELECT", "EXEC", "EXECUTE", "DEFAULT"})
        if word == "SET":
            return not (kind in ("UPDATE", "ALTER") and "SET" not in seen)
        if word in ("EXEC", "EXECUTE"):
            return not (kind == "INSERT" and not seen & {"VALUES", "SELECT", "EXEC", "EXECUTE"})
        return True


def parse_batch(sql: str) -> list[Statement]:
    """The statements of a batch; raises SqlError (102/156, batch-aborting) on a syntax error."""
    tokens = tokenize(sql)
    if not tokens:
        return []
    return _Parser(sql, tokens).statements(in_block=False)
