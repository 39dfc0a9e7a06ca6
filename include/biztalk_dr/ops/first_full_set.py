"""A new group is not an incident: the grace until its first full set has had time to ship.

On a group biztalk-dr has just started protecting nothing is shipped yet, nor restored on the standby, nor
provable on the validation instance: the data-loss check, the health check's standby and schedule checks and
restore validation would all be red, for what is expected. Until the first full set has had time to ship
(``rpo.first_full_set_grace_minutes`` after the group was first seen), those checks report "waiting for the
first full set" and skip with that reason — neither green nor red. Past the grace with still nothing there,
they alert as usual: a group that never gets its first full set shipped is an incident.

When the group was first seen: the older of

- the first-seen record at the standby site (``.biztalk-dr/first-seen.json`` in the landing folder, written
  once, exclusively, by the first check that runs), and
- the oldest backup set in the primary's history (a group with old history is not new, even when its landing
  folder is: a wiped or replaced landing folder must not buy six hours of silence).

A record that cannot be written gives no grace (an alert too many beats none).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from biztalk_dr.domain.backup_sets import BackupSet
from biztalk_dr.domain.config import GroupConfig
from biztalk_dr.ops.standby_state import StandbyState, state_dir

__all__ = ["FIRST_SEEN_FILE", "first_seen", "grace_left", "standby_waiting", "waiting_text"]

log = logging.getLogger("biztalk_dr.ops.first_full_set")

FIRST_SEEN_FILE = "first-seen.json"


def first_seen(landing_dir: str | Path, *, now_utc: dt.datetime | None = None) -> dt.datetime | None:
    """When biztalk-dr first looked at this group (naive UTC), recorded now when there is no record yet; None
    when no record exists nor can be written (then there is no grace)."""
    now_utc = now_utc or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    path = state_dir(landing_dir) / FIRST_SEEN_FILE
    for _attempt in range(2):
        try:
            return dt.datetime.fromisoformat(json.loads(path.read_text(encoding="utf-8"))["first_seen"])
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("the first-seen record %s cannot be read (%s): no grace for a new group", path, exc)
            return None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue  # another check wrote it a moment ago: read theirs
        except OSError as exc:
            log.warning("cannot record when the group was first seen in %s (%s): no grace for a new group",
                        path.parent, exc.strerror or exc)
            return None
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps({"first_seen": now_utc.isoformat(timespec="seconds")}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return now_utc.replace(microsecond=0)
    return None


def grace_left(cfg: GroupConfig, sets: Sequence[BackupSet], *, now: dt.datetime, seen: dt.datetime | None,
               now_utc: dt.datetime | None = None) -> dt.timedelta | None:
    """How much of the new group's grace is left; None when there is none (past it, turned off, or when the
    group was first seen is unknown). ``now`` is in the history's clock, ``seen`` and ``now_utc`` in UTC."""
    grace = dt.timedelta(minutes=cfg.rpo.first_full_set_grace_minutes)
    if seen is None or grace <= dt.timedelta():
        return None
    now_utc = now_utc or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    age = now_utc - seen
    if sets:
        age = max(age, now - min(s.backup_time for s in sets))
    left = grace - age
    return left if left > dt.timedelta() else None


def waiting_text(what: str, left: dt.timedelta, cfg: GroupConfig) -> str:
    """The reason a check gives while it waits: what is not there yet, and until when it waits."""
    minutes = max(1, round(left.total_seconds() / 60))
    return (f"waiting for the first full set: {what}. A new group has "
            f"{cfg.rpo.first_full_set_grace_minutes} min (rpo.first_full_set_grace_minutes) for its first full set "
            f"to be taken, shipped and restored on the standby; {minutes} min of it left, then this check alerts")


def standby_waiting(cfg: GroupConfig, sets: Sequence[BackupSet], state: StandbyState, left: dt.timedelta | None,
                    ) -> str:
    """The standby checks' reason to wait (empty when they must not): within the grace, and no database of the
    group restored on the standby yet."""
    if left is None or any(state.of(d.name).last_restored_set is not None for d in cfg.databases):
        return ""
    full = next((s for s in reversed(sets) if s.kind == "full" and s.complete), None)
    if full is None:
        what = "no complete full backup set at the source yet (dr_full_backup takes it)"
    else:
        what = (f"full set {full.set_id} ({full.mark_name}) is not restored on the standby yet (dr_log_shipping "
                "ships it and restores it once a later set follows it)")
    return waiting_text(what, left, cfg)

