"""Issue 15's fault matrix: the result of every test declared as a row (``fault_matrix.fault``), and the table
printed at the end of the run — a failed row says FAILED, it is never missing."""

from __future__ import annotations

import pytest

from tests.dags import fault_matrix


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    names = getattr(getattr(item, "function", None), "fault_rows", ())
    if report.when != "call" and report.passed:
        return
    for name in names:
        if report.skipped:
            fault_matrix.result(name, f"skipped: {call.excinfo.value if call.excinfo else ''}")
        elif report.failed:
            why = str(call.excinfo.value).strip().splitlines() if call.excinfo else []
            fault_matrix.result(name, f"FAILED ({report.when}): {why[0] if why else '?'}")
        else:
            fault_matrix.result(name, "passed")


def pytest_terminal_summary(terminalreporter):
    if fault_matrix.ROWS:
        terminalreporter.section("fault matrix (issue 15)")
        for line in fault_matrix.table():
            terminalreporter.write_line(line)
