"""Log shipping to the standby site: which sets to ship, copying and proving each file, restoring the
standby set by set WITH NORECOVERY, and what the standby can recover to.

Better than BizTalk's own log shipping (biztalk-dr.md section 4) on purpose: files are restored from the
standby's own verified copies (never from the primary's share), data and log files are relocated with
MOVE where the standby's paths differ, every standby database advances set by set together (a failed
database stops the others at the same set), and the lag is measured. The newest complete set is held
back: it is applied at failover, to its mark.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from biztalk_dr import tsql
from biztalk_dr.backup_files import BackupSetHeader, read_backup_file
from biztalk_dr.backup_sets import BackupSet, HistoryRow, newest_complete_full
from biztalk_dr.config import GroupConfig
from biztalk_dr.data_loss import DataLossWindow, data_loss_window
from biztalk_dr.errors import BackupFileError, PathOutsideRootError, ShippingError, SqlServerError
from biztalk_dr.manifest import Manifest, is_shipped_and_verified, read_manifest, write_manifest
from biztalk_dr.paths import inside_root, plain_file_name, sql_join
from biztalk_dr.shipping_copy import CopyVerificationError, ship_file
from biztalk_dr.sqlserver import CallKind, SqlServer
from biztalk_dr.standby_state import StandbyState

__all__ = [
    "CatalogEntry",
    "ShippingPlan",
    "StandbyPlan",
    "StandbyStep",
    "catalog_entries",
    "plan_shipping",
    "plan_standby_restores",
    "restore_on_standby",
    "row_shipped",
    "ship_database_file",
    "shipping_status",
]

log = logging.getLogger("biztalk_dr.log_shipping")

QUARANTINE_DIR = "quarantine"
_RETRY_PAUSES = {3201: (5.0, 15.0), 3203: (5.0, 15.0), 3101: (10.0, 30.0, 60.0)}  # seconds before each retry
_RESEED = ("Re-seed the standby from the newest complete full set: trigger dr_standby_reseed (it restores "
           "that full set and every later set WITH REPLACE, NORECOVERY).")


# ---------------------------------------------------------------------------------------------- what to ship
@dataclass(frozen=True)
class ShippingPlan:
    sets: tuple[BackupSet, ...]  # complete sets to ship (or to check shipped), oldest first
    partial: tuple[BackupSet, ...]  # partial sets in the same range: never shipped, reported
    waiting: str = ""  # why nothing can be shipped yet
    start_set_id: int | None = None  # the oldest set the standby still needs

    def as_json(self) -> dict[str, Any]:
        return {"sets": [s.set_id for s in self.sets], "partial": [s.set_id for s in self.partial],
                "waiting": self.waiting}


def plan_shipping(sets: Sequence[BackupSet], state: StandbyState, databases: Sequence[str]) -> ShippingPlan:
    """Complete sets from the oldest one the standby still needs: the set after the least advanced
    standby database, or the newest complete full set when that is older (a database to seed)."""
    full = newest_complete_full(sets)
    if full is None:
        return ShippingPlan((), (), "no complete full backup set yet: the standby is seeded from one")
    restored = [r for db in databases if (r := state.of(db).last_restored_set) is not None]
    start = min([full.set_id, *(r + 1 for r in restored)])
    wanted = [s for s in sets if s.set_id >= start]
    return ShippingPlan(tuple(s for s in wanted if s.complete), tuple(s for s in wanted if not s.complete),
                        start_set_id=start)


def _landing(cfg: GroupConfig) -> Path:
    return Path(cfg.sites.standby.landing_dir)


def row_shipped(cfg: GroupConfig, row: HistoryRow) -> bool:
    """Whether the file of this history row is shipped and verified at the standby site (a name that would
    leave the landing folder never is)."""
    try:
        return is_shipped_and_verified(_landing(cfg), plain_file_name(row.base_name))
    except PathOutsideRootError:
        return False


# ---------------------------------------------------------------------------------------------- catalog
@dataclass(frozen=True)
class CatalogEntry:
    """What the primary's msdb says a backup file holds."""

    path: str
    database_name: str
    backup_type: Literal["FULL", "DIFF", "LOG"]
    first_lsn: int
    last_lsn: int


_CATALOG_QUERY = """SELECT bmf.physical_device_name AS path, bs.database_name, bs.type, bs.first_lsn, bs.last_lsn
FROM msdb.dbo.backupset AS bs
JOIN msdb.dbo.backupmediafamily AS bmf ON bmf.media_set_id = bs.media_set_id
WHERE bmf.physical_device_name IN ({paths})
ORDER BY bs.backup_set_id"""
_CATALOG_TYPES: dict[str, Literal["FULL", "DIFF", "LOG"]] = {"D": "FULL", "I": "DIFF", "L": "LOG"}


def catalog_entries(server: SqlServer, paths: Iterable[str]) -> dict[str, CatalogEntry]:
    """msdb's record of each file, by the path SQL Server wrote it to (the newest set when a file holds several)."""
    wanted = sorted(set(paths))
    if not wanted:
        return {}
    sql = _CATALOG_QUERY.replace("{paths}", ", ".join(tsql.literal(p) for p in wanted))
    entries = {}
    for row in server.query(sql):
        kind = _CATALOG_TYPES.get(str(row["type"]).strip().upper())
        if kind is not None:
            entries[str(row["path"])] = CatalogEntry(str(row["path"]), str(row["database_name"]), kind,
                                                     int(row["first_lsn"]), int(row["last_lsn"]))
    return entries


# ---------------------------------------------------------------------------------------------- ship one file
def _mismatch(header: BackupSetHeader, row: HistoryRow, entry: CatalogEntry | None,
              previous: Manifest | None) -> str:
    """Why the landed file is not what the catalog says it is; empty when it is."""
    kind = "FULL" if row.backup_type == "db" else "LOG"
    if header.database_name.lower() != row.database_name.lower() or header.backup_type != kind:
        return (f"it holds a {header.backup_type} backup of {header.database_name}, not the {kind} backup of "
                f"{row.database_name} that adm_BackupHistory records")
    if entry is not None and (header.first_lsn, header.last_lsn) != (entry.first_lsn, entry.last_lsn):
        return (f"its LSN range {header.first_lsn}-{header.last_lsn} differs from msdb's "
                f"{entry.first_lsn}-{entry.last_lsn}")
    if kind == "LOG" and previous is not None and previous.last_lsn is not None \
            and header.first_lsn != previous.last_lsn:
        return (f"it starts at LSN {header.first_lsn} but the previous log backup of {row.database_name} "
                f"({previous.file_name}, set {previous.set_id}) ends at LSN {previous.last_lsn}: the chain has a gap")
    return ""


def _quarantine(cfg: GroupConfig, path: Path, reason: str) -> Path:
    folder = _landing(cfg) / QUARANTINE_DIR
    folder.mkdir(exist_ok=True)
    target = folder / f"{path.name}.{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}"
    shutil.move(str(path), target)
    target.with_name(target.name + ".why.txt").write_text(reason + "\n", encoding="utf-8")
    log.warning("quarantined %s as %s: %s", path, target, reason)
    return target


def ship_database_file(cfg: GroupConfig, bset: BackupSet, row: HistoryRow, *, entry: CatalogEntry | None,
                       previous: Manifest | None, source: Path) -> tuple[Manifest, str]:
    """Copy one backup file to the landing folder and prove it: whole (size and SHA-256 at the destination),
    and what the catalog says (database, type, LSN range) continuing the previous log. A bad copy is
    quarantined and copied once more; a second failure raises ShippingError (the caller forces a full backup
    at the source). Returns the manifest and what was done, for the log."""
    landing = _landing(cfg)
    name = plain_file_name(row.base_name)
    if is_shipped_and_verified(landing, name):
        manifest = read_manifest(landing, name)
        assert manifest is not None
        return manifest, f"{name}: already shipped and verified ({manifest.verified_at})"
    if not source.is_file():
        raise ShippingError([f"set {bset.set_id} ({bset.mark_name}): the backup file of {row.database_name} is "
                             f"missing at the source: {source}"],
                            advice="A full backup has been requested at the source (the chain cannot continue "
                                   "without this file); find out who removed it.")
    problem = ""
    for attempt in (1, 2):
        try:
            copied = ship_file(source, landing)
        except CopyVerificationError as exc:
            problem = str(exc)
            continue
        try:
            header = read_backup_file(copied.destination)[-1]
        except BackupFileError as exc:
            problem = exc.reason
        else:
            problem = _mismatch(header, row, entry, previous)
            if not problem:
                now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
                manifest = Manifest(
                    file_name=name, size=copied.size, sha256=copied.sha256, set_id=bset.set_id,
                    mark_name=bset.mark_name, database_name=row.database_name, backup_type=row.backup_type,
                    first_lsn=header.first_lsn, last_lsn=header.last_lsn, source_path=row.sql_path,
                    shipped_at=now, verified_at=now, backup_time=bset.backup_time.isoformat())
                write_manifest(landing, manifest)
                how = "copied" if copied.copied else "already in place"
                return manifest, (f"{name}: {how}, {copied.size} bytes, sha256 {copied.sha256[:12]}..., "
                                  f"{header.backup_type} LSN {header.first_lsn}-{header.last_lsn}"
                                  + (" (second copy)" if attempt == 2 else ""))
        _quarantine(cfg, copied.destination, problem)
    if "the chain has a gap" in problem:
        raise ShippingError([f"set {bset.set_id} ({bset.mark_name}), {row.database_name}: {problem}"],
                            advice="A full backup has been requested at the source. " + _RESEED)
    raise ShippingError([f"set {bset.set_id} ({bset.mark_name}): the copy of {row.sql_path} failed verification "
                         f"twice (quarantined in {landing / QUARANTINE_DIR}): {problem}"],
                        advice="A full backup has been requested at the source. Check the source file and the "
                               "network path to the standby site.")


# ---------------------------------------------------------------------------------------------- restore plan
@dataclass(frozen=True)
class StandbyStep:
    set_id: int
    mark_name: str
    backup_time: dt.datetime
    database: str
    file_name: str
    action: Literal["seed", "log"]

    def as_json(self) -> dict[str, Any]:
        return {"set_id": self.set_id, "mark": self.mark_name, "database": self.database,
                "file": self.file_name, "action": self.action}


@dataclass(frozen=True)
class StandbyPlan:
    steps: tuple[StandbyStep, ...]
    notes: tuple[str, ...]  # what waits, and why
    blocked: str = ""  # why the standby cannot go on without a re-seed; empty when it can


def plan_standby_restores(sets: Sequence[BackupSet], state: StandbyState, databases: Sequence[str],
                          shipped: Callable[[HistoryRow], bool]) -> StandbyPlan:
    """The restores that bring every standby database to the set before the newest complete one, set by
    set. Only sets whose every file is shipped and verified count, and restores stop before a set that is
    not (a set is never skipped) and before a partial set (its successful backups moved the log chains on,
    so no later log set applies: the standby needs a re-seed from a later full set)."""
    complete = [s for s in sets if s.complete]
    if not complete:
        return StandbyPlan((), ("no complete backup set yet",))
    hold = complete[-1]
    notes = [f"set {hold.set_id} ({hold.mark_name}) is held back: the newest complete set is applied at "
             "failover, to its mark"]
    first = plan_shipping(sets, state, databases).start_set_id or hold.set_id
    ready: list[BackupSet] = []
    blocked = ""
    for bset in sets:
        if bset.set_id < first or bset.set_id >= hold.set_id:
            continue
        if not bset.complete:
            later_full = next((s for s in complete if s.set_id > bset.set_id and s.kind == "full"), None)
            notes.append(f"set {bset.set_id} ({bset.mark_name}) is partial: restores stop before it")
            if later_full is not None:
                blocked = (f"set {bset.set_id} ({bset.mark_name}) is partial, so no later log set applies to the "
                           f"standby; full set {later_full.set_id} ({later_full.mark_name}) was taken since")
            else:
                notes.append("waiting for the full backup set the partial set requested")
            break
        if not all(shipped(r) for r in bset.rows):
            notes.append(f"set {bset.set_id} ({bset.mark_name}) is not shipped and verified yet: restores stop "
                         "before it")
            break
        ready.append(bset)
    steps: list[StandbyStep] = []
    for database in databases:
        current = state.of(database).last_restored_set
        base = None
        if current is None:
            base = newest_complete_full(ready)
            if base is None:
                notes.append(f"{database}: no shipped full set before the held-back set to seed it from yet")
                continue
        for bset in ready:
            row = bset.row_for(database)
            if row is None:
                continue
            if base is not None and bset.set_id == base.set_id:
                steps.append(StandbyStep(bset.set_id, bset.mark_name, bset.backup_time, database, row.base_name, "seed"))
            elif bset.kind == "log" and bset.set_id > (base.set_id if base is not None else current or 0):
                steps.append(StandbyStep(bset.set_id, bset.mark_name, bset.backup_time, database, row.base_name, "log"))
    order = {name: i for i, name in enumerate(databases)}
    steps.sort(key=lambda s: (s.set_id, order[s.database]))
    return StandbyPlan(tuple(steps), tuple(notes), blocked)


# ---------------------------------------------------------------------------------------------- restore
def _moves(cfg: GroupConfig, instance_key: str, header: BackupSetHeader) -> list[tsql.Move]:
    """WITH MOVE for each database file where the standby's folders differ from the primary's."""
    inst = cfg.sites.standby.instances[instance_key]
    moves = []
    for f in header.files:
        folder = inst.log_path if f.type == "L" else inst.data_path
        if folder is not None:
            base = f.physical_name.replace("\\", "/").rsplit("/", 1)[-1]
            moves.append(tsql.Move(f.logical_name, sql_join(folder, base)))
    return moves


def restore_on_standby(cfg: GroupConfig, steps: Sequence[StandbyStep], session: Any, *, replace: bool = False,
                       connect: Callable[[str], SqlServer] = SqlServer,
                       sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Run the steps in order under the standby lock, recording each one as it completes; stops at the first
    step that cannot be done (the later sets wait for the next run). SQL Server's errors by number:
    4326 already applied (recorded, go on); 4305 a gap and 3117 a recovered database (stop, re-seed);
    3201/3203 retried, then stop; 3101 waits for the sessions to end, then stop. ``replace`` (re-seed only)
    restores the full sets WITH REPLACE over what the standby has."""
    done: list[str] = []
    servers: dict[str, SqlServer] = {}
    landing = _landing(cfg)
    try:
        for step in steps:
            database = next(d for d in cfg.databases if d.name == step.database)
            key = cfg.instance_of(database, "standby")
            server = servers.get(key) or servers.setdefault(key, connect(cfg.sites.standby.instances[key].conn_id))
            shipped = inside_root(landing / plain_file_name(step.file_name), landing)
            header = read_backup_file(shipped)[-1]
            sql_path = sql_join(cfg.sites.standby.landing_path, step.file_name)
            if step.action == "seed":
                statement = tsql.restore_database(step.database, sql_path, moves=_moves(cfg, key, header),
                                                  replace=replace)
            else:
                statement = tsql.restore_log(step.database, sql_path)
            outcome = _run_restore(server, statement, step, sleep)
            session.save(session.state.with_database(
                step.database, last_restored_set=step.set_id, last_restored_mark=step.mark_name,
                last_restored_lsn=header.last_lsn, restored_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                **({"seeded_from_set": step.set_id} if step.action == "seed" else {})))
            done.append(f"set {step.set_id} {step.database}: {outcome}")
            log.info("standby: set %s %s: %s", step.set_id, step.database, outcome)
    finally:
        for server in servers.values():
            server.close()
    return done


def _run_restore(server: SqlServer, statement: str, step: StandbyStep, sleep: Callable[[float], None]) -> str:
    where = f"set {step.set_id} ({step.mark_name}), {step.database}, {step.file_name}"
    attempt = 0
    while True:
        try:
            server.run(statement, kind=CallKind.RESTORE)
            return "seeded WITH NORECOVERY" if step.action == "seed" else "log restored WITH NORECOVERY"
        except SqlServerError as exc:
            number = exc.number
            pauses = _RETRY_PAUSES.get(number, ())
            if attempt < len(pauses):
                log.warning("standby: %s: SQL Server error %s, retrying in %.0f s: %s", where, number,
                            pauses[attempt], exc)
                sleep(pauses[attempt])
                attempt += 1
                continue
            if number == 4326:
                return "already applied (4326): recorded"
            raise ShippingError([f"standby restore stopped at {where}: SQL Server error {number}: {exc}"],
                                advice=_advice(number), number=number) from exc


def _advice(number: int | None) -> str:
    return {
        4305: "The standby's chain has a gap: an earlier log backup was not restored. " + _RESEED,
        3117: "The standby database is not restoring any more (someone recovered it by hand?): it cannot take "
              "further logs. " + _RESEED,
        3101: "Sessions kept the standby database in use through the retries: find them (sp_who2) and end them; "
              "the next run continues.",
        3201: "The standby SQL Server cannot open the shipped file: check sites.standby.landing_path and the "
              "service account's permissions on it; the next run continues.",
        3203: "The standby SQL Server cannot read the shipped file: check the landing disk; the next run continues.",
    }.get(number or 0, "See the SQL Server error above; the next run continues from the last restored set.")


# ---------------------------------------------------------------------------------------------- status
def shipping_status(cfg: GroupConfig, sets: Sequence[BackupSet], state: StandbyState, now: dt.datetime,
                    *, source_reachable: bool = True) -> dict[str, Any]:
    """Per database: newest set at the source, newest shipped, newest restored; the mark a failover can
    reach; the data-loss window and the restore lag, with the health they give."""
    def shipped(row: HistoryRow) -> bool:
        return row_shipped(cfg, row)

    window: DataLossWindow = data_loss_window(sets, protected=lambda s: all(shipped(r) for r in s.rows),
                                              now=now, rpo=cfg.rpo)
    by_id = {s.set_id: s for s in sets}
    databases = []
    for database in (d.name for d in cfg.databases):
        at_source = next((s for s in reversed(sets) if s.complete and s.row_for(database)), None)
        newest_shipped = next((s for s in reversed(sets) if s.complete and (r := s.row_for(database)) and shipped(r)),
                              None)
        restored = state.of(database)
        restored_set = by_id.get(restored.last_restored_set or -1)
        restore_lag = (now - restored_set.backup_time).total_seconds() if restored_set else None
        databases.append({
            "name": database,
            "source_set": at_source.set_id if at_source else None,
            "shipped_set": newest_shipped.set_id if newest_shipped else None,
            "restored_set": restored.last_restored_set,
            "restored_mark": restored.last_restored_mark,
            "reachable_mark": window.mark_name,
            "data_loss_seconds": None if window.minutes is None else round(window.minutes * 60),
            "restore_lag_seconds": None if restore_lag is None else round(restore_lag),
        })
    return {
        "group": cfg.group.name,
        "health": window.level,
        "source_reachable": source_reachable,
        "reachable_mark": window.mark_name,
        "reachable_set": window.set_id,
        "data_loss_seconds": None if window.minutes is None else round(window.minutes * 60),
        "data_loss": window.describe(),
        "thresholds_minutes": {"warn": cfg.rpo.warn_minutes, "critical": cfg.rpo.critical_minutes},
        "databases": databases,
    }
