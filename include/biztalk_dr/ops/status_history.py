"""The status history: one line per measured status (``dr_log_shipping`` every run, ``dr_health_check`` every
hour), kept at the standby site beside the status file (``.biztalk-dr/status-history.jsonl``), so the status
page can draw the data-loss window over the last days from what the runs recorded.

Lines are appended under an exclusive lock of the file; once it holds more than ``KEEP_DAYS`` days, the older
lines are dropped (the file rewritten atomically, under the same lock).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from biztalk_dr.ops.atomic_files import READABLE, write_text_atomically

__all__ = ["Point", "append", "read", "HISTORY_FILE", "KEEP_DAYS"]

HISTORY_FILE = "status-history.jsonl"
KEEP_DAYS = 14
_TRIM_EVERY = 500  # lines appended between two trims (a day of 5-minute runs is 288)


@dataclass(frozen=True)
class Point:
    at: str  # UTC, ISO 8601
    health: str
    data_loss_seconds: int | None  # None: no mark every database can reach
    mark: str | None
    run: str = ""  # dag_id/run_id that measured it

    @property
    def when(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.at)


def append(folder: str | Path, point: Point) -> None:
    path = Path(folder) / HISTORY_FILE
    while True:
        fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - closed below, reopened if trimmed meanwhile
        fcntl.flock(fh, fcntl.LOCK_EX)
        if os.fstat(fh.fileno()).st_ino == os.stat(path).st_ino:
            break
        fh.close()  # another writer trimmed (replaced) the file while this one waited for the lock
    with fh:
        fh.write(json.dumps(asdict(point)) + "\n")
        fh.flush()
        fh.seek(0)
        lines = fh.readlines()
        if len(lines) % _TRIM_EVERY == 0:
            _trim(path, lines, point.when - dt.timedelta(days=KEEP_DAYS))


def _trim(path: Path, lines: list[str], since: dt.datetime) -> None:
    kept = [line for line in lines if (p := _parse(line)) is not None and p.when >= since]
    write_text_atomically(path, "".join(kept), mode=READABLE)


def _parse(line: str) -> Point | None:
    try:
        data = json.loads(line)
        point = Point(**{k: data.get(k) for k in ("at", "health", "data_loss_seconds", "mark")},
                      run=data.get("run") or "")
        point.when  # noqa: B018 - a line whose time does not parse is skipped
    except (ValueError, TypeError):
        return None
    return point


def read(folder: str | Path, since: dt.datetime) -> list[Point]:
    """The points measured at ``since`` (aware, UTC) or later, oldest first; a damaged line is skipped."""
    path = Path(folder) / HISTORY_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    points = [p for line in lines if (p := _parse(line)) is not None and p.when >= since]
    return sorted(points, key=lambda p: p.when)
