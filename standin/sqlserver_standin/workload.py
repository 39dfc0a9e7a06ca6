"""Background activity: a BizTalk group never stands still, so its log backups differ in size.

Every ``interval`` seconds, one autocommit INSERT of a random-sized row into ``dbo.StandinActivity``
of every ONLINE database that has that table (``seed.py`` creates it), through the engine's own
session path: the rows are logged, advance the database's LSN and go into the next log backup.
Databases being restored have no such table visible and are left alone.
"""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING

from sqlserver_standin.events import Message

if TYPE_CHECKING:
    from sqlserver_standin.engine import StandinEngine

__all__ = ["Workload", "ACTIVITY_TABLE"]

ACTIVITY_TABLE = "dbo.StandinActivity"
_INSERT = ("IF OBJECT_ID(N'{db}.dbo.StandinActivity') IS NOT NULL "
           "INSERT INTO {db}.dbo.StandinActivity (at, payload) VALUES (GETDATE(), @payload)")


class Workload:
    def __init__(self, engine: StandinEngine, *, interval: float, seed: int | None = None) -> None:
        self.engine = engine
        self.interval = interval
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="standin-workload", daemon=True)
        self._session = None

    def start(self) -> None:
        self._session = self.engine.internal_session("standin workload")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def tick(self) -> int:
        """One round of activity; returns how many databases got a row."""
        written = 0
        for name in self.engine.online_user_databases():
            db = "[" + name.replace("]", "]]") + "]"
            events = list(self.engine.execute(self._session, _INSERT.format(db=db),
                                              {"@payload": "x" * self._random.randint(50, 4000)}))
            if not any(isinstance(e, Message) and e.is_error for e in events) and any(
                    getattr(e, "rowcount", None) == 1 for e in events):
                written += 1
        return written

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a workload hiccup must never stop the server
                continue
