"""What the standby site holds, recorded at the standby site: per database, the last backup set restored
there (with its mark and LSN). What is shipped is recorded by the manifest beside each shipped file. Kept in the landing folder, beside the shipped files and
their manifests, so it survives the loss of the primary site and of any one Airflow worker.

One JSON file, written atomically (atomic_files: temporary file, fsync, rename, fsync of the folder); changes happen under an exclusive
lock file, so two shipping runs (or a shipping run and a re-seed) never interleave their restores.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from biztalk_dr.domain.errors import StandbyBusy, StandbyStateUnreadable
from biztalk_dr.ops.atomic_files import write_json_atomically

__all__ = ["DatabaseState", "StandbyState", "state_dir", "run_records_dir", "run_folder_name", "read_state",
           "locked_state", "set_aside_state"]

_STATE_DIR = ".biztalk-dr"
_STATE_FILE = "standby-state.json"
_LOCK_FILE = "standby.lock"




@dataclass(frozen=True)
class DatabaseState:
    last_restored_set: int | None = None
    last_restored_mark: str | None = None
    last_restored_lsn: int | None = None
    restored_at: str | None = None  # ISO 8601, UTC
    seeded_from_set: int | None = None


@dataclass(frozen=True)
class StandbyState:
    databases: dict[str, DatabaseState] = field(default_factory=dict)

    def of(self, database: str) -> DatabaseState:
        return self.databases.get(database, DatabaseState())

    def with_database(self, database: str, **changes: object) -> StandbyState:
        return StandbyState({**self.databases, database: replace(self.of(database), **changes)})

    def as_json(self) -> dict:
        return {"databases": {name: asdict(s) for name, s in sorted(self.databases.items())}}


def state_dir(landing_dir: str | Path) -> Path:
    return Path(landing_dir) / _STATE_DIR


def run_folder_name(run_id: str) -> str:
    """The name of a DAG run's records folder: its run id with every character but ``A-Za-z0-9_.-`` as ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)


def run_records_dir(landing_dir: str | Path, kind: str, run_id: str) -> Path:
    """The folder (created) for one DAG run's records at the standby site, e.g. a validation report."""
    folder = state_dir(landing_dir) / kind / run_folder_name(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def read_state(landing_dir: str | Path) -> StandbyState:
    """The recorded state; empty (nothing shipped or restored) when there is none yet."""
    path = state_dir(landing_dir) / _STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return StandbyState()
    except (OSError, ValueError) as exc:
        raise _unreadable(path, exc) from exc
    try:
        return StandbyState({name: DatabaseState(**values) for name, values in data.get("databases", {}).items()})
    except (AttributeError, TypeError) as exc:  # valid JSON, not the state's shape
        raise _unreadable(path, exc) from exc


def _unreadable(path: Path, exc: BaseException) -> StandbyStateUnreadable:
    from biztalk_dr.domain.advice import advice

    return StandbyStateUnreadable(str(path), str(exc), advice("standby_state_unreadable",
                                                              kept=f"{path.name}.unreadable-<time>"))


def set_aside_state(landing_dir: str | Path) -> Path:
    """Move an unreadable state file aside (kept, never deleted); returns where it went."""
    path = state_dir(landing_dir) / _STATE_FILE
    target = path.with_name(f"{_STATE_FILE}.unreadable-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}")
    path.replace(target)
    return target


def _write_state(landing_dir: str | Path, state: StandbyState) -> None:
    folder = state_dir(landing_dir)
    payload = {**state.as_json(), "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    write_json_atomically(folder / _STATE_FILE, payload, sort_keys=True)


class _Session:
    """The state under the lock; ``save`` persists each step as it happens (a crash loses nothing done)."""

    def __init__(self, landing_dir: str | Path, *, rebuild: bool = False) -> None:
        self.landing_dir = landing_dir
        self.set_aside: Path | None = None
        try:
            self.state = read_state(landing_dir)
        except StandbyStateUnreadable:
            if not rebuild:
                raise
            self.set_aside = set_aside_state(landing_dir)  # a re-seed writes a new state from nothing
            self.state = StandbyState()

    def save(self, state: StandbyState) -> None:
        _write_state(self.landing_dir, state)
        self.state = state


@contextlib.contextmanager
def locked_state(landing_dir: str | Path, *, purpose: str, rebuild: bool = False) -> Iterator[_Session]:
    """Exclusive access to the standby state; StandbyBusy at once if another run has it. ``rebuild`` (a re-seed,
    which starts from nothing): an unreadable state file is set aside instead of stopping the run."""
    folder = state_dir(landing_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / _LOCK_FILE, "a+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another run"
            raise StandbyBusy(f"the standby is busy: {holder} holds {folder / _LOCK_FILE}; this run changes "
                              "nothing and the next one continues") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{purpose} (pid {os.getpid()}, since {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC)")
        lock.flush()
        try:
            yield _Session(landing_dir, rebuild=rebuild)
        finally:
            lock.seek(0)
            lock.truncate()
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
