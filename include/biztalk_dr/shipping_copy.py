"""Copy a backup file to the standby landing folder so that a copy is either whole and proven, or absent.

The content hash (BLAKE3, ``content_hash``) is computed in the same read pass as the copy (no second read
of the source, which may be on a busy share); the copy is written under a temporary name, fsynced, checked at
the destination (size, and the hash of what is read back from the written file; the two hashes run on two
threads beside the copy, so the cost is one fast hash pass, not three steps), and only then renamed into place
(atomic on the same file system), with the folder fsynced so the rename survives a crash. A file
already in place with the expected hash is not copied again, so re-running a shipping task is cheap.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from biztalk_dr.content_hash import CHUNK_SIZE, DEFAULT_ALGORITHM, Algorithm, digest_of, new_hasher
from biztalk_dr.errors import BizTalkDrError
from biztalk_dr.paths import inside_root, plain_file_name

__all__ = ["CopyResult", "CopyVerificationError", "ship_file", "CHUNK_SIZE"]

_POOL = 4  # blocks in flight between the reader, the writer and the hash of what was read
_PARTIAL = ".partial"


class CopyVerificationError(BizTalkDrError):
    """The copy at the destination is not what was read from the source."""


@dataclass(frozen=True)
class CopyResult:
    destination: Path
    size: int
    digest: str  # hex, of ``algorithm``
    copied: bool  # False: an identical file was already in place
    seconds: float
    algorithm: Algorithm = DEFAULT_ALGORITHM


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ship_file(source: Path, landing_dir: Path, *, expected_digest: str | None = None,
              algorithm: Algorithm = DEFAULT_ALGORITHM, chunk_size: int = CHUNK_SIZE) -> CopyResult:
    """Copy ``source`` into ``landing_dir`` under the same name; see the module docstring.

    ``expected_digest`` (from an earlier manifest, of ``algorithm``) lets a re-run skip a file already in place.
    """
    start = time.perf_counter()
    landing_dir = Path(landing_dir)
    destination = inside_root(landing_dir / plain_file_name(Path(source).name), landing_dir)
    if expected_digest is not None and destination.is_file():
        digest, size = digest_of(destination, algorithm, chunk_size=chunk_size)
        if digest == expected_digest:
            return CopyResult(destination, size, digest, False, time.perf_counter() - start, algorithm)
        algorithm = DEFAULT_ALGORITHM  # a new copy is hashed with today's algorithm

    partial = destination.with_name(f".{destination.name}.{os.getpid()}{_PARTIAL}")
    try:
        size, read_digest, written_digest = _copy_hashing(source, partial, chunk_size, algorithm)
        source_size = os.stat(source).st_size
        if source_size != size:
            raise CopyVerificationError(f"{source} changed size while it was copied ({size} read, {source_size} now): "
                                        "it was still being written; ship it on the next run")
        written_size = os.stat(partial).st_size
        if written_size != size or written_digest != read_digest:
            raise CopyVerificationError(f"the copy of {source} at {partial} does not match what was read "
                                        f"({written_size} bytes, {algorithm} {written_digest[:12]}... vs {size} bytes, "
                                        f"{read_digest[:12]}...): disk or network fault")
        os.replace(partial, destination)
        _fsync_dir(destination.parent)
    finally:
        partial.unlink(missing_ok=True)
    return CopyResult(destination, size, read_digest, True, time.perf_counter() - start, algorithm)


def _copy_hashing(source: Path, partial: Path, chunk_size: int, algorithm: Algorithm) -> tuple[int, str, str]:
    """One read pass over ``source`` into a small pool of reused buffers: each block is written (this thread)
    and hashed (one thread), and what was written is read back from the file and hashed (another thread), so
    the two hashes run beside the copy. Returns (bytes, digest of what was read, digest of what the file holds
    after the writes). Memory: ``_POOL`` blocks."""
    read_hash, written_hash = new_hasher(algorithm), new_hasher(algorithm)
    free: queue.Queue = queue.Queue()
    for _ in range(_POOL):
        free.put(bytearray(chunk_size))
    to_hash: queue.Queue = queue.Queue()
    to_verify: queue.Queue = queue.Queue()
    failures: list[BaseException] = []

    def hash_read() -> None:
        try:
            while (item := to_hash.get()) is not None:
                buffer, n = item
                read_hash.update(memoryview(buffer)[:n])
                free.put(buffer)
        except BaseException as exc:  # reported after the join; keep draining so the producer never blocks
            failures.append(exc)
            while (item := to_hash.get()) is not None:
                free.put(item[0])

    size = 0
    with open(source, "rb", buffering=0) as src, open(partial, "w+b", buffering=0) as dst:
        fd = dst.fileno()

        def hash_written() -> None:
            back = bytearray(chunk_size)
            view = memoryview(back)
            try:
                while (item := to_verify.get()) is not None:
                    at, n = item
                    got = os.preadv(fd, [view[:n]], at)
                    written_hash.update(view[:got])
            except BaseException as exc:
                failures.append(exc)
                while to_verify.get() is not None:
                    pass

        workers = [threading.Thread(target=hash_read, daemon=True), threading.Thread(target=hash_written, daemon=True)]
        for worker in workers:
            worker.start()
        try:
            while True:
                buffer = free.get()
                n = src.readinto(buffer)
                if not n:
                    free.put(buffer)
                    break
                view = memoryview(buffer)[:n]
                while view:
                    view = view[os.write(fd, view):]
                to_hash.put((buffer, n))
                to_verify.put((size, n))
                size += n
            os.fsync(fd)
        finally:
            to_hash.put(None)
            to_verify.put(None)
            for worker in workers:
                worker.join()
    if failures:
        raise failures[0]
    return size, read_hash.hexdigest(), written_hash.hexdigest()
