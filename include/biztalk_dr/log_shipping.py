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
import errno
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from biztalk_dr import source_checks, tsql
from biztalk_dr.advice import advice
from biztalk_dr.backup_files import BackupSetHeader, read_backup_file
from biztalk_dr.backup_sets import BackupSet, HistoryRow, newest_complete_full
from biztalk_dr.config import GroupConfig
from biztalk_dr.content_hash import digest_of
from biztalk_dr.errors import (
    BackupFileError,
    BackupMediaDamaged,
    ChainGapError,
    CopyVerificationError,
    DriverError,
    LandingUnwritable,
    LogAlreadyApplied,
    PathOutsideRootError,
    ShippedFileDamaged,
    ShippingError,
    SourceUnverified,
    SqlConnectionError,
    SqlServerError,
)
from biztalk_dr.manifest import (
    Manifest,
    check_content,
    is_shipped_and_verified,
    manifest_path,
    read_manifest,
    shipped_header,
    write_manifest,
)
from biztalk_dr.paths import inside_root, plain_file_name, sql_join
from biztalk_dr.shipping_copy import ship_file
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
    "row_header",
    "row_source_failed",
    "ship_database_file",
    "quarantine",
    "quarantined_files",
    "Recopy",
]

log = logging.getLogger("biztalk_dr.log_shipping")

QUARANTINE_DIR = "quarantine"
# OSError numbers that mean "this folder cannot take the file" (as opposed to a bug)
_UNWRITABLE = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT}


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


def row_header(cfg: GroupConfig, row: HistoryRow) -> BackupSetHeader | None:
    """The header of this history row's shipped and verified file (its manifest's copy, or read from the file
    for a manifest written before manifests kept it); None when it is not shipped and verified."""
    try:
        return shipped_header(_landing(cfg), plain_file_name(row.base_name))
    except PathOutsideRootError:
        return None
    except BackupFileError as exc:  # an old manifest's file that cannot be read: not a file to plan with
        log.warning("%s: the shipped file's header cannot be read: %s", row.base_name, exc)
        return None


def row_source_failed(cfg: GroupConfig, row: HistoryRow) -> bool:
    """Whether the source file of this row failed its read-back when it was taken (never shipped)."""
    return source_checks.read_back_failure(_landing(cfg), row.base_name) is not None


# ---------------------------------------------------------------------------------------------- catalog
@dataclass(frozen=True)
class CatalogEntry:
    """What the primary's msdb says a backup file holds."""

    path: str
    database_name: str
    backup_type: Literal["FULL", "DIFF", "LOG"]
    first_lsn: int
    last_lsn: int


_CATALOG_TYPES: dict[str, Literal["FULL", "DIFF", "LOG"]] = {"D": "FULL", "I": "DIFF", "L": "LOG"}


def catalog_entries(server: SqlServer, paths: Iterable[str]) -> dict[str, CatalogEntry]:
    """msdb's record of each file, by the path SQL Server wrote it to (the newest set when a file holds several)."""
    wanted = sorted(set(paths))
    if not wanted:
        return {}
    entries = {}
    for row in server.query(tsql.backup_catalog(wanted)):
        kind = _CATALOG_TYPES.get(str(row["type"]).strip().upper())
        if kind is not None:
            entries[str(row["path"])] = CatalogEntry(str(row["path"]), str(row["database_name"]), kind,
                                                     int(row["first_lsn"]), int(row["last_lsn"]))
    return entries


# ---------------------------------------------------------------------------------------------- ship one file
def _mismatch(header: BackupSetHeader, row: HistoryRow, entry: CatalogEntry | None,
              previous: Manifest | None) -> tuple[str, bool]:
    """(why the landed file is not what the catalog says it is, whether that is a gap in the chain); empty
    when it is."""
    kind = "FULL" if row.backup_type == "db" else "LOG"
    if header.database_name.lower() != row.database_name.lower() or header.backup_type != kind:
        return (f"it holds a {header.backup_type} backup of {header.database_name}, not the {kind} backup of "
                f"{row.database_name} that adm_BackupHistory records"), False
    if entry is not None and (header.first_lsn, header.last_lsn) != (entry.first_lsn, entry.last_lsn):
        return (f"its LSN range {header.first_lsn}-{header.last_lsn} differs from msdb's "
                f"{entry.first_lsn}-{entry.last_lsn}"), False
    if kind == "LOG" and previous is not None and previous.last_lsn is not None \
            and header.first_lsn != previous.last_lsn:
        return (f"it starts at LSN {header.first_lsn} but the previous log backup of {row.database_name} "
                f"({previous.file_name}, set {previous.set_id}) ends at LSN {previous.last_lsn}: the chain has a gap"), True
    return "", False


def quarantine(landing: Path, path: Path, reason: str) -> Path:
    """Move a shipped file (and its manifest: it is no longer shipped and verified) into the quarantine folder,
    with the reason beside it. Nothing is deleted: the copy is kept for inspection."""
    folder = landing / QUARANTINE_DIR
    folder.mkdir(exist_ok=True)
    target = folder / f"{path.name}.{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}"
    shutil.move(str(path), target)
    manifest = manifest_path(landing, path.name)
    if manifest.exists():
        manifest.replace(target.with_name(target.name + ".manifest.json"))
    target.with_name(target.name + ".why.txt").write_text(reason + "\n", encoding="utf-8")
    log.warning("quarantined %s as %s: %s", path, target, reason)
    return target


def quarantined_files(landing: Path) -> dict[str, str]:
    """File name -> why, for every file in the quarantine folder (the newest reason per name)."""
    found: dict[str, str] = {}
    for why in sorted((landing / QUARANTINE_DIR).glob("*.why.txt")):
        name = why.name.removesuffix(".why.txt").rsplit(".", 1)[0]
        found[name] = why.read_text(encoding="utf-8", errors="replace").strip()
    return found


def _quarantine(cfg: GroupConfig, path: Path, reason: str) -> Path:
    return quarantine(_landing(cfg), path, reason)


def _unwritable(exc: OSError, landing: Path) -> bool:
    """The landing folder refused a write (full, read-only, permissions), as opposed to the source."""
    where = str(exc.filename or "")
    return exc.errno in _UNWRITABLE and (not where or where.startswith(str(landing)))


def ship_database_file(cfg: GroupConfig, bset: BackupSet, row: HistoryRow, *, entry: CatalogEntry | None,
                       previous: Manifest | None, source: Path) -> tuple[Manifest, str]:
    """Copy one backup file to the landing folder and prove it: whole (size and content hash at the destination),
    and what the catalog says (database, type, LSN range) continuing the previous log. A bad copy is
    quarantined and copied once more; a second failure raises ShippingError (the caller forces a full backup
    at the source). A source file that failed its read-back when taken is never shipped (SourceUnverified);
    a landing folder that cannot be written raises LandingUnwritable (nothing is lost: the source keeps the
    file). Returns the manifest and what was done, for the log."""
    landing = _landing(cfg)
    name = plain_file_name(row.base_name)
    where = f"set {bset.set_id} ({bset.mark_name}), {row.database_name}"
    failed_read_back = source_checks.read_back_failure(landing, name)
    if failed_read_back is not None:
        raise SourceUnverified([f"{where}: {row.sql_path} failed its read-back when it was taken ({failed_read_back}): "
                                "it is not shipped"], advice=advice("source_unverified"))
    if is_shipped_and_verified(landing, name):
        manifest = read_manifest(landing, name)
        assert manifest is not None
        return manifest, f"{name}: already shipped and verified ({manifest.verified_at})"
    if not source.is_file():
        raise ShippingError([f"{where}: the backup file is missing at the source: {source}"],
                            advice=advice("source_file_missing"))
    try:
        return _copy_and_prove(cfg, bset, row, entry, previous, source, landing, name, where)
    except OSError as exc:
        if _unwritable(exc, landing):
            raise LandingUnwritable([f"{where}: {name} cannot be written to the landing folder {landing}: "
                                     f"{exc.strerror or exc}"], advice=advice("landing_unwritable", path=landing)) from exc
        raise


def _copy_and_prove(cfg: GroupConfig, bset: BackupSet, row: HistoryRow, entry: CatalogEntry | None,
                    previous: Manifest | None, source: Path, landing: Path, name: str,
                    where: str) -> tuple[Manifest, str]:
    problem, gap = "", False
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
            problem, gap = _mismatch(header, row, entry, previous)
            if not problem:
                now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
                manifest = Manifest(
                    file_name=name, size=copied.size, sha256=copied.digest if copied.algorithm == "sha256" else None,
                    blake3=copied.digest if copied.algorithm == "blake3" else None, set_id=bset.set_id,
                    mark_name=bset.mark_name, database_name=row.database_name, backup_type=row.backup_type,
                    first_lsn=header.first_lsn, last_lsn=header.last_lsn, source_path=row.sql_path,
                    shipped_at=now, verified_at=now, backup_time=bset.backup_time.isoformat(),
                    header=header.as_json())
                write_manifest(landing, manifest)
                how = "copied" if copied.copied else "already in place"
                return manifest, (f"{name}: {how}, {copied.size} bytes, {copied.algorithm} {copied.digest[:12]}..., "
                                  f"{header.backup_type} LSN {header.first_lsn}-{header.last_lsn}"
                                  + (" (second copy)" if attempt == 2 else ""))
        _quarantine(cfg, copied.destination, problem)
    if gap:
        raise ChainGapError([f"{where}: {problem}"], advice=advice("chain_gap"))
    raise ShippingError([f"{where}: the copy of {row.sql_path} failed verification twice (quarantined in "
                         f"{landing / QUARANTINE_DIR}): {problem}"], advice=advice("copy_failed_twice"))


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


def _hold_last_log(ready: list[BackupSet], waiting: BackupSet, notes: list[str]) -> None:
    """Restores stop before ``waiting``, a set not shipped and verified yet (it may complete between this run's
    shipping and its restore): the last log set before it holds the newest mark a failover can reach until it
    arrives, so it is held back too, as before a partial set (restoring it would pass that mark, leaving none)."""
    if ready and ready[-1].kind == "log":
        kept = ready.pop()
        notes.append(f"set {kept.set_id} ({kept.mark_name}) is held back as well: set {waiting.set_id} is not at "
                     "the standby yet, so its mark is the newest one a failover can reach")


def plan_standby_restores(sets: Sequence[BackupSet], state: StandbyState, databases: Sequence[str],
                          shipped: Callable[[HistoryRow], bool],
                          source_failed: Callable[[HistoryRow], bool] = lambda row: False) -> StandbyPlan:
    """The restores that bring every standby database to the set before the newest complete one, set by
    set. Only sets whose every file is shipped and verified count, and restores stop before a set that is
    not (a set is never skipped) and before a partial set (its successful backups moved the log chains on,
    so no later log set applies: the standby needs a re-seed from a later full set). A set with a file that
    failed its read-back at the source (``source_failed``) is as broken as a partial set: it is never shipped."""
    complete = [s for s in sets if s.complete]
    if not complete:
        return StandbyPlan((), ("no complete backup set yet",))
    # the newest complete set whose every file passed its read-back at the source: a damaged newest set must not
    # make the standby restore the set before it (that set's mark would then be passed, with none left to reach)
    hold = next((s for s in reversed(complete) if not any(source_failed(r) for r in s.rows)), complete[-1])
    notes = [f"set {hold.set_id} ({hold.mark_name}) is held back: the newest complete set is applied at "
             "failover, to its mark"]
    first = plan_shipping(sets, state, databases).start_set_id or hold.set_id
    ready: list[BackupSet] = []
    blocked = ""
    for bset in sets:
        if bset.set_id < first or bset.set_id >= hold.set_id:
            continue
        bad_source = [r.database_name for r in bset.rows if source_failed(r)] if bset.complete else []
        if not bset.complete or bad_source:
            later_full = next((s for s in complete if s.set_id > bset.set_id and s.kind == "full"), None)
            what = "is partial" if not bad_source else (f"has a file that failed its read-back at the source "
                                                        f"({', '.join(bad_source)})")
            notes.append(f"set {bset.set_id} ({bset.mark_name}) {what}: restores stop before it")
            if later_full is not None:
                blocked = (f"set {bset.set_id} ({bset.mark_name}) {what}, so no later log set applies to the "
                           f"standby; full set {later_full.set_id} ({later_full.mark_name}) was taken since")
            else:
                notes.append(f"waiting for the full backup set requested when set {bset.set_id} failed")
            # no log after this set applies: restoring the last log set before it would pass the newest mark a
            # failover can still reach (issue 15): it is held back too
            if ready and ready[-1].kind == "log":
                kept = ready.pop()
                notes.append(f"set {kept.set_id} ({kept.mark_name}) is held back as well: with set {bset.set_id} "
                             "broken after it, its mark is the newest one a failover can reach")
            break
        if not all(shipped(r) for r in bset.rows):
            notes.append(f"set {bset.set_id} ({bset.mark_name}) is not shipped and verified yet: restores stop "
                         "before it")
            _hold_last_log(ready, bset, notes)
            break
        ready.append(bset)
    else:
        if not all(shipped(r) for r in hold.rows):  # completed after this run shipped: not at the standby yet
            _hold_last_log(ready, hold, notes)
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
    return tsql.move_files(header.files, data_folder=inst.data_path, log_folder=inst.log_path)


Recopy = Callable[[StandbyStep], None]  # ships the step's file again from the source (raises when it cannot)


def restore_on_standby(cfg: GroupConfig, steps: Sequence[StandbyStep], session: Any, *, replace: bool = False,
                       connect: Callable[[str], SqlServer] = SqlServer,
                       sleep: Callable[[float], None] = time.sleep, recopy: Recopy | None = None) -> list[str]:
    """Run the steps in order under the standby lock, recording each one as it completes; stops at the first
    step that cannot be done (the later sets wait for the next run).

    Before each restore the shipped file is hashed again against its manifest; a copy that changed, or that
    SQL Server finds damaged (3203, 3241, 3242, 3183, 3189), is quarantined and copied once more from the
    source (``recopy``) — never retried as it is. SQL Server's other errors by number: 4326 already applied
    (recorded, go on); 4305 a gap and 3117 a recovered database (stop, re-seed); 3201 retried, then stop; 3101
    waits for the sessions to end, then stop. ``replace`` (re-seed only) restores the full sets WITH REPLACE
    over what the standby has."""
    done: list[str] = []
    servers: dict[str, SqlServer] = {}
    try:
        for step in steps:
            database = next(d for d in cfg.databases if d.name == step.database)
            key = cfg.instance_of(database, "standby")
            header = verified_copy(cfg, step, recopy)
            sql_path = sql_join(cfg.sites.standby.landing_path, step.file_name)
            seed = step.action == "seed"
            statement = tsql.restore_statement(step.database, sql_path, log=not seed,
                                               moves=_moves(cfg, key, header) if seed else (),
                                               replace=replace and seed)
            try:
                server = servers.get(key) or servers.setdefault(key, connect(cfg.sites.standby.instances[key].conn_id))
                try:
                    outcome = _run_restore(server, statement, step, sleep)
                except BackupMediaDamaged as exc:  # the bytes match the manifest: the restore of a fresh copy decides
                    header = replace_damaged(cfg, step, recopy, f"SQL Server error {exc.number} on restore: {exc.text}",
                                             found_by="sql")
                    try:
                        outcome = _run_restore(server, statement, step, sleep) + " (from a second copy)"
                    except BackupMediaDamaged as again:
                        target = _quarantine(cfg, _shipped_path(cfg, step.file_name),
                                             f"SQL Server error {again.number} again on a fresh copy: {again.text}")
                        raise ShippedFileDamaged(
                            [f"standby restore stopped at {_where(step)}: the fresh copy is damaged too "
                             f"(SQL Server error {again.number})"], number=again.number, file_name=step.file_name,
                            quarantined=str(target), source_bad=True) from again
            except SqlConnectionError as exc:
                raise ShippingError([f"standby restore stopped at {_where(step)}: {exc}"],
                                    advice=advice("standby_unreachable"), number=exc.number) from exc
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


def _where(step: StandbyStep) -> str:
    return f"set {step.set_id} ({step.mark_name}), {step.database}, {step.file_name}"


def _shipped_path(cfg: GroupConfig, file_name: str) -> Path:
    return inside_root(_landing(cfg) / plain_file_name(file_name), _landing(cfg))


def verified_copy(cfg: GroupConfig, step: StandbyStep, recopy: Recopy | None) -> BackupSetHeader:
    """The header of the step's shipped file, after its whole content was hashed again and matched its
    manifest; a copy that does not match is replaced (``replace_damaged``) or the step stops."""
    check = check_content(_landing(cfg), step.file_name)
    if check.ok:
        try:
            return read_backup_file(_shipped_path(cfg, step.file_name))[-1]
        except BackupFileError as exc:
            return replace_damaged(cfg, step, recopy, f"unreadable although its hash matches: {exc.reason}",
                                   found_by="reader")
    if check.outcome == "no_manifest":
        raise ShippingError([f"{_where(step)}: the file is not shipped and verified ({check.detail})"],
                            advice=advice("restore_other"))
    return replace_damaged(cfg, step, recopy, f"content check before restore failed: {check.detail}",
                           found_by="hash")


def replace_damaged(cfg: GroupConfig, step: StandbyStep, recopy: Recopy | None, reason: str, *,
                    found_by: Literal["hash", "reader", "sql"]) -> BackupSetHeader:
    """Quarantine the step's shipped copy and copy it once more from the source; the header of the fresh copy.
    ``found_by`` says what found the damage, and so what the fresh copy proves (ShippedFileDamaged with
    source_bad=True):

    - ``hash``: the copy changed since shipping; a fresh copy that differs from what was shipped and verified
      proves the source changed too;
    - ``reader``: the backup-file reader cannot read bytes that match the manifest; a fresh copy with the same
      bytes is as unreadable: the source is damaged;
    - ``sql``: SQL Server's RESTORE found bytes that match the manifest damaged (3183, 3241...); whether the
      source is damaged is for the restore of the fresh copy to decide (the caller restores it once more; a
      second damage error proves it), so a transient read error does not cost a re-seed."""
    landing = _landing(cfg)
    path = _shipped_path(cfg, step.file_name)
    before = read_manifest(landing, step.file_name)
    target = _quarantine(cfg, path, reason) if path.exists() else None
    if before is not None and target is None:
        manifest_path(landing, step.file_name).unlink(missing_ok=True)
    where = _where(step)
    kept = str(target or "(the file was gone)")
    if recopy is None:
        raise ShippedFileDamaged([f"{where}: {reason}"], file_name=step.file_name, quarantined=kept,
                                 advice=advice("shipped_copy_quarantined", quarantine=kept,
                                               why="this step does not copy from the source"))
    try:
        recopy(step)
    except (ShippingError, SqlServerError, OSError) as exc:
        raise ShippedFileDamaged([f"{where}: {reason}; copying it again failed: {exc}"], file_name=step.file_name,
                                 quarantined=kept, source_bad=isinstance(exc, ShippingError) and not isinstance(
                                     exc, LandingUnwritable),
                                 advice=advice("shipped_copy_quarantined", quarantine=kept, why=exc)) from exc
    if before is not None and found_by != "sql":
        algorithm, expected = before.digest
        same = digest_of(path, algorithm)[0] == expected
        if same == (found_by == "reader"):
            second = _quarantine(cfg, path, f"copied again from the source: {'the same damaged bytes' if same else 'it differs from what was shipped and verified'}")
            raise ShippedFileDamaged([f"{where}: {reason}; the source file is damaged too ("
                                      f"{'the same bytes' if same else 'it changed since it was shipped'})"],
                                     file_name=step.file_name, quarantined=str(second), source_bad=True)
    log.warning("standby: %s: %s; copied again from the source (damaged copy kept in %s)", where, reason, kept)
    return read_backup_file(path)[-1]


def _run_restore(server: SqlServer, statement: str, step: StandbyStep, sleep: Callable[[float], None]) -> str:
    """One RESTORE with the retries its error class allows (``restore_retry_pauses``: damaged media is never
    retried, it is quarantined); damaged media and connection errors go to the caller as they are
    (BackupMediaDamaged, SqlConnectionError), a log already applied is recorded, the rest is a ShippingError with
    the advice of its class (``restore_advice_key``)."""
    attempt = 0
    while True:
        try:
            server.run(statement, kind=CallKind.RESTORE)
            return "seeded WITH NORECOVERY" if step.action == "seed" else "log restored WITH NORECOVERY"
        except (BackupMediaDamaged, SqlConnectionError):
            raise
        except LogAlreadyApplied:
            return "already applied (4326): recorded"
        except SqlServerError as exc:
            pauses = exc.restore_retry_pauses
            if attempt < len(pauses):
                log.warning("standby: %s: SQL Server error %s, retrying in %.0f s: %s", _where(step), exc.number,
                            pauses[attempt], exc)
                sleep(pauses[attempt])
                attempt += 1
                continue
            # a DriverError: no SQL Server answered (it went away mid-restore), so no SQL Server error number to name
            said = "" if isinstance(exc, DriverError) else f"SQL Server error {exc.number}: "
            raise ShippingError([f"standby restore stopped at {_where(step)}: {said}{exc}"],
                                advice=advice(exc.restore_advice_key), number=exc.number) from exc
