"""Issue 15's fault matrix: the result of every test declared as a row (``fault_matrix.fault``), and the table
printed at the end of the run — a failed row says FAILED, it is never missing. Under pytest-xdist (make test) the
tests run in worker processes: each report carries its rows to the process that prints the table (the
hooks that gather and print them are in tests/conftest.py, the one conftest that process loads)."""

from __future__ import annotations

import dataclasses

import pytest

from tests.dags import fault_matrix


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    names = getattr(getattr(item, "function", None), "fault_rows", ())
    if not names:
        return
    if not (report.when != "call" and report.passed):
        _record_result(names, report, call)
    # a new list: the item's own is shared by its three phases' reports
    report.user_properties = [*report.user_properties,
                              ("fault_rows", [dataclasses.asdict(fault_matrix.ROWS[n]) for n in names])]


def _record_result(names, report, call) -> None:
    for name in names:
        if report.skipped:
            fault_matrix.result(name, f"skipped: {call.excinfo.value if call.excinfo else ''}")
        elif report.failed:
            why = str(call.excinfo.value).strip().splitlines() if call.excinfo else []
            fault_matrix.result(name, f"FAILED ({report.when}): {why[0] if why else '?'}")
        else:
            fault_matrix.result(name, "passed")
