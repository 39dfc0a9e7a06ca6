"""SELECT, INSERT, UPDATE, DELETE, CREATE TABLE and DROP TABLE, really evaluated against SQLite.

The T-SQL text is parsed with sqlglot (dialect ``tsql``); every table reference is resolved the
way SQL Server resolves names (``db.schema.object``, default schema ``dbo``, the session's
database) and mapped to the SQLite table that holds it; T-SQL functions the stand-in answers
itself (GETDATE, DB_NAME, SERVERPROPERTY, @@SERVERNAME, ...) become SQLite functions registered by
the engine. Result columns get SQL Server types from the declared column types (or CAST, or the
function), so the client sees ``int``, ``datetime``, ``numeric(25,0)`` as from SQL Server. Names
that do not resolve fail with 208, unknown columns with 207, syntax with 102/156.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import sqlglot
from sqlglot import exp

from sqlserver_standin.batch import RESERVED, Token
from sqlserver_standin.events import Column, ResultSet, SqlType
from sqlserver_standin.messages import Abort, SqlError, sql_error

__all__ = ["ColumnSpec", "spec_from_declared", "Prepared", "prepare", "TableRef", "QueryResult", "Resolver",
           "run", "convert_value", "FUNCTION_TYPES", "SYSVAR_TYPES", "create_table_ddl", "column_for",
           "infer_spec"]

# T-SQL functions answered by the engine: renamed to ST_<name> before parsing so that sqlglot keeps them
# as they are (it would turn SYSDATETIME into CURRENT_TIMESTAMP and lose the type).
_RENAMED = {"GETDATE", "GETUTCDATE", "SYSDATETIME", "SYSUTCDATETIME", "DB_NAME", "DB_ID", "SUSER_SNAME",
            "SUSER_NAME", "USER_NAME", "SERVERPROPERTY", "OBJECT_ID", "HOST_NAME", "APP_NAME", "NEWID",
            "DATABASEPROPERTYEX", "SCOPE_IDENTITY", "QUOTENAME", "DATEADD", "DATEDIFF", "IS_SRVROLEMEMBER",
            "ORIGINAL_LOGIN", "SYSTEM_USER", "CURRENT_USER", "SESSION_USER", "FILE_NAME"}


@dataclass(frozen=True)
class ColumnSpec:
    type: SqlType
    length: int | None = None
    precision: int = 25
    scale: int = 0


_NV = ColumnSpec(SqlType.NVARCHAR, 128)
FUNCTION_TYPES: dict[str, ColumnSpec] = {
    "ST_GETDATE": ColumnSpec(SqlType.DATETIME), "ST_GETUTCDATE": ColumnSpec(SqlType.DATETIME),
    "ST_SYSDATETIME": ColumnSpec(SqlType.DATETIME2), "ST_SYSUTCDATETIME": ColumnSpec(SqlType.DATETIME2),
    "ST_DB_NAME": _NV, "ST_DB_ID": ColumnSpec(SqlType.SMALLINT), "ST_SUSER_SNAME": _NV, "ST_SUSER_NAME": _NV,
    "ST_USER_NAME": _NV, "ST_SERVERPROPERTY": _NV, "ST_OBJECT_ID": ColumnSpec(SqlType.INT),
    "ST_HOST_NAME": _NV, "ST_APP_NAME": _NV, "ST_NEWID": ColumnSpec(SqlType.UNIQUEIDENTIFIER),
    "ST_DATABASEPROPERTYEX": _NV, "ST_SCOPE_IDENTITY": ColumnSpec(SqlType.NUMERIC, precision=38),
    "ST_QUOTENAME": ColumnSpec(SqlType.NVARCHAR, 258), "ST_DATEADD": ColumnSpec(SqlType.DATETIME),
    "ST_DATEDIFF": ColumnSpec(SqlType.INT), "ST_IS_SRVROLEMEMBER": ColumnSpec(SqlType.INT),
    "ST_ORIGINAL_LOGIN": _NV, "ST_SYSTEM_USER": _NV, "ST_CURRENT_USER": _NV, "ST_SESSION_USER": _NV,
    "ST_FILE_NAME": _NV,
}
SYSVAR_TYPES: dict[str, ColumnSpec] = {
    "@@SERVERNAME": _NV, "@@SERVICENAME": _NV, "@@VERSION": ColumnSpec(SqlType.NVARCHAR, 300),
    "@@SPID": ColumnSpec(SqlType.SMALLINT), "@@TRANCOUNT": ColumnSpec(SqlType.INT),
    "@@ROWCOUNT": ColumnSpec(SqlType.INT), "@@ERROR": ColumnSpec(SqlType.INT),
    "@@IDENTITY": ColumnSpec(SqlType.NUMERIC, precision=38), "@@LANGUAGE": _NV,
    "@@MAX_PRECISION": ColumnSpec(SqlType.TINYINT), "@@TEXTSIZE": ColumnSpec(SqlType.INT),
    "@@DATEFIRST": ColumnSpec(SqlType.TINYINT), "@@LOCK_TIMEOUT": ColumnSpec(SqlType.INT),
    "@@OPTIONS": ColumnSpec(SqlType.INT), "@@MICROSOFTVERSION": ColumnSpec(SqlType.INT),
}

_DECLARED = re.compile(r"^\s*([a-z0-9_]+)\s*(?:\(\s*(max|\d+)\s*(?:,\s*(\d+)\s*)?\))?", re.IGNORECASE)


def spec_from_declared(declared: str) -> ColumnSpec | None:
    """The SQL Server type of a column from its declared type text (as CREATE TABLE wrote it)."""
    m = _DECLARED.match(declared or "")
    if not m:
        return None
    name, size, scale = m.group(1).lower(), m.group(2), m.group(3)
    length = None if size is None or size.lower() == "max" else int(size)
    if name in ("bit",):
        return ColumnSpec(SqlType.BIT)
    if name == "tinyint":
        return ColumnSpec(SqlType.TINYINT)
    if name == "smallint":
        return ColumnSpec(SqlType.SMALLINT)
    if name in ("int", "integer"):
        return ColumnSpec(SqlType.INT)
    if name == "bigint":
        return ColumnSpec(SqlType.BIGINT)
    if name in ("float", "real", "double"):
        return ColumnSpec(SqlType.FLOAT)
    if name in ("numeric", "decimal"):
        return ColumnSpec(SqlType.NUMERIC, precision=length or 18, scale=int(scale or 0))
    if name in ("money",):
        return ColumnSpec(SqlType.NUMERIC, precision=19, scale=4)
    if name in ("nvarchar", "varchar", "nchar", "char", "ntext", "text", "sysname", "xml"):
        if name == "sysname":
            return ColumnSpec(SqlType.NVARCHAR, 128)
        if name in ("ntext", "text", "xml") or (size or "").lower() == "max":
            return ColumnSpec(SqlType.NVARCHAR, None)
        return ColumnSpec(SqlType.NVARCHAR, min(length or 1, 4000))
    if name in ("varbinary", "binary", "image", "timestamp", "rowversion"):
        return ColumnSpec(SqlType.VARBINARY, None if name == "image" or (size or "").lower() == "max" else (length or 8))
    if name in ("datetime", "smalldatetime"):
        return ColumnSpec(SqlType.DATETIME)
    if name in ("datetime2", "date", "time", "datetimeoffset"):
        return ColumnSpec(SqlType.DATETIME2)
    if name == "uniqueidentifier":
        return ColumnSpec(SqlType.UNIQUEIDENTIFIER)
    return None


def column_for(name: str, spec: ColumnSpec) -> Column:
    return Column(name, spec.type, True, spec.length, spec.precision, spec.scale)


@dataclass(frozen=True)
class TableRef:
    """Where a T-SQL table reference lives: a SQLite table of a database, or a SQLite subquery."""

    database: str
    table: str | None = None  # SQLite table name, e.g. 'dbo.adm_BackupHistory'
    subquery: str | None = None  # SQLite SELECT text for system views / table functions
    columns: tuple[tuple[str, str], ...] = ()  # (name, declared type) for typing results


class Resolver:
    """What the engine provides to a query: name resolution, parameters, the connection to use."""

    def resolve(self, catalog: str | None, schema: str | None, name: str, written: str,
                args: Sequence[object] = ()) -> TableRef:
        raise NotImplementedError

    def connection(self, databases: Sequence[str], *, write: str | None) -> tuple[sqlite3.Connection, dict[str, str]]:
        """A connection where every database of the query is reachable; returns it and the schema alias
        per database ('main' for the connection's own database)."""
        raise NotImplementedError

    def release(self, conn: sqlite3.Connection, aliases: dict[str, str]) -> None:
        raise NotImplementedError

    def variable(self, name: str) -> object:
        raise NotImplementedError


@dataclass
class Prepared:
    kind: str  # SELECT | INSERT | UPDATE | DELETE | CREATE_TABLE | DROP_TABLE
    tree: exp.Expression
    text: str


def _rename_functions(text: str, tokens: Sequence[Token]) -> str:
    out, pos = [], tokens[0].start if tokens else 0
    base = tokens[0].start if tokens else 0
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        replacement = None
        if tok.kind == "word" and tok.value in _RENAMED and nxt is not None and nxt.kind == "op" and nxt.value == "(":
            replacement = "ST_" + tok.value
        elif tok.kind == "word" and tok.value in ("SYSTEM_USER", "CURRENT_USER", "SESSION_USER") and not (
                nxt is not None and nxt.kind == "op" and nxt.value == "("):
            replacement = f"ST_{tok.value}()"
        elif tok.kind == "sysvar":
            replacement = f"ST_SYSVAR('{tok.value}')"
        if replacement is not None:
            out.append(text[pos - base:tok.start - base])
            out.append(replacement)
            pos = tok.end
    out.append(text[pos - base:])
    return "".join(out)


def _parse_error(exc: sqlglot.errors.ParseError) -> SqlError:
    errors = exc.errors or [{}]
    near = str(errors[0].get("highlight") or "").strip() or "end of input"
    if near.upper() in RESERVED:
        return sql_error(156, near.upper(), abort=Abort.BATCH)
    return sql_error(102, near, abort=Abort.BATCH)


def prepare(kind: str, text: str, tokens: Sequence[Token]) -> Prepared:
    """Parse one statement (at batch compile time: a syntax error aborts the whole batch)."""
    renamed = _rename_functions(text, tokens)
    try:
        with _quiet_sqlglot():
            tree = sqlglot.parse_one(renamed, read="tsql")
    except sqlglot.errors.ParseError as exc:
        raise _parse_error(exc) from None
    except sqlglot.errors.TokenError:
        raise sql_error(102, text[:40], abort=Abort.BATCH) from None
    if isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "TABLE":
        return Prepared("CREATE_TABLE", tree, text)
    if isinstance(tree, exp.Drop) and str(tree.args.get("kind", "")).upper() == "TABLE":
        return Prepared("DROP_TABLE", tree, text)
    for cls, name in ((exp.Select, "SELECT"), (exp.Union, "SELECT"), (exp.Insert, "INSERT"), (exp.Update, "UPDATE"),
                      (exp.Delete, "DELETE")):
        if isinstance(tree, cls):
            return Prepared(name, tree, text)
    if isinstance(tree, exp.Command) or not isinstance(tree, exp.Query):
        raise sql_error(50000, f"'{kind}' statements of this form are not modelled by the SQL Server stand-in: "
                        f"{text[:80]}", abort=Abort.STATEMENT)
    return Prepared("SELECT", tree, text)


class _quiet_sqlglot:
    """sqlglot logs unsupported-syntax warnings; the engine reports errors itself."""

    def __enter__(self) -> None:
        import logging

        self._logger = logging.getLogger("sqlglot")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        self._logger.setLevel(self._level)


@dataclass
class QueryResult:
    result: ResultSet | None
    rowcount: int
    lastrowid: int | None = None
    assignments: dict[str, object] | None = None  # SELECT @x = ...


def _written_name(table: exp.Table) -> str:
    parts = [p for p in (table.catalog, table.db, table.name) if p is not None]
    if table.args.get("catalog") is not None and not table.db:
        return f"{table.catalog}..{table.name}"
    return ".".join(parts)


def _table_args(table: exp.Table) -> list[object]:
    this = table.this
    if isinstance(this, exp.Anonymous):
        return [a for a in this.expressions]
    return []


def _literal_value(node: exp.Expression, resolver: Resolver) -> object:
    if isinstance(node, exp.National):
        return node.this
    if isinstance(node, exp.Literal):
        return node.this if node.is_string else (int(node.this) if node.this.lstrip("-").isdigit() else float(node.this))
    if isinstance(node, exp.Parameter):
        return resolver.variable("@" + node.name)
    if isinstance(node, exp.Null):
        return None
    raise sql_error(50000, f"a table-valued function argument must be a constant or a variable here: {node.sql('tsql')}")


def _cte_names(tree: exp.Expression) -> set[str]:
    return {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}


def run(prepared: Prepared, resolver: Resolver, params: Mapping[str, object]) -> QueryResult:
    """Evaluate a prepared statement; raises SqlError with SQL Server's numbers."""
    tree = prepared.tree.copy()
    ctes = _cte_names(tree)
    refs: list[tuple[exp.Table, TableRef]] = []
    for table in list(tree.find_all(exp.Table)):
        if isinstance(table.this, exp.Identifier) and not table.db and not table.catalog and table.name.lower() in ctes:
            continue
        if isinstance(table.this, exp.Identifier) and table.name.startswith("#"):
            raise sql_error(50000, "temporary tables are not modelled by the SQL Server stand-in")
        args = [_literal_value(a, resolver) for a in _table_args(table)]
        name = table.this.name if isinstance(table.this, exp.Anonymous) else table.name
        if isinstance(table.this, exp.Anonymous):
            name = str(table.this.this.name if isinstance(table.this.this, exp.Identifier) else table.this.this)
        ref = resolver.resolve(table.catalog or None, table.db or None, name, _written_name(table), args)
        refs.append((table, ref))
    write_target = None
    if prepared.kind in ("INSERT", "UPDATE", "DELETE"):
        target = tree.this if not isinstance(tree.this, exp.Schema) else tree.this.this
        for table, ref in refs:
            if table is target or (isinstance(target, exp.Table) and table.this == target.this and table.db == target.db):
                write_target = ref.database
                if ref.table is None:
                    raise sql_error(50000, f"'{_written_name(table)}' cannot be modified: the stand-in models it as "
                                    "read-only")
                break
    databases = list(dict.fromkeys([r.database for _, r in refs if r.database] + ([write_target] if write_target else [])))
    conn, aliases = resolver.connection(databases, write=write_target)
    try:
        for table, ref in refs:
            alias = table.alias
            schema = aliases.get(ref.database, "main")
            if ref.table is not None:
                new: exp.Expression = exp.Table(this=exp.to_identifier(ref.table, quoted=True),
                                                db=exp.to_identifier(schema) if schema != "main" else None)
                if alias:
                    new.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
            else:
                sub = ref.subquery.replace("{schema}", schema)
                new = exp.Subquery(this=sqlglot.parse_one(sub, read="sqlite"),
                                   alias=exp.TableAlias(this=exp.to_identifier(alias or name_of(table))))
            table.replace(new)
        specs = _result_specs(prepared.tree, refs) if prepared.kind == "SELECT" else []
        assignments = _assignment_targets(tree) if prepared.kind == "SELECT" else None
        _to_sqlite(tree)
        sql = tree.sql(dialect="sqlite")
        bound = {k.lstrip("@"): _bind(v) for k, v in params.items()}
        try:
            cursor = conn.execute(sql, bound)
            rows = cursor.fetchall() if cursor.description else []
        except sqlite3.IntegrityError as exc:
            raise _integrity_error(exc, prepared) from None
        except sqlite3.OperationalError as exc:
            raise _operational_error(exc) from None
        if prepared.kind != "SELECT":
            return QueryResult(None, cursor.rowcount, cursor.lastrowid)
        names = [d[0] for d in cursor.description]
        if assignments is not None:
            values = rows[-1] if rows else None
            return QueryResult(None, len(rows), assignments={
                var: (values[i] if values is not None else _UNCHANGED) for i, var in enumerate(assignments)})
        if len(specs) != len(names):
            specs = [None] * len(names)
        columns, converted = _typed(names, specs, rows)
        return QueryResult(ResultSet(columns, converted), len(rows))
    finally:
        resolver.release(conn, aliases)


_UNCHANGED = object()


def name_of(table: exp.Table) -> str:
    if isinstance(table.this, exp.Anonymous):
        return str(table.this.this.name if isinstance(table.this.this, exp.Identifier) else table.this.this)
    return table.name


def _bind(value: object) -> object:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="milliseconds")
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, uuid.UUID):
        return str(value).upper()
    return value


def _assignment_targets(tree: exp.Expression) -> list[str] | None:
    """``SELECT @a = x, @b = y FROM ...`` assigns instead of returning rows."""
    if not isinstance(tree, exp.Select):
        return None
    targets = []
    for i, expr in enumerate(tree.expressions):
        if isinstance(expr, exp.EQ) and isinstance(expr.this, exp.Parameter):
            targets.append("@" + expr.this.name)
            tree.expressions[i].replace(exp.alias_(expr.expression, f"c{i}"))
        elif targets:
            raise sql_error(141, abort=Abort.BATCH)
    return targets or None


def _to_sqlite(tree: exp.Expression) -> None:
    for node in list(tree.find_all(exp.National)):
        node.replace(exp.Literal.string(node.this))
    for node in list(tree.find_all(exp.Parameter)):
        node.replace(exp.Placeholder(this=node.name))
    for node in list(tree.find_all(exp.Cast)):  # sqlglot writes REAL, which loses LSN digits past 2**53
        if node.to.this == exp.DataType.Type.DECIMAL:
            node.set("to", exp.DataType(this=exp.DataType.Type.USERDEFINED, kind="NUMERIC"))
    for node in list(tree.find_all(exp.Anonymous)):
        if str(node.this).upper() in ("ST_DATEADD", "ST_DATEDIFF") and node.expressions:
            first = node.expressions[0]
            if isinstance(first, exp.Column):
                first.replace(exp.Literal.string(first.name.lower()))
    for node in list(tree.find_all(exp.Select)):  # SELECT TOP (n) PERCENT is not modelled; TOP n WITH TIES neither
        limit = node.args.get("limit")
        if limit is not None and isinstance(limit, exp.Limit) and isinstance(limit.expression, exp.Paren):
            limit.set("expression", limit.expression.this)


def _integrity_error(exc: sqlite3.IntegrityError, prepared: Prepared) -> SqlError:
    text = str(exc)
    m = re.match(r"NOT NULL constraint failed: (.+)\.(\w+)$", text)
    if m:
        return sql_error(515, m.group(2), m.group(1), prepared.kind.upper())
    m = re.match(r"UNIQUE constraint failed: (.+?)\.", text)
    if m:
        return sql_error(2627, "PRIMARY KEY", "PK_" + m.group(1).split(".")[-1], m.group(1), "(...)")
    return sql_error(50000, f"constraint violation: {text}")


def _operational_error(exc: sqlite3.OperationalError) -> SqlError:
    text = str(exc)
    m = re.match(r"no such column: (?:\w+\.)?(.+)$", text)
    if m:
        return sql_error(207, m.group(1).strip('"'), abort=Abort.BATCH)
    m = re.match(r"ambiguous column name: (.+)$", text)
    if m:
        return sql_error(209, m.group(1), abort=Abort.BATCH)
    m = re.match(r"table (.+) has (\d+) columns but (\d+) values were supplied", text)
    if m:
        return sql_error(213, abort=Abort.STATEMENT)
    m = re.match(r"no such function: ST_(\w+)", text)
    if m:
        return sql_error(195, m.group(1), "built-in function name", abort=Abort.BATCH)
    m = re.match(r"no such function: (\w+)", text)
    if m:
        return sql_error(195, m.group(1), "built-in function name", abort=Abort.BATCH)
    if "syntax error" in text:
        near = re.search(r'near "(.*?)"', text)
        return sql_error(102, near.group(1) if near else text, abort=Abort.BATCH)
    if "attempt to write a readonly database" in text or "readonly" in text:
        return sql_error(3906, "", abort=Abort.STATEMENT)
    if "database is locked" in text:
        return sql_error(1222)
    return sql_error(50000, f"the SQL Server stand-in cannot evaluate this statement: {text}")


# ---------------------------------------------------------------------------------------------- typing
def infer_spec(node: exp.Expression, columns_of: Callable[[exp.Column], ColumnSpec | None]) -> ColumnSpec | None:
    if isinstance(node, exp.Alias):
        return infer_spec(node.this, columns_of)
    if isinstance(node, exp.Paren):
        return infer_spec(node.this, columns_of)
    if isinstance(node, exp.Column):
        return columns_of(node)
    if isinstance(node, (exp.Cast, exp.TryCast)):
        return spec_from_declared(node.to.sql("tsql"))
    if isinstance(node, exp.National):
        return ColumnSpec(SqlType.NVARCHAR, max(len(node.this), 1))
    if isinstance(node, exp.Literal):
        if node.is_string:
            return ColumnSpec(SqlType.NVARCHAR, max(len(node.this), 1))
        return ColumnSpec(SqlType.INT) if node.this.lstrip("-").isdigit() and abs(int(node.this)) < 2**31 else None
    if isinstance(node, exp.Anonymous):
        name = str(node.this).upper()
        if name == "ST_SYSVAR" and node.expressions:
            return SYSVAR_TYPES.get(str(node.expressions[0].this).upper())
        if name == "COUNT_BIG":
            return ColumnSpec(SqlType.BIGINT)
        return FUNCTION_TYPES.get(name)
    if isinstance(node, exp.Count):
        return ColumnSpec(SqlType.INT)
    if isinstance(node, (exp.Max, exp.Min, exp.Sum, exp.Coalesce)):
        return infer_spec(node.this, columns_of)
    if isinstance(node, exp.Case):
        ifs = node.args.get("ifs") or []
        return infer_spec(ifs[0].args["true"], columns_of) if ifs else None
    if isinstance(node, (exp.Length,)):
        return ColumnSpec(SqlType.INT)
    return None


def _result_specs(tree: exp.Expression, refs: list[tuple[exp.Table, TableRef]]) -> list[ColumnSpec | None]:
    if not isinstance(tree, exp.Select):
        return []
    by_alias: dict[str, TableRef] = {}
    ordered: list[TableRef] = []
    for table, ref in refs:
        if table.find_ancestor(exp.Select) is not tree and table.find_ancestor(exp.Subquery) is not None:
            continue
        by_alias[(table.alias_or_name or name_of(table)).lower()] = ref
        ordered.append(ref)

    def columns_of(col: exp.Column) -> ColumnSpec | None:
        candidates = [by_alias[col.table.lower()]] if col.table and col.table.lower() in by_alias else ordered
        for ref in candidates:
            for name, declared in ref.columns:
                if name.lower() == col.name.lower():
                    return spec_from_declared(declared)
        return None

    specs: list[ColumnSpec | None] = []
    for expr in tree.expressions:
        if isinstance(expr, exp.Star) or (isinstance(expr, exp.Column) and isinstance(expr.this, exp.Star)):
            chosen = ordered if not (isinstance(expr, exp.Column) and expr.table) else [
                by_alias.get(expr.table.lower())]
            for ref in chosen:
                if ref is None:
                    continue
                specs.extend(spec_from_declared(d) for _n, d in ref.columns)
        else:
            specs.append(infer_spec(expr, columns_of))
    return specs


def _value_spec(values: list[object]) -> ColumnSpec:
    sample = next((v for v in values if v is not None), None)
    if sample is None:
        return ColumnSpec(SqlType.INT)
    if isinstance(sample, bool):
        return ColumnSpec(SqlType.BIT)
    if isinstance(sample, int):
        big = any(isinstance(v, int) and not -2**31 <= v < 2**31 for v in values)
        return ColumnSpec(SqlType.BIGINT if big else SqlType.INT)
    if isinstance(sample, float):
        return ColumnSpec(SqlType.FLOAT)
    if isinstance(sample, bytes):
        return ColumnSpec(SqlType.VARBINARY, None)
    longest = max((len(str(v)) for v in values if v is not None), default=1)
    return ColumnSpec(SqlType.NVARCHAR, longest if longest <= 4000 else None)


def convert_value(value: object, spec: ColumnSpec) -> object:
    """A SQLite value as the SQL Server type of its column."""
    if value is None:
        return None
    t = spec.type
    try:
        if t in (SqlType.DATETIME, SqlType.DATETIME2):
            if isinstance(value, dt.datetime):
                return value
            text = str(value).replace("T", " ")
            if len(text) == 10:
                text += " 00:00:00"
            return dt.datetime.fromisoformat(text)
        if t == SqlType.BIT:
            return bool(int(value))
        if t in (SqlType.TINYINT, SqlType.SMALLINT, SqlType.INT, SqlType.BIGINT):
            return int(value)
        if t == SqlType.NUMERIC:
            return Decimal(str(value)).quantize(Decimal(1).scaleb(-spec.scale)) if spec.scale else Decimal(int(value))
        if t == SqlType.FLOAT:
            return float(value)
        if t == SqlType.NVARCHAR:
            return value if isinstance(value, str) else str(value)
        if t == SqlType.UNIQUEIDENTIFIER:
            return uuid.UUID(str(value))
        if t == SqlType.VARBINARY:
            return value if isinstance(value, bytes) else str(value).encode()
    except (ValueError, ArithmeticError) as exc:
        raise sql_error(245, "varchar", str(value)[:30], t.value) from exc
    return value


def _typed(names: list[str], specs: list[ColumnSpec | None], rows: list[tuple]) -> tuple[list[Column], list[tuple]]:
    final: list[ColumnSpec] = []
    for i, spec in enumerate(specs):
        final.append(spec if spec is not None else _value_spec([r[i] for r in rows]))
    columns = [column_for(n if not n.startswith("ST_") else "", s) for n, s in zip(names, final, strict=True)]
    converted = [tuple(convert_value(v, s) for v, s in zip(row, final, strict=True)) for row in rows]
    return columns, converted


# ---------------------------------------------------------------------------------------------- DDL
_DEFAULT_FUNCS = {
    "ST_GETDATE": "(strftime('%Y-%m-%d %H:%M:%f', 'now', 'localtime'))",
    "ST_SYSDATETIME": "(strftime('%Y-%m-%d %H:%M:%f', 'now', 'localtime'))",
    "ST_GETUTCDATE": "(strftime('%Y-%m-%d %H:%M:%f', 'now'))",
    "ST_SYSUTCDATETIME": "(strftime('%Y-%m-%d %H:%M:%f', 'now'))",
    "ST_NEWID": "(upper(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || "
                "'-' || substr('89AB', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || "
                "hex(randomblob(6))))",
}


def _default_sql(node: exp.Expression) -> str:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Anonymous) and str(node.this).upper() in _DEFAULT_FUNCS:
        return _DEFAULT_FUNCS[str(node.this).upper()]
    if isinstance(node, exp.National):
        return "'" + node.this.replace("'", "''") + "'"
    if isinstance(node, exp.Literal):
        return node.sql("sqlite")
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        return "-" + node.this.sql("sqlite")
    if isinstance(node, exp.Null):
        return "NULL"
    raise sql_error(50000, f"DEFAULT {node.sql('tsql')} is not modelled by the SQL Server stand-in")


def create_table_ddl(prepared: Prepared, sqlite_name: str) -> tuple[str, list[tuple[str, str]]]:
    """SQLite DDL for a T-SQL CREATE TABLE; returns it and the (column, declared type) list."""
    schema = prepared.tree.this
    if not isinstance(schema, exp.Schema):
        raise sql_error(50000, "CREATE TABLE ... AS SELECT is not modelled by the SQL Server stand-in")
    table_pk: list[str] = []
    for constraint in schema.expressions:
        if isinstance(constraint, exp.Constraint):
            for pk in constraint.find_all(exp.PrimaryKey):
                table_pk = [c.name for c in pk.find_all(exp.Column)] or [i.name for i in pk.find_all(exp.Identifier)]
        elif isinstance(constraint, exp.PrimaryKey):
            table_pk = [c.name for c in constraint.find_all(exp.Column)]
    parts, columns = [], []
    for col in schema.expressions:
        if not isinstance(col, exp.ColumnDef):
            continue
        declared = col.args["kind"].sql("tsql").lower() if col.args.get("kind") else "sql_variant"
        constraints = [c.args["kind"] for c in col.args.get("constraints") or []]
        identity = any(isinstance(c, exp.GeneratedAsIdentityColumnConstraint) for c in constraints)
        col_pk = any(isinstance(c, exp.PrimaryKeyColumnConstraint) for c in constraints)
        not_null = any(isinstance(c, exp.NotNullColumnConstraint) and not c.args.get("allow_null") for c in constraints)
        quoted = '"' + col.name.replace('"', '""') + '"'
        if identity:
            if table_pk and table_pk != [col.name]:
                raise sql_error(50000, "an IDENTITY column that is not the primary key is not modelled by the stand-in")
            parts.append(f"{quoted} INTEGER PRIMARY KEY AUTOINCREMENT")
            columns.append((col.name, declared))
            table_pk = []
            continue
        sql = f"{quoted} {declared}"
        if spec_from_declared(declared) is not None and spec_from_declared(declared).type == SqlType.NVARCHAR:
            sql += " COLLATE NOCASE"
        if not_null:
            sql += " NOT NULL"
        if col_pk:
            sql += " PRIMARY KEY"
        for c in constraints:
            if isinstance(c, exp.DefaultColumnConstraint):
                sql += f" DEFAULT {_default_sql(c.this)}"
            elif isinstance(c, exp.UniqueColumnConstraint):
                sql += " UNIQUE"
        parts.append(sql)
        columns.append((col.name, declared))
    if table_pk:
        parts.append("PRIMARY KEY (" + ", ".join('"' + c.replace('"', '""') + '"' for c in table_pk) + ")")
    if not columns:
        raise sql_error(102, ")", abort=Abort.BATCH)
    return f'CREATE TABLE "{sqlite_name}" (' + ", ".join(parts) + ")", columns
