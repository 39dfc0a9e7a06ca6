"""The fault matrix of issue 15: each end-to-end fault test records one row (what was injected, how it was
detected, the advice the alert gave, how it ended, whether the next runs converged); the root conftest prints
the rows as a table at the end of the run."""

from __future__ import annotations

from dataclasses import dataclass

ROWS: list[FaultRow] = []


@dataclass(frozen=True)
class FaultRow:
    fault: str
    detected: str
    advice: str
    outcome: str
    converged: str


def record(fault: str, *, detected: str, advice: str, outcome: str, converged: str) -> None:
    ROWS.append(FaultRow(fault, detected, advice, outcome, converged))


def table() -> list[str]:
    columns = ("fault", "detected by", "advice shown (start)", "outcome", "next runs")
    rows = [(r.fault, r.detected, r.advice[:60], r.outcome, r.converged) for r in ROWS]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return [line(columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)]
