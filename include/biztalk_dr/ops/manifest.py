"""The manifest written beside every shipped backup file at the standby site.

It is the standby site's own record of what a file is — without the primary, at 3 a.m. — and the
proof the source may delete its copy: ``verified_at`` is set only after the copy's size and content hash
matched and the backup-file reader confirmed database, type and LSN range against the catalog.
Written atomically (atomic_files: temporary file, fsync, rename, fsync of the folder), so a manifest is either whole or absent.

Two checks, for two costs: ``is_shipped_and_verified`` (manifest and size: cheap, for plans and status over
thousands of files) and ``check_content`` (the whole file hashed again and compared with the manifest: before
any restore reads the file, so a byte flipped since shipping is caught). New manifests record BLAKE3
(``blake3``); those written before record SHA-256 (``sha256``) and keep verifying with it.

New manifests also keep the backup set's header as the backup-file reader read it at shipping (``header``:
``RESTORE HEADERONLY``'s identity — FamilyGUID, BackupSetGUID, RecoveryForkID and the fork point, First/Last
LSN...), so the restore planner plans from the landing folder without reading every file again
(``shipped_header``); for a manifest written before, the file itself is read.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from biztalk_dr.backup_files import BackupSetHeader, read_backup_file
from biztalk_dr.domain.errors import PathOutsideRootError
from biztalk_dr.domain.paths import inside_root, plain_file_name
from biztalk_dr.ops.atomic_files import move_durably, write_json_atomically
from biztalk_dr.ops.content_hash import Algorithm, digest_of

__all__ = ["Manifest", "MANIFEST_SUFFIX", "RETIRED_DIR", "manifest_path", "read_manifest", "write_manifest",
           "is_shipped_and_verified", "ContentCheck", "check_content", "remove_manifest", "retire_manifest",
           "retired_path", "shipped_header", "was_retired"]

MANIFEST_SUFFIX = ".manifest.json"
RETIRED_DIR = ".biztalk-dr/retired"  # the manifests of files standby retention deleted (dr_standby_retention)


@dataclass(frozen=True)
class Manifest:
    file_name: str
    size: int
    sha256: str | None  # manifests written before issue 15; None in new ones (they record blake3)
    set_id: int
    mark_name: str
    database_name: str
    backup_type: str  # "db" or "lg", as in adm_BackupHistory
    first_lsn: int | None
    last_lsn: int | None
    source_path: str  # as SQL Server on the primary knows it
    shipped_at: str  # ISO 8601, UTC
    verified_at: str | None = None
    backup_time: str | None = None  # the set's BackupDateTime (the history's clock): what a failover recovers to
    blake3: str | None = None
    header: dict[str, Any] | None = None  # BackupSetHeader.as_json() of the set in the file; None before issue 16

    @property
    def digest(self) -> tuple[Algorithm, str]:
        """(algorithm, hex digest) the file is verified against."""
        if self.blake3:
            return "blake3", self.blake3
        if self.sha256:
            return "sha256", self.sha256
        raise ValueError(f"the manifest of {self.file_name} records no content hash")


def manifest_path(landing_dir: str | Path, file_name: str) -> Path:
    return inside_root(Path(landing_dir) / (plain_file_name(file_name) + MANIFEST_SUFFIX), landing_dir)


def read_manifest(landing_dir: str | Path, file_name: str) -> Manifest | None:
    path = manifest_path(landing_dir, file_name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    known = Manifest.__dataclass_fields__
    return Manifest(**{k: v for k, v in data.items() if k in known})  # a field a later version adds is not an error


def write_manifest(landing_dir: str | Path, manifest: Manifest) -> Path:
    path = manifest_path(landing_dir, manifest.file_name)
    return write_json_atomically(path, asdict(manifest), sort_keys=True)


def is_shipped_and_verified(landing_dir: str | Path, file_name: str) -> bool:
    """A verified manifest and the file beside it with the recorded size."""
    manifest = read_manifest(landing_dir, file_name)
    if manifest is None or manifest.verified_at is None:
        return False
    shipped = inside_root(Path(landing_dir) / plain_file_name(file_name), landing_dir)
    try:
        return shipped.stat().st_size == manifest.size
    except FileNotFoundError:
        return False


def shipped_header(landing_dir: str | Path, file_name: str) -> BackupSetHeader | None:
    """The header of the backup set in a shipped and verified file, at its place in the landing folder: the
    manifest's (written at shipping from the file itself), or, for a manifest written before manifests kept it,
    read from the file. None when the file is not shipped and verified."""
    if not is_shipped_and_verified(landing_dir, file_name):
        return None
    manifest = read_manifest(landing_dir, file_name)
    assert manifest is not None
    path = Path(landing_dir) / plain_file_name(file_name)  # as the caller names the folder (inside it: checked)
    if manifest.header is not None:
        return BackupSetHeader.from_json(manifest.header, str(path))
    return read_backup_file(path)[-1]


def remove_manifest(landing_dir: str | Path, file_name: str) -> None:
    """The file is no longer shipped and verified (it was quarantined): its manifest goes."""
    manifest_path(landing_dir, file_name).unlink(missing_ok=True)


def retired_path(landing_dir: str | Path, file_name: str) -> Path:
    return inside_root(Path(landing_dir) / RETIRED_DIR / (plain_file_name(file_name) + MANIFEST_SUFFIX), landing_dir)


def retire_manifest(landing_dir: str | Path, file_name: str) -> Path:
    """The first step of deleting a shipped file at the standby site: its manifest moves (one rename) to the
    retired folder, so from this moment nothing trusts the file — whatever happens next — and the move is the
    record that it was shipped and verified, and deleted on purpose. Its time is the moment of retirement."""
    target = retired_path(landing_dir, file_name)
    target.parent.mkdir(parents=True, exist_ok=True)
    move_durably(manifest_path(landing_dir, file_name), target)
    os.utime(target)
    return target


def was_retired(landing_dir: str | Path, file_name: str) -> bool:
    """Shipped and verified once, then deleted at the standby site by its retention (which found nothing that
    still needs it)."""
    try:
        return retired_path(landing_dir, file_name).exists()
    except PathOutsideRootError:
        return False


@dataclass(frozen=True)
class ContentCheck:
    """The outcome of hashing a shipped file again against its manifest."""

    file_name: str
    outcome: Literal["ok", "missing", "no_manifest", "size", "digest"]
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def check_content(landing_dir: str | Path, file_name: str) -> ContentCheck:
    """The shipped file is byte for byte what was verified at shipping: same size, same content hash."""
    manifest = read_manifest(landing_dir, file_name)
    if manifest is None or manifest.verified_at is None:
        return ContentCheck(file_name, "no_manifest", "no verified manifest")
    path = inside_root(Path(landing_dir) / plain_file_name(file_name), landing_dir)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return ContentCheck(file_name, "missing", f"{path} is gone (its manifest is there)")
    if size != manifest.size:
        return ContentCheck(file_name, "size", f"{path} has {size} bytes, the manifest {manifest.size}")
    algorithm, expected = manifest.digest
    digest, _ = digest_of(path, algorithm)
    if digest != expected:
        return ContentCheck(file_name, "digest", f"{path}: {algorithm} {digest[:16]}... differs from the manifest's "
                                                 f"{expected[:16]}...: the file changed since it was shipped")
    return ContentCheck(file_name, "ok")
