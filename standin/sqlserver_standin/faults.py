"""Injected faults: what can go wrong on a real SQL Server during backups and restores.

Faults live in ``DATA-DIR/faults.json`` (atomic writes), so a test (:func:`inject`) or an operator
(``biztalk-dr-standin fault ...``) can inject them into a running instance; the engine re-reads the
file before each statement. Each fault is a dict with a ``kind`` and, for one-shot faults, a
``count`` of remaining occurrences (consumed by the engine):

    refuse_connections                       the listener accepts no new connection
    drop_connection   [match, count]         the connection breaks after the statement ran
    fail_backup       [database, count]      BACKUP fails with 3201 (a network share went away)
    damage_backup     mode=truncate|corrupt  the backup file is written damaged, success is reported
                      [database, count]      (SQL Server can do this on a network share: section 2)
    database_in_use   database               RESTORE/exclusive operations fail with 3101
    slow_io           seconds_per_mb         backups take this long per MB (restores are not slowed)
    slow_restore      seconds                each RESTORE takes this much longer, holding its database (a
                                             restore in progress, e.g. for killing a worker in the middle;
                                             clearing the fault ends the wait of one in progress)
    corrupt_database  database               the database's pages are damaged: DBCC CHECKDB reports
                                             8939/8928 (the damage travels into its backups)
    partial_backup_set database              the backup of this database in the next BizTalk backup
                                             set fails (a fail_backup for that database, count 1)
    restore_damaged   match [count]          a RESTORE reading a backup file whose path contains ``match``
                                             fails with 3183 (damaged data as read from the backup set),
                                             then 3013; the file itself is not changed (a read error)
"""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path

from sqlserver_standin.storage import atomic_write

__all__ = ["KINDS", "Faults", "inject", "clear", "active", "register_cli"]

KINDS = {
    "refuse_connections": (),
    "drop_connection": ("match", "count"),
    "fail_backup": ("database", "count"),
    "damage_backup": ("mode", "database", "count"),
    "database_in_use": ("database",),
    "slow_io": ("seconds_per_mb",),
    "slow_restore": ("seconds",),
    "corrupt_database": ("database",),
    "partial_backup_set": ("database",),
    "restore_damaged": ("match", "count"),
}


def _path(data_dir: Path) -> Path:
    return Path(data_dir) / "faults.json"


def active(data_dir: Path) -> list[dict]:
    path = _path(data_dir)
    if not path.exists():
        return []
    return json.loads(path.read_text() or "[]")


def _save(data_dir: Path, faults: list[dict]) -> None:
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    atomic_write(_path(data_dir), json.dumps(faults, indent=1).encode())


def inject(data_dir: Path, kind: str, **params: object) -> dict:
    """Add a fault (validated); returns it."""
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    unknown = set(params) - set(KINDS[kind])
    if unknown:
        raise ValueError(f"fault {kind} takes {', '.join(KINDS[kind]) or 'no parameters'}; got {sorted(unknown)}")
    if kind == "damage_backup" and params.get("mode", "corrupt") not in ("truncate", "corrupt"):
        raise ValueError("damage_backup mode must be 'truncate' or 'corrupt'")
    if kind == "slow_io":
        seconds = float(params.get("seconds_per_mb", 0))
        if seconds <= 0:
            raise ValueError("slow_io needs seconds_per_mb > 0")
        params["seconds_per_mb"] = seconds
    if kind == "slow_restore":
        seconds = float(params.get("seconds", 0))
        if seconds <= 0:
            raise ValueError("slow_restore needs seconds > 0")
        params["seconds"] = seconds
    if kind in ("database_in_use", "corrupt_database", "partial_backup_set") and not params.get("database"):
        raise ValueError(f"fault {kind} needs a database")
    if kind == "restore_damaged" and not params.get("match"):
        raise ValueError("fault restore_damaged needs match (part of the backup file's path)")
    if kind == "partial_backup_set":
        kind, params = "fail_backup", {"database": params["database"], "count": 1}
    fault = {"kind": kind, **params}
    if kind in ("drop_connection", "fail_backup", "damage_backup", "restore_damaged"):
        fault["count"] = int(fault.get("count", 1))
    if kind == "damage_backup":
        fault.setdefault("mode", "corrupt")
    _save(data_dir, [*active(data_dir), fault])
    return fault


def clear(data_dir: Path, kind: str | None = None) -> None:
    _save(data_dir, [f for f in active(data_dir) if kind is not None and f["kind"] != kind])


class Faults:
    """The engine's view of the fault file: re-read when it changes, one-shot faults consumed."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._faults: list[dict] = []

    def _load(self) -> None:
        path = _path(self.data_dir)
        try:
            stat = path.stat()
        except FileNotFoundError:
            self._faults, self._stamp = [], None
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._faults = active(self.data_dir)
            self._stamp = stamp

    def current(self) -> list[dict]:
        with self._lock:
            self._load()
            return list(self._faults)

    def find(self, kind: str, database: str | None = None) -> dict | None:
        for fault in self.current():
            if fault["kind"] != kind:
                continue
            target = fault.get("database")
            if target and database is not None and target.lower() != database.lower():
                continue
            return fault
        return None

    def consume(self, kind: str, database: str | None = None, *, match: str | None = None) -> dict | None:
        """Take one occurrence of a one-shot (or persistent) fault that applies; None if none applies."""
        with self._lock:
            self._load()
            for i, fault in enumerate(self._faults):
                if fault["kind"] != kind:
                    continue
                target = fault.get("database")
                if target and (database is None or target.lower() != database.lower()):
                    continue
                if fault.get("match") and (match is None or fault["match"].lower() not in match.lower()):
                    continue
                if "count" in fault:
                    remaining = int(fault["count"]) - 1
                    faults = list(self._faults)
                    if remaining > 0:
                        faults[i] = {**fault, "count": remaining}
                    else:
                        del faults[i]
                    _save(self.data_dir, faults)
                    self._stamp = None
                elif kind == "corrupt_database":
                    _save(self.data_dir, [f for j, f in enumerate(self._faults) if j != i])
                    self._stamp = None
                return fault
            return None


def register_cli(commands: argparse._SubParsersAction) -> None:
    """``biztalk-dr-standin fault KIND [--database DB] [--count N] ...`` and ``fault clear``."""
    parser = commands.add_parser("fault", help="inject a fault into a (running) instance's data directory")
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("kind", choices=sorted([*KINDS, "clear", "list"]))
    parser.add_argument("--database")
    parser.add_argument("--count", type=int)
    parser.add_argument("--match", help="drop_connection: only a statement containing this text; restore_damaged: "
                                         "part of the backup file's path")
    parser.add_argument("--mode", choices=["truncate", "corrupt"])
    parser.add_argument("--seconds-per-mb", type=float)
    parser.add_argument("--seconds", type=float, help="slow_restore: how much longer each RESTORE takes")
    parser.set_defaults(handler=_cli)


def _cli(args: argparse.Namespace) -> int:
    if args.kind == "list":
        for fault in active(args.data_dir):
            print(json.dumps(fault))
        return 0
    if args.kind == "clear":
        clear(args.data_dir)
        print("faults cleared")
        return 0
    params = {k: v for k, v in (("database", args.database), ("count", args.count), ("match", args.match),
                                ("mode", args.mode), ("seconds_per_mb", args.seconds_per_mb),
                                ("seconds", args.seconds)) if v is not None}
    try:
        fault = inject(args.data_dir, args.kind, **params)
    except ValueError as exc:
        print(f"biztalk-dr-standin fault: {exc}")
        return 2
    print(f"injected {json.dumps(fault)}")
    return 0
