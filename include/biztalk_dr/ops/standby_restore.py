"""Restoring the standby site, set by set WITH NORECOVERY, from its own verified copies: the RESTOREs of a
``log_shipping.StandbyPlan``, each shipped file hashed again first, a damaged copy quarantined and copied once more.
Its I/O comes in as arguments: the SQL Server connection (``connect``), the pause between retries (``sleep``) and
the copy from the source (``recopy``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from biztalk_dr.backup_files import BackupSetHeader, read_backup_file
from biztalk_dr.domain import tsql
from biztalk_dr.domain.advice import advice
from biztalk_dr.domain.config import GroupConfig
from biztalk_dr.domain.errors import (
    BackupFileError,
    BackupMediaDamaged,
    DriverError,
    LandingUnwritable,
    LogAlreadyApplied,
    ShippedFileDamaged,
    ShippingError,
    SqlConnectionError,
    SqlServerError,
)
from biztalk_dr.domain.log_shipping import StandbyStep
from biztalk_dr.domain.paths import inside_root, plain_file_name, sql_join
from biztalk_dr.ops.content_hash import digest_of
from biztalk_dr.ops.manifest import check_content, manifest_path, read_manifest
from biztalk_dr.ops.shipped_files import landing_of, quarantine_shipped
from biztalk_dr.ops.sqlserver import CallKind, SqlServer

__all__ = ["Recopy", "replace_damaged", "restore_on_standby", "verified_copy"]

log = logging.getLogger("biztalk_dr.domain.log_shipping")


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
                        target = quarantine_shipped(cfg, _shipped_path(cfg, step.file_name),
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
    return inside_root(landing_of(cfg) / plain_file_name(file_name), landing_of(cfg))


def verified_copy(cfg: GroupConfig, step: StandbyStep, recopy: Recopy | None) -> BackupSetHeader:
    """The header of the step's shipped file, after its whole content was hashed again and matched its
    manifest; a copy that does not match is replaced (``replace_damaged``) or the step stops."""
    check = check_content(landing_of(cfg), step.file_name)
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
    landing = landing_of(cfg)
    path = _shipped_path(cfg, step.file_name)
    before = read_manifest(landing, step.file_name)
    target = quarantine_shipped(cfg, path, reason) if path.exists() else None
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
            second = quarantine_shipped(cfg, path, f"copied again from the source: {'the same damaged bytes' if same else 'it differs from what was shipped and verified'}")
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
