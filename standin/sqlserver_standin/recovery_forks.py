"""Recovery forks: which recovery branch a database is on, where that branch began, and its binding.

SQL Server ("Recovery Paths"; "RESTORE HEADERONLY": BindingID, RecoveryForkID, FirstRecoveryForkID,
ForkPointLSN, FamilyGUID; "sys.database_recovery_status"): a database is created on its first recovery fork,
whose GUID is its FamilyGUID. Recovering a restored database (RESTORE ... WITH RECOVERY) starts a new fork
at the point the restore reached (the fork point), on a new binding (BindingID); backups taken afterwards
carry the new fork, its parent and the fork point, so log backups of two branches can cover the same LSNs.
A log backup applies only on its own branch, or on the parent branch at or before the fork point; any other
is refused with 4330 ("This backup set cannot be applied because it is on a recovery path that is
inconsistent with the database").

The state lives in the database's own file (a private table), so it travels with every backup and restore,
as the database's identity does: a restored full brings the fork it was taken on.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass, replace

from sqlserver_standin.storage import INTERNAL_PREFIX, family_guid

__all__ = ["ForkState", "current", "save", "after_recovery", "applies", "fork_at"]

_TABLE = f"{INTERNAL_PREFIX}recovery_fork"
_SCHEMA = (f"CREATE TABLE IF NOT EXISTS {_TABLE} (fork TEXT NOT NULL, parent TEXT, point INTEGER, "
           "binding TEXT NOT NULL, diff_base TEXT)")


@dataclass(frozen=True)
class ForkState:
    fork: str                 # RecoveryForkID of the branch the database is on
    parent: str | None        # the branch it forked from (None: the database's first branch)
    point: int | None         # the fork point, as the database's LSN counter (seq)
    binding: str              # BindingID: new for each restored copy
    diff_base: str | None     # BackupSetGUID of the full that is the differential base


def _guid(text: str) -> str:
    return str(uuid.UUID(hex=text.replace("-", "")))


def current(conn: sqlite3.Connection) -> ForkState:
    """The database's fork state (created on first use: its first fork is its FamilyGUID). The caller owns
    the transaction."""
    conn.execute(_SCHEMA)
    row = conn.execute(f"SELECT fork, parent, point, binding, diff_base FROM {_TABLE}").fetchone()
    if row is not None:
        return ForkState(*row)
    state = ForkState(_guid(family_guid(conn)), None, None, str(uuid.uuid4()), None)
    save(conn, state)
    return state


def save(conn: sqlite3.Connection, state: ForkState) -> None:
    conn.execute(_SCHEMA)
    conn.execute(f"DELETE FROM {_TABLE}")
    conn.execute(f"INSERT INTO {_TABLE} (fork, parent, point, binding, diff_base) VALUES (?, ?, ?, ?, ?)",
                 (state.fork, state.parent, state.point, state.binding, state.diff_base))


def after_recovery(state: ForkState, point: int) -> ForkState:
    """Recovery at the end of a restore sequence: a new branch from ``point`` on a new binding."""
    return replace(state, fork=str(uuid.uuid4()), parent=state.fork, point=point, binding=str(uuid.uuid4()))


def applies(state: ForkState, redo: int, fork: str, parent: str | None, point: int | None) -> bool:
    """Whether a backup ending on ``fork`` (which branched from ``parent`` at ``point``) continues a database
    on ``state``'s branch at ``redo``: the same branch, or its parent at or before the fork point."""
    return fork == state.fork or (parent == state.fork and point is not None and redo <= point)


def fork_at(fork: str, parent: str | None, point: int | None, first: int) -> str:
    """FirstRecoveryForkID of a log backup starting at ``first``: the parent branch when it spans the fork point."""
    return parent if parent is not None and point is not None and first < point else fork
