"""The DR roles record: which site is primary now, and whether a failover holds the backup schedule.

Kept at the standby site (``<landing>/.biztalk-dr/roles.json``), beside the standby state, so it survives
the loss of the primary site. The backup DAGs read it before each run:

- while a failover holds the schedule, no backup is taken (a new set during a switchover would be a set
  the recovery does not restore, and in a disaster the lost primary cannot be backed up anyway);
- after a failover, they back up the *acting* primary: the standby site's instances into the standby
  site's backup folder (``sites.standby.backup_path`` / ``backup_dir``), with the configuration unchanged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from biztalk_dr.domain.advice import advice
from biztalk_dr.domain.config import GroupConfig, PrimaryInstance, PrimarySite
from biztalk_dr.domain.errors import PreflightError, StandbyStateUnreadable
from biztalk_dr.ops.atomic_files import write_json_atomically
from biztalk_dr.ops.config_files import load_config
from biztalk_dr.ops.standby_state import state_dir

__all__ = ["SiteRoles", "read_roles", "write_roles", "standby_is_primary", "hold_backups", "release_backups",
           "backups_held", "held_for", "acting_config", "load_acting_config"]

_ROLES_FILE = "roles.json"


@dataclass(frozen=True)
class SiteRoles:
    """The record: which site acts as the primary (and, after a failover, to which mark, when and how), and the
    failover run holding the backup schedule. Its JSON (``to_json`` / ``from_json``, the one reading and writing)
    keeps the keys roles.json always had; a key an older record lacks reads as None."""

    primary_site: Literal["primary", "standby"] = "primary"
    failed_over_at: str | None = None  # ISO time, UTC
    mark: str | None = None  # the mark the standby was recovered to
    set_id: int | None = None
    set_time: str | None = None
    mode: str | None = None  # "disaster" or "planned"
    old_primary: str | None = None  # what becomes of it (for people)
    backups_held_by: str | None = None  # the failover run holding the backup schedule
    backups_held_since: str | None = None

    @property
    def standby_is_primary(self) -> bool:
        return self.primary_site == "standby"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SiteRoles:
        """The record from its JSON; ValueError naming the keys it does not know (a record this version did not
        write) or a ``primary_site`` that is neither site."""
        known = {f.name for f in dataclasses.fields(cls)}
        if unknown := sorted(set(data) - known):
            raise ValueError(f"unknown key(s) {', '.join(unknown)}")
        site = data.get("primary_site") or "primary"
        if site not in ("primary", "standby"):
            raise ValueError(f"primary_site is {site!r}, not 'primary' or 'standby'")
        return cls(**{**data, "primary_site": site})


def _path(landing_dir: str | Path) -> Path:
    return state_dir(landing_dir) / _ROLES_FILE


def read_roles(landing_dir: str | Path) -> SiteRoles:
    """The record; the default one (the primary site is primary, nothing held) before any failover.
    StandbyStateUnreadable (the file named, what to do) for a record that cannot be read."""
    path = _path(landing_dir)
    if not path.exists():
        return SiteRoles()
    try:
        return SiteRoles.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
        raise StandbyStateUnreadable(str(path), str(exc), advice("roles_unreadable", path=path)) from exc


def write_roles(landing_dir: str | Path, roles: SiteRoles) -> Path:
    """Atomically (atomic_files): a crash leaves the old record or the new one."""
    folder = state_dir(landing_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return write_json_atomically(folder / _ROLES_FILE, roles.to_json(), sort_keys=True)


def standby_is_primary(cfg: GroupConfig) -> bool:
    return read_roles(cfg.sites.standby.landing_dir).standby_is_primary


def hold_backups(cfg: GroupConfig, run_id: str) -> str:
    """Hold the backup schedule for this failover run; idempotent. A hold of an earlier run is taken over:
    dr_failover never runs twice at once (max_active_runs=1), so that run has ended. Returns what was done."""
    roles = read_roles(cfg.sites.standby.landing_dir)
    held = roles.backups_held_by
    if held == run_id:
        return f"the backup schedule is already held by this failover run ({run_id})"
    write_roles(cfg.sites.standby.landing_dir, dataclasses.replace(
        roles, backups_held_by=run_id, backups_held_since=dt.datetime.now(dt.UTC).isoformat(timespec="seconds")))
    taken = f" (taken over from the earlier failover run {held}, which did not finish)" if held else ""
    return ("backup schedule held: dr_full_backup and dr_log_backup skip their runs until the failover resumes "
            f"them{taken}")


def release_backups(cfg: GroupConfig) -> str:
    roles = read_roles(cfg.sites.standby.landing_dir)
    if not roles.backups_held_by:
        return "the backup schedule is not held: nothing to resume"
    write_roles(cfg.sites.standby.landing_dir, dataclasses.replace(roles, backups_held_by=None, backups_held_since=None))
    site = "the standby site (now the primary)" if roles.standby_is_primary else "the primary site"
    return f"backup schedule resumed: dr_full_backup and dr_log_backup back up {site} again"


def backups_held(cfg: GroupConfig) -> str:
    """Why the backup DAGs must not back up now; empty when they may."""
    roles = read_roles(cfg.sites.standby.landing_dir)
    held = roles.backups_held_by
    since = f" since {roles.backups_held_since}" if roles.backups_held_since else ""
    return (f"the backup schedule is held by the failover run {held}{since}: no backup set is taken until that "
            "run resumes it (protect_new_primary.resume_backup_schedule) or an operator does "
            "(biztalk-dr resume-backups, after an abandoned failover)") if held else ""


def held_for(cfg: GroupConfig, now: dt.datetime | None = None) -> dt.timedelta | None:
    """How long the backup schedule has been held; None when it is not."""
    roles = read_roles(cfg.sites.standby.landing_dir)
    if not roles.backups_held_by:
        return None
    start = dt.datetime.fromisoformat(roles.backups_held_since) if roles.backups_held_since else None
    return (now or dt.datetime.now(dt.UTC)) - start if start else dt.timedelta(0)


def acting_config(cfg: GroupConfig) -> GroupConfig:
    """The configuration as the backup and health DAGs must see it now: unchanged before a failover;
    afterwards the standby site's instances are the primary ones, backing up into the standby site's backup
    folder, and there is no standby instance yet."""
    if not standby_is_primary(cfg):
        return cfg
    standby = cfg.sites.standby
    if standby.backup_path is None or standby.backup_dir is None:
        raise PreflightError(
            ["the standby site is the primary now, but sites.standby.backup_path and sites.standby.backup_dir are "
             "not configured: there is no folder to back the new primary up into"],
            advice=advice("new_primary_backup_folder"))
    instances = {key: PrimaryInstance(conn_id=i.conn_id, server_name=i.server_name)
                 for key, i in standby.instances.items()}
    primary = PrimarySite(instances=instances, backup_path=standby.backup_path, backup_dir=standby.backup_dir,
                          biztalk_servers=standby.biztalk_servers)
    # no standby instance until the old primary is re-seeded as one and the configuration's sites are swapped;
    # the standby site's folders (the DR records) stay where they are
    return cfg.model_copy(update={"sites": cfg.sites.model_copy(update={
        "primary": primary, "standby": standby.model_copy(update={"instances": {}})})})


def load_acting_config() -> GroupConfig:
    return acting_config(load_config())
