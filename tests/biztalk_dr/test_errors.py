"""SQL Server's errors are mapped to classes once (errors.py); the classes carry what callers decide on, and the
product decides on classes, never on an error number or a message text."""

from __future__ import annotations

import ast

import pytest

from biztalk_dr.domain import errors
from biztalk_dr.domain.errors import (
    BackupDeviceError,
    BackupMediaDamaged,
    BackupRestoreAbnormal,
    BizTalkDrError,
    DatabaseInUse,
    DriverError,
    LogAlreadyApplied,
    LoginRefused,
    LogTooRecent,
    SqlConnectionError,
    SqlMessage,
    SqlServerError,
    sql_error_for,
)
from biztalk_dr.edge import alerts
from tests.conftest import ROOT, product_files


@pytest.mark.parametrize(("numbers", "cls"), [
    ((4305, 3013), LogTooRecent), ((3013, 4326), LogAlreadyApplied), ((3101,), DatabaseInUse),
    ((3183, 3013), BackupMediaDamaged), ((3013,), BackupRestoreAbnormal), ((18456,), LoginRefused),
    ((20017,), DriverError), ((0,), DriverError), ((50000,), SqlServerError),
])
def test_the_primary_error_picks_the_class(numbers, cls):
    exc = sql_error_for([SqlMessage(n, f"text {n}") for n in numbers], conn_id="c")
    assert type(exc) is cls
    assert exc.number == next((n for n in numbers if n != 3013), numbers[0])


def test_no_message_at_all_is_the_driver_s_own_error():
    assert type(sql_error_for([])) is DriverError


def test_classes_carry_retry_and_advice():
    assert DatabaseInUse.restore_retry_pauses == (10.0, 30.0, 60.0)
    assert BackupDeviceError.restore_retry_pauses == (5.0, 15.0)
    assert BackupMediaDamaged.restore_retry_pauses == ()  # damaged media is quarantined, never retried
    assert LogTooRecent.restore_advice_key == "restore_gap"
    assert DriverError.restore_advice_key == "standby_unreachable"
    assert SqlServerError.restore_advice_key == "restore_other"
    assert issubclass(LoginRefused, SqlConnectionError)


def test_alert_advice_comes_from_the_class():
    refused = LoginRefused(18456, "Login failed for user 'dr'", conn_id="biztalk_primary")
    unreachable = SqlConnectionError(0, "cannot be reached", conn_id="biztalk_primary")
    assert alerts.advice_for(refused) == alerts.advice("sql_login_refused")
    assert "biztalk_primary" in alerts.advice_for(unreachable)
    assert alerts.advice_for(LogTooRecent(4305, "too recent")) == alerts.advice("restore_gap")
    assert alerts.advice_for(SqlServerError(50000, "user error")) == ""


def test_every_error_class_of_the_product_lives_in_errors_py():
    outside = []
    for path in product_files(but=("errors.py",)):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                if bases & ({"Exception", "ValueError"} | {n for n in errors.__all__ if n.endswith(("Error",))}
                            | {c.__name__ for c in vars(errors).values()
                               if isinstance(c, type) and issubclass(c, BizTalkDrError)}):
                    outside.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    # the backup-file decoders' own format errors stay private to backup_files/ (reader.py turns them into
    # BackupFileError before any caller sees them)
    outside = [o for o in outside if not o.startswith("include/biztalk_dr/backup_files/")]
    assert not outside, outside


def test_no_decision_on_an_error_number_or_a_message_text():
    """Outside errors.py and the boundary (sqlserver.py), nothing compares ``.number``, a class's name or looks into
    an error's text to decide: callers catch classes."""
    found = []
    for path in product_files(but=("errors.py", "sqlserver.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                if any(isinstance(s, ast.Attribute) and s.attr == "number" or isinstance(s, ast.Name)
                       and s.id == "number" for s in sides):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} compares .number")
                if any(isinstance(s, ast.Attribute) and s.attr == "__name__" for s in sides):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} compares a class name")
                if any(isinstance(op, ast.In | ast.NotIn) for op in node.ops) and any(
                        isinstance(s, ast.Call) and getattr(s.func, "id", "") == "str"
                        and s.args and getattr(s.args[0], "id", "") in ("exc", "e", "err", "error")
                        for s in node.comparators):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} looks into an error's text")
    assert not found, found


def test_a_connection_that_is_not_defined_is_a_setup_error_nothing_tried(monkeypatch):
    from biztalk_dr.domain.errors import ConnectionNotConfigured, SetupError
    from biztalk_dr.ops.sqlserver import SqlServer

    monkeypatch.delenv("AIRFLOW_CONN_BIZTALK_NOWHERE", raising=False)
    with pytest.raises(ConnectionNotConfigured, match="'biztalk_nowhere' is not defined") as caught:
        SqlServer("biztalk_nowhere").query("SELECT 1")
    assert isinstance(caught.value, SetupError) and caught.value.number == 0
