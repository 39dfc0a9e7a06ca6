"""Copy a backup file to the standby landing folder so that a copy is either whole and proven, or absent.

The SHA-256 is computed in the same read pass as the copy (no second read of the source, which
may be on a busy share); the copy is written under a temporary name, fsynced, checked at the
destination (size, and the hash read back from the written file), and only then renamed into place
(atomic on the same file system), with the folder fsynced so the rename survives a crash. A file
already in place with the expected hash is not copied again, so re-running a shipping task is cheap.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from biztalk_dr.errors import BizTalkDrError
from biztalk_dr.paths import inside_root, plain_file_name

__all__ = ["CopyResult", "CopyVerificationError", "ship_file", "sha256_of", "CHUNK_SIZE"]

CHUNK_SIZE = 4 * 1024 * 1024
_PARTIAL = ".partial"


class CopyVerificationError(BizTalkDrError):
    """The copy at the destination is not what was read from the source."""


@dataclass(frozen=True)
class CopyResult:
    destination: Path
    size: int
    sha256: str
    copied: bool  # False: an identical file was already in place
    seconds: float


def sha256_of(path: Path, *, chunk_size: int = CHUNK_SIZE) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ship_file(source: Path, landing_dir: Path, *, expected_sha256: str | None = None,
              chunk_size: int = CHUNK_SIZE) -> CopyResult:
    """Copy ``source`` into ``landing_dir`` under the same name; see the module docstring.

    ``expected_sha256`` (from an earlier manifest) lets a re-run skip a file already in place.
    """
    start = time.perf_counter()
    landing_dir = Path(landing_dir)
    destination = inside_root(landing_dir / plain_file_name(Path(source).name), landing_dir)
    if expected_sha256 is not None and destination.is_file():
        digest, size = sha256_of(destination, chunk_size=chunk_size)
        if digest == expected_sha256:
            return CopyResult(destination, size, digest, False, time.perf_counter() - start)

    partial = destination.with_name(f".{destination.name}.{os.getpid()}{_PARTIAL}")
    digest = hashlib.sha256()
    size = 0
    try:
        with open(source, "rb") as src, open(partial, "wb") as dst:
            while block := src.read(chunk_size):
                digest.update(block)
                dst.write(block)
                size += len(block)
            dst.flush()
            os.fsync(dst.fileno())
        source_size = os.stat(source).st_size
        if source_size != size:
            raise CopyVerificationError(f"{source} changed size while it was copied ({size} read, {source_size} now): "
                                        "it was still being written; ship it on the next run")
        written, written_size = sha256_of(partial, chunk_size=chunk_size)
        if written_size != size or written != digest.hexdigest():
            raise CopyVerificationError(f"the copy of {source} at {partial} does not match what was read "
                                        f"({written_size} bytes, sha256 {written[:12]}... vs {size} bytes, "
                                        f"{digest.hexdigest()[:12]}...): disk or network fault")
        os.replace(partial, destination)
        _fsync_dir(destination.parent)
    finally:
        partial.unlink(missing_ok=True)
    return CopyResult(destination, size, digest.hexdigest(), True, time.perf_counter() - start)
