"""Shipped files at the standby site: copying a backup file to the landing folder and proving it (whole, and
what the primary's catalog says it holds), quarantining a bad copy, and what is shipped and verified. The
checks are ``log_shipping``'s; the I/O (the file system, the SQL Server asked for the catalog) is here.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import shutil
from collections.abc import Iterable
from pathlib import Path

from biztalk_dr.backup_files import BackupSetHeader, read_backup_file
from biztalk_dr.domain import tsql
from biztalk_dr.domain.advice import advice
from biztalk_dr.domain.backup_sets import BackupSet, HistoryRow
from biztalk_dr.domain.config import GroupConfig
from biztalk_dr.domain.errors import (
    BackupFileError,
    ChainGapError,
    CopyVerificationError,
    LandingUnwritable,
    PathOutsideRootError,
    ShippingError,
    SourceUnverified,
)
from biztalk_dr.domain.log_shipping import CatalogEntry, catalog_from_rows, landed_mismatch
from biztalk_dr.domain.paths import plain_file_name
from biztalk_dr.ops import source_checks
from biztalk_dr.ops.manifest import (
    Manifest,
    is_shipped_and_verified,
    manifest_path,
    read_manifest,
    shipped_header,
    write_manifest,
)
from biztalk_dr.ops.shipping_copy import ship_file
from biztalk_dr.ops.sqlserver import SqlServer

__all__ = ["QUARANTINE_DIR", "catalog_entries", "landing_of", "quarantine", "quarantine_shipped", "quarantined_files", "row_header",
           "row_shipped", "row_source_failed", "ship_database_file"]

log = logging.getLogger("biztalk_dr.domain.log_shipping")

QUARANTINE_DIR = "quarantine"
# OSError numbers that mean "this folder cannot take the file" (as opposed to a bug)
_UNWRITABLE = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT}


def landing_of(cfg: GroupConfig) -> Path:
    return Path(cfg.sites.standby.landing_dir)


def row_shipped(cfg: GroupConfig, row: HistoryRow) -> bool:
    """Whether the file of this history row is shipped and verified at the standby site (a name that would
    leave the landing folder never is)."""
    try:
        return is_shipped_and_verified(landing_of(cfg), plain_file_name(row.base_name))
    except PathOutsideRootError:
        return False


def row_header(cfg: GroupConfig, row: HistoryRow) -> BackupSetHeader | None:
    """The header of this history row's shipped and verified file (its manifest's copy, or read from the file
    for a manifest written before manifests kept it); None when it is not shipped and verified."""
    try:
        return shipped_header(landing_of(cfg), plain_file_name(row.base_name))
    except PathOutsideRootError:
        return None
    except BackupFileError as exc:  # an old manifest's file that cannot be read: not a file to plan with
        log.warning("%s: the shipped file's header cannot be read: %s", row.base_name, exc)
        return None


def row_source_failed(cfg: GroupConfig, row: HistoryRow) -> bool:
    """Whether the source file of this row failed its read-back when it was taken (never shipped)."""
    return source_checks.read_back_failure(landing_of(cfg), row.base_name) is not None

def catalog_entries(server: SqlServer, paths: Iterable[str]) -> dict[str, CatalogEntry]:
    """msdb's record of each file, by the path SQL Server wrote it to (the newest set when a file holds several)."""
    wanted = sorted(set(paths))
    return catalog_from_rows(server.query(tsql.backup_catalog(wanted))) if wanted else {}


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


def quarantine_shipped(cfg: GroupConfig, path: Path, reason: str) -> Path:
    return quarantine(landing_of(cfg), path, reason)


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
    landing = landing_of(cfg)
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
            problem, gap = landed_mismatch(header, row, entry, previous)
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
        quarantine_shipped(cfg, copied.destination, problem)
    if gap:
        raise ChainGapError([f"{where}: {problem}"], advice=advice("chain_gap"))
    raise ShippingError([f"{where}: the copy of {row.sql_path} failed verification twice (quarantined in "
                         f"{landing / QUARANTINE_DIR}): {problem}"], advice=advice("copy_failed_twice"))
