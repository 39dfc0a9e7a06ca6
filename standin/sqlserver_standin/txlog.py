"""The transaction log of one database, as logical records with LSNs.

Every change of a user table gets the next LSN from the database's counter (triggers installed by
``storage.install_log_triggers``). While the log is kept — FULL recovery with a backup chain
started by a full backup ("Recovery Models (SQL Server)": in SIMPLE, and in FULL before the first
full backup, the log is truncated at checkpoint) — each change is also written as a row image, and
each transaction as BEGIN/COMMIT records; a marked transaction (``BEGIN TRAN name WITH MARK``)
adds a MARK record where it first writes. A log backup carries exactly the records of its LSN range
and truncates them; RESTORE LOG replays them, stopping at a mark ("Use Marked Transactions to
Recover Related Databases Consistently": STOPATMARK includes the marked transaction,
STOPBEFOREMARK excludes it).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sqlserver_standin.storage import INTERNAL_PREFIX, install_log_triggers

__all__ = ["LogRecord", "Stop", "ReplayOutcome", "current_seq", "allocate", "logging_enabled", "set_logging",
           "begin_transaction", "write_record", "records", "truncate", "replay", "snapshot", "encode_records",
           "decode_records", "reset_after_restore"]

_P = INTERNAL_PREFIX


@dataclass(frozen=True)
class LogRecord:
    seq: int
    xact: int
    kind: str  # I U D (row images), DDL, BEGIN, COMMIT, MARK, CKPT
    tbl: str | None = None
    rid: int | None = None
    img: str | None = None  # JSON: [rowid, column values...] for I/U; DDL text for DDL
    mark: str | None = None  # mark name (MARK), mark description in img
    at: str | None = None  # when, local time text (COMMIT/MARK)


def current_seq(conn: sqlite3.Connection) -> int:
    return conn.execute(f"SELECT seq FROM {_P}lsn").fetchone()[0]


def allocate(conn: sqlite3.Connection) -> int:
    """The next LSN of the database (caller's transaction)."""
    conn.execute(f"UPDATE {_P}lsn SET seq = seq + 1")
    return current_seq(conn)


def logging_enabled(conn: sqlite3.Connection) -> bool:
    return conn.execute(f"SELECT logging FROM {_P}ctl").fetchone()[0] == 1


def set_logging(conn: sqlite3.Connection, on: bool) -> None:
    conn.execute(f"UPDATE {_P}ctl SET logging = ?", (1 if on else 0,))
    if not on:
        conn.execute(f"DELETE FROM {_P}log")


def begin_transaction(conn: sqlite3.Connection) -> int:
    """Start a logged transaction in the caller's SQLite transaction; returns its id."""
    xact = allocate(conn)
    conn.execute(f"UPDATE {_P}ctl SET xact = ?", (xact,))
    if logging_enabled(conn):
        conn.execute(f"INSERT INTO {_P}log (seq, xact, kind) VALUES (?, ?, 'BEGIN')", (xact, xact))
    return xact


def write_record(conn: sqlite3.Connection, kind: str, *, tbl: str | None = None, img: str | None = None,
                 mark: str | None = None, at: str | None = None) -> int:
    """A record written by the engine itself (COMMIT, MARK, DDL, CKPT); returns its LSN counter."""
    seq = allocate(conn)
    if logging_enabled(conn):
        xact = conn.execute(f"SELECT xact FROM {_P}ctl").fetchone()[0]
        conn.execute(f"INSERT INTO {_P}log (seq, xact, kind, tbl, img, mark, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (seq, xact, kind, tbl, img, mark, at))
    return seq


def records(conn: sqlite3.Connection, first: int, last: int) -> list[LogRecord]:
    """Records with first <= seq < last, in order."""
    rows = conn.execute(f"SELECT seq, xact, kind, tbl, rid, img, mark, at FROM {_P}log WHERE seq >= ? AND seq < ? "
                        "ORDER BY seq", (first, last))
    return [LogRecord(*row) for row in rows]


def truncate(conn: sqlite3.Connection, before: int) -> None:
    conn.execute(f"DELETE FROM {_P}log WHERE seq < ?", (before,))


def encode_records(recs: Sequence[LogRecord]) -> bytes:
    return json.dumps([asdict(r) for r in recs], separators=(",", ":")).encode()


def decode_records(payload: bytes) -> list[LogRecord]:
    return [LogRecord(**r) for r in json.loads(payload.decode())]


@dataclass(frozen=True)
class Stop:
    """Where RESTORE LOG stops: at or before a mark (optionally the first one after a time), or at a time."""

    mark: str | None = None
    include_mark: bool = True  # STOPATMARK (True) or STOPBEFOREMARK (False)
    after: dt.datetime | None = None
    at_time: dt.datetime | None = None
    lsn: int | None = None  # STOPATMARK / STOPBEFOREMARK = 'lsn:X': the record at X (included by STOPATMARK)


@dataclass(frozen=True)
class ReplayOutcome:
    applied_to: int  # the database now holds every change below this LSN counter
    reached: bool  # the stop point was in this backup (always True without a stop point)
    mark_seq: int | None  # LSN counter of the mark used
    mark_time: str | None
    changes: int


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _groups(recs: Sequence[LogRecord]) -> list[list[LogRecord]]:
    groups: list[list[LogRecord]] = []
    for rec in recs:
        if groups and groups[-1][0].xact == rec.xact:
            groups[-1].append(rec)
        else:
            groups.append([rec])
    return groups


def find_mark(recs: Sequence[LogRecord], stop: Stop) -> LogRecord | None:
    for rec in recs:
        if rec.kind == "MARK" and rec.mark is not None and rec.mark.lower() == (stop.mark or "").lower():
            if stop.after is None or (rec.at is not None and _parse_time(rec.at) >= stop.after):
                return rec
    return None


def replay(conn: sqlite3.Connection, recs: Sequence[LogRecord], *, start: int, end: int, stop: Stop | None) -> ReplayOutcome:
    """Apply the records with start <= seq < end (the caller checked the chain), whole transactions at
    a time, in the caller's SQLite transaction, without logging them again."""
    todo = [r for r in recs if start <= r.seq < end]
    mark = find_mark(todo, stop) if stop is not None and stop.mark is not None else None
    changes = 0
    applied_to = end
    reached = stop is None
    bound = _lsn_bound(stop.lsn, stop.include_mark) if stop is not None and stop.lsn is not None else None
    if bound is not None and bound <= end:  # every record before ``bound``; a transaction not committed by then is not
        applied_to, reached = max(bound, start), True
        for group in _groups(todo):
            if group[-1].seq >= bound:
                break
            for rec in group:
                changes += _apply(conn, rec)
        conn.execute(f"UPDATE {_P}lsn SET seq = MAX(seq, ?)", (applied_to - 1,))
        return ReplayOutcome(applied_to, reached, None, None, changes)
    for group in _groups(todo):
        if mark is not None and group[0].xact == mark.xact and not stop.include_mark:
            applied_to, reached = mark.seq, True
            break
        if stop is not None and stop.at_time is not None:
            commit = next((r for r in group if r.kind == "COMMIT"), None)
            if commit is not None and commit.at is not None and _parse_time(commit.at) > stop.at_time:
                applied_to, reached = group[0].seq, True
                break
        for rec in group:
            changes += _apply(conn, rec)
        if mark is not None and group[0].xact == mark.xact:
            applied_to, reached = group[-1].seq + 1, True
            break
    conn.execute(f"UPDATE {_P}lsn SET seq = MAX(seq, ?)", (applied_to - 1,))
    return ReplayOutcome(applied_to, reached, mark.seq if mark else None, mark.at if mark else None, changes)


def _lsn_bound(lsn: int, include: bool) -> int:
    """The first LSN counter not restored when stopping at LSN ``lsn`` (after it, or before it)."""
    from sqlserver_standin.lsn import lsn_from_seq

    low, high = 0, 1 << 40  # the largest counter whose LSN is <= lsn, found by halving (the mapping is monotonic)
    while low < high:
        middle = (low + high + 1) // 2
        if lsn_from_seq(middle) <= lsn:
            low = middle
        else:
            high = middle - 1
    exact = lsn_from_seq(low) == lsn
    return low + 1 if include or not exact else low


def _decode(value: object) -> object:
    if isinstance(value, dict) and set(value) == {"hex"}:
        return bytes.fromhex(value["hex"])
    return value


def _apply(conn: sqlite3.Connection, rec: LogRecord) -> int:
    if rec.kind == "DDL":
        conn.execute(rec.img)
        if rec.tbl and conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                    (rec.tbl,)).fetchone():
            install_log_triggers(conn, rec.tbl)
        return 1
    if rec.kind not in ("I", "U", "D"):
        return 0
    table = '"' + rec.tbl.replace('"', '""') + '"'
    if rec.kind == "D":
        conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (rec.rid,))
        return 1
    image = [_decode(v) for v in json.loads(rec.img)]
    columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    names = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    if rec.kind == "I":
        conn.execute(f"INSERT INTO {table} (rowid, {names}) VALUES (?, {marks})", image)
    else:
        sets = ", ".join(f'"{c}" = ?' for c in columns)
        conn.execute(f"UPDATE {table} SET rowid = ?, {sets} WHERE rowid = ?", [*image, rec.rid])
    return 1


def snapshot(conn: sqlite3.Connection) -> bytes:
    """The database's content as this connection sees it (inside the backup's own transaction)."""
    return conn.serialize()


def reset_after_restore(conn: sqlite3.Connection, *, seq: int) -> None:
    """A database just created from a full backup: its counter at the backup's end, no active log."""
    conn.execute(f"UPDATE {_P}lsn SET seq = ?", (seq,))
    conn.execute(f"UPDATE {_P}ctl SET logging = 0, xact = 0")
    conn.execute(f"DELETE FROM {_P}log")
