"""The sp_executesql / sp_prepare family, which the protocol layer answers itself.

These procedures are how drivers send parameterised statements; they are not BizTalk's or the
product's procedures, so the engine only sees what they amount to: a SQL text and its parameters
(``engine.execute``). Every other RPC goes to ``engine.call_procedure`` unchanged. Prepared
handles live per connection, as in SQL Server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..events import Message
from .datatypes import TypeId
from .requests import RpcCall, RpcParam

__all__ = [
    "LOCAL_PROCEDURES",
    "DeclaredParam",
    "OutputSlot",
    "Plan",
    "PreparedStatements",
    "local_procedure_name",
    "parse_declarations",
    "plan_call",
]

LOCAL_PROCEDURES = frozenset({"sp_executesql", "sp_prepare", "sp_prepexec", "sp_prepexecrpc", "sp_execute",
                              "sp_unprepare"})
_SYSTEM_QUALIFIERS = {"", "master", "sys", "dbo"}
_TEXT_TYPES = {TypeId.NVARCHAR, TypeId.NCHAR, TypeId.NTEXT}


@dataclass(frozen=True)
class DeclaredParam:
    name: str  # as declared, with the @
    type_text: str
    output: bool


@dataclass(frozen=True)
class OutputSlot:
    """An OUTPUT parameter to send back as RETURNVALUE after the call."""

    ordinal: int  # position in the RPC call
    name: str  # as the client sent it
    declared_name: str  # the name the engine's OutputParameter uses ("" for a handle)
    wire: bytes  # the value as sent, echoed when the engine reports no new value
    handle: int | None = None  # sp_prepare/sp_prepexec: the new handle is the value


@dataclass(frozen=True)
class Plan:
    """What one RPC amounts to: SQL to run, a procedure to call, an error to report, or nothing."""

    sql: str | None = None
    params: dict[str, object] = field(default_factory=dict)
    procedure: str | None = None
    args: tuple[tuple[str | None, object], ...] = ()
    outputs: tuple[OutputSlot, ...] = ()
    error: Message | None = None


@dataclass(frozen=True)
class _Prepared:
    sql: str  # the statement, or the procedure name for sp_prepexecrpc
    declarations: tuple[DeclaredParam, ...]
    declaration_text: str
    is_procedure: bool = False  # sp_prepexecrpc: sp_execute calls the procedure again


class PreparedStatements:
    """sp_prepare handles of one connection; SQL Server numbers them from 1."""

    def __init__(self) -> None:
        self._statements: dict[int, _Prepared] = {}
        self._next = 1

    def add(self, prepared: _Prepared) -> int:
        handle, self._next = self._next, self._next + 1
        self._statements[handle] = prepared
        return handle

    def get(self, handle: int) -> _Prepared | None:
        return self._statements.get(handle)

    def remove(self, handle: int) -> bool:
        return self._statements.pop(handle, None) is not None

    def __len__(self) -> int:
        return len(self._statements)


def local_procedure_name(procedure: str) -> str | None:
    """``sp_executesql`` for "sp_executesql", "sys.sp_executesql", "[master]..[sp_executesql]"; else None."""
    parts = [p.strip().strip("[]").lower() for p in procedure.split(".")]
    name = parts[-1]
    if name in LOCAL_PROCEDURES and all(p in _SYSTEM_QUALIFIERS for p in parts[:-1]):
        return name
    return None


def parse_declarations(text: str) -> tuple[DeclaredParam, ...]:
    """``@P1 int,@P2 decimal(25,0) OUTPUT`` -> the declared parameters, in order."""
    items, depth, current, quote = [], 0, [], False
    for ch in text:
        if ch == "'":
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    declared = []
    for item in items:
        words = item.split()
        if not words:
            continue
        output = len(words) > 2 and words[-1].upper() in ("OUTPUT", "OUT")
        type_words = words[1:-1] if output else words[1:]
        declared.append(DeclaredParam(words[0], " ".join(type_words).removeprefix("AS ").strip(), output))
    return tuple(declared)


def _error(number: int, text: str, state: int = 1) -> Plan:
    return Plan(error=Message(number=number, severity=16, state=state, text=text))


def _text_argument(call: RpcCall, index: int, proc: str, param: str) -> str | Plan | None:
    if index >= len(call.params):
        return None
    value, info = call.params[index].value, call.params[index].type_info
    if value is None:
        return None
    if info.type_id not in _TEXT_TYPES:  # SQL Server does not convert varchar to nvarchar here
        return _error(214, f"Procedure expects parameter '{param}' of type 'ntext/nchar/nvarchar'.", 2)
    return str(value)


def _bind(proc: str, declared: Sequence[DeclaredParam], declaration_text: str, sql: str,
          values: Sequence[tuple[int, RpcParam]]) -> tuple[dict[str, object], list[OutputSlot]] | Plan:
    by_name = {d.name.lower(): d for d in declared}
    bound: dict[str, object] = {}
    outputs: list[OutputSlot] = []
    for position, (ordinal, param) in enumerate(values):
        if param.name:
            target = by_name.get(param.name.lower())
            if target is None:
                return _error(8145, f"{param.name} is not a parameter for procedure {proc}.")
        elif position < len(declared):
            target = declared[position]
        else:
            return _error(8144, f"Procedure or function {proc} has too many arguments specified.")
        if not param.default:
            bound[target.name] = param.value
        if param.output:
            outputs.append(OutputSlot(ordinal, param.name, target.name, param.wire))
    for d in declared:
        if d.name not in bound:
            return _error(8178, f"The parameterized query '({declaration_text}){sql}' expects the "
                                f"parameter '{d.name}', which was not supplied.")
    return bound, outputs


def plan_call(call: RpcCall, prepared: PreparedStatements) -> Plan:
    """Turn one RPC into a Plan; sp_prepare/sp_unprepare update ``prepared`` as SQL Server would."""
    local = local_procedure_name(call.procedure)
    if local is None:
        return _procedure_call(call.procedure, call.params, ())
    params = call.params
    if local == "sp_executesql":
        sql = _text_argument(call, 0, local, "@statement")
        if isinstance(sql, Plan):
            return sql
        if sql is None:
            return _error(201, "Procedure or function 'sp_executesql' expects parameter '@statement', "
                               "which was not supplied.", 4)
        declaration = _text_argument(call, 1, local, "@params")
        if isinstance(declaration, Plan):
            return declaration
        return _execution(local, sql, declaration or "", list(enumerate(params))[2:], ())
    if local == "sp_prepexecrpc":  # ODBC Driver 18's {CALL proc (?)}: a prepared procedure call
        procedure = _text_argument(call, 1, local, "@rpccall")
        if isinstance(procedure, Plan):
            return procedure
        if procedure is None:
            return _error(201, "Procedure or function 'sp_prepexecrpc' expects parameter '@rpccall', "
                               "which was not supplied.", 4)
        handle = prepared.add(_Prepared(procedure, (), "", is_procedure=True))
        first = params[0]
        return _procedure_call(procedure, params[2:], (OutputSlot(0, first.name, "", b"", handle=handle),),
                               first_ordinal=2)
    if local in ("sp_prepare", "sp_prepexec"):
        declaration = _text_argument(call, 1, local, "@params")
        sql = _text_argument(call, 2, local, "@stmt")
        for value in (declaration, sql):
            if isinstance(value, Plan):
                return value
        if sql is None:
            return _error(201, f"Procedure or function '{local}' expects parameter '@stmt', "
                               "which was not supplied.", 4)
        declaration = declaration or ""
        handle = prepared.add(_Prepared(sql, parse_declarations(declaration), declaration))
        first = params[0] if params else None
        handle_slot = OutputSlot(0, first.name if first else "", "", b"", handle=handle)
        if local == "sp_prepare":
            return Plan(outputs=(handle_slot,))
        return _execution(local, sql, declaration, list(enumerate(params))[3:], (handle_slot,))
    handle_value = params[0].value if params else None
    if not isinstance(handle_value, int) or isinstance(handle_value, bool):
        return _error(201, f"Procedure or function '{local}' expects parameter '@handle', "
                           "which was not supplied.", 4)
    statement = prepared.get(handle_value)
    if local == "sp_unprepare":
        if not prepared.remove(handle_value):
            return _error(8179, f"Could not find prepared statement with handle {handle_value}.")
        return Plan()
    if statement is None:
        return _error(8179, f"Could not find prepared statement with handle {handle_value}.")
    if statement.is_procedure:
        return _procedure_call(statement.sql, params[1:], (), first_ordinal=1)
    return _execution(local, statement.sql, statement.declaration_text, list(enumerate(params))[1:], (),
                      declared=statement.declarations)


def _execution(proc: str, sql: str, declaration: str, values: list[tuple[int, RpcParam]],
               extra_outputs: tuple[OutputSlot, ...],
               declared: tuple[DeclaredParam, ...] | None = None) -> Plan:
    bound = _bind(proc, declared if declared is not None else parse_declarations(declaration),
                  declaration, sql, values)
    if isinstance(bound, Plan):
        return bound
    params, outputs = bound
    return Plan(sql=sql, params=params, outputs=extra_outputs + tuple(outputs))


def _procedure_call(procedure: str, params: Sequence[RpcParam], extra_outputs: tuple[OutputSlot, ...], *,
                    first_ordinal: int = 0) -> Plan:
    outputs = tuple(OutputSlot(first_ordinal + i, p.name, p.name, p.wire) for i, p in enumerate(params) if p.output)
    return Plan(procedure=procedure, args=tuple((p.name or None, p.value) for p in params),
                outputs=extra_outputs + outputs)
