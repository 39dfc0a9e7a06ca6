"""The manifest written beside every shipped backup file at the standby site.

It is the standby site's own record of what a file is — without the primary, at 3 a.m. — and the
proof the source may delete its copy: ``verified_at`` is set only after the copy's size and SHA-256
matched and the backup-file reader confirmed database, type and LSN range against the catalog.
Written atomically (temporary file, fsync, rename), so a manifest is either whole or absent.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from biztalk_dr.paths import inside_root, plain_file_name

__all__ = ["Manifest", "MANIFEST_SUFFIX", "manifest_path", "read_manifest", "write_manifest", "is_shipped_and_verified"]

MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True)
class Manifest:
    file_name: str
    size: int
    sha256: str
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


def manifest_path(landing_dir: str | Path, file_name: str) -> Path:
    return inside_root(Path(landing_dir) / (plain_file_name(file_name) + MANIFEST_SUFFIX), landing_dir)


def read_manifest(landing_dir: str | Path, file_name: str) -> Manifest | None:
    path = manifest_path(landing_dir, file_name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return Manifest(**data)


def write_manifest(landing_dir: str | Path, manifest: Manifest) -> Path:
    path = manifest_path(landing_dir, manifest.file_name)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=MANIFEST_SUFFIX)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(manifest), fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
