"""The fault matrix of issue 15: each end-to-end fault test is declared with ``@fault("...")`` and fills its row
(how the fault was detected, the advice key the alert showed, how it ended, whether the next runs converged);
``tests/dags/conftest.py`` records every declared test's result — passed, FAILED (with the first line of why)
or skipped — and prints every row as a table at the end of the run, a failed row included."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

ROWS: dict[str, FaultRow] = {}  # by fault, in the order the tests ran


@dataclass(frozen=True)
class FaultRow:
    fault: str
    result: str = "not run"
    detected: str = ""
    advice: str = ""  # the advice table's key(s) the alert showed
    outcome: str = ""
    converged: str = ""


def fault(*names: str) -> Callable:
    """Declares a test as the matrix row(s) ``names`` (one test may prove two faults in one sequence)."""
    def mark(fn: Callable) -> Callable:
        fn.fault_rows = names
        for name in names:
            ROWS.setdefault(name, FaultRow(name))
        return fn

    return mark


def record(fault: str, *, detected: str, advice: str, outcome: str, converged: str) -> None:
    """The row's details, once the test has proved them (its last line)."""
    ROWS[fault] = replace(ROWS.get(fault, FaultRow(fault)), detected=detected, advice=advice, outcome=outcome,
                          converged=converged)


def result(fault: str, outcome: str) -> None:
    """The test's result (from the conftest's report hook); a later phase's failure wins over a pass."""
    row = ROWS.get(fault, FaultRow(fault))
    if row.result.startswith(("FAILED", "skipped")) and outcome == "passed":
        return
    ROWS[fault] = replace(row, result=outcome)


def advice_line(body: str) -> str:
    """The "What to do" line of an alert mail, as the operator reads it."""
    text = html.unescape(body)
    assert "What to do: " in text, text
    return text.split("What to do: ", 1)[1].split("\n", 1)[0].strip()


def advice_keys(line: str) -> list[str]:
    """The advice table's entries an advice line is made of, in order (an action may be followed by another);
    AssertionError when any part of it is not from the table."""
    from biztalk_dr.domain.advice import ADVICE

    patterns = {key: re.compile(re.sub(r"\\\{\w+\\\}", "(.+?)", re.escape(entry.action)) + r"(?: |$)")
                for key, entry in ADVICE.items()}
    keys, rest = [], line.strip()
    while rest:
        found = [(key, m) for key, p in patterns.items() if (m := p.match(rest))]
        assert found, f"advice not from the advice table: {rest!r}"
        key, match = max(found, key=lambda f: f[1].end())
        keys.append(key)
        rest = rest[match.end():].strip()
    return keys


def table() -> list[str]:
    columns = ("fault", "result", "detected by", "advice shown (key)", "outcome", "next runs")
    rows = [(r.fault, r.result[:70], r.detected, r.advice, r.outcome, r.converged) for r in ROWS.values()]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return [line(columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)]
