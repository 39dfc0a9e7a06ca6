"""Copy a backup file to the standby landing folder so that a copy is either whole and proven, or absent.

The copy is the kernel's (``copy_file_range``, else ``sendfile``: no user-space pass over the bytes, as ``cp``),
in pieces. Beside it, on other threads, the content hash (BLAKE3, ``content_hash``) of the **source** (mapped,
read as SQL Server wrote it) and of the **destination** (mapped, read back as written) trail the copy piece by
piece, and writeback of the copied pieces starts at once (``sync_file_range`` per piece on a third thread), so the
final ``fsync`` only has the tail to write. The copy counts only when both hashes and the sizes agree: it proves
the landing file holds the bytes the source file held when it was read (through the page cache; what is on the
landing disk is hashed again from disk before each restore, ``manifest.check_content``). Written under a
temporary name, fsynced, then renamed into place (atomic on the same file system), with the folder fsynced so the
rename survives a crash. A file already in place with the expected hash is not copied again, so re-running a
shipping task is cheap. ``benchmarks/bench_shipping_copy.py`` measures it against ``shutil.copyfile`` + fsync.
"""

from __future__ import annotations

import errno
import mmap
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from biztalk_dr.domain.errors import CopyVerificationError
from biztalk_dr.domain.paths import inside_root, plain_file_name
from biztalk_dr.ops.atomic_files import fsync_folder
from biztalk_dr.ops.content_hash import CHUNK_SIZE, DEFAULT_ALGORITHM, Algorithm, digest_of, new_hasher

__all__ = ["CopyResult", "ship_file", "CHUNK_SIZE"]

_PARTIAL = ".partial"




@dataclass(frozen=True)
class CopyResult:
    destination: Path
    size: int
    digest: str  # hex, of ``algorithm``
    copied: bool  # False: an identical file was already in place
    seconds: float
    algorithm: Algorithm = DEFAULT_ALGORITHM


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
        fsync_folder(destination.parent)
    finally:
        partial.unlink(missing_ok=True)
    return CopyResult(destination, size, read_digest, True, time.perf_counter() - start, algorithm)


def _copy_hashing(source: Path, partial: Path, chunk_size: int, algorithm: Algorithm) -> tuple[int, str, str]:
    """The kernel copies ``source`` into ``partial`` piece by piece; threads hash each piece of the source and of
    the destination as it is copied, and start its writeback. Returns (bytes, digest of the source, digest of the
    destination as written); the destination is fsynced."""
    piece = max(chunk_size, _PIECE)
    with open(source, "rb", buffering=0) as src, open(partial, "w+b", buffering=0) as dst:
        sfd, dfd = src.fileno(), dst.fileno()
        size = os.fstat(sfd).st_size
        os.ftruncate(dfd, size)  # the whole length at once, so the destination can be mapped before it is filled
        read_hash, written_hash = new_hasher(algorithm), new_hasher(algorithm)
        trailing = _Trailing([_hash_of(sfd, size, read_hash, guard=True), _hash_of(dfd, size, written_hash),
                              _writeback(dfd)])
        copied = 0
        try:
            copy = _kernel_copy(sfd, dfd)
            while copied < size:
                n = copy(copied, min(piece, size - copied))
                if n == 0:  # the file shrank while it was copied
                    break
                copied += n
                trailing.done_to(copied)
        finally:
            trailing.close()
        if copied < size:
            os.ftruncate(dfd, copied)
        os.fsync(dfd)
    return copied, read_hash.hexdigest(), written_hash.hexdigest()


_PIECE = 32 * 1024 * 1024  # what the kernel copies before the hashes and the writeback of it start


def _writeback(fd: int) -> Callable[[int, int], None]:
    """Starts the writeback of a copied range without waiting for it (Linux ``sync_file_range`` with
    SYNC_FILE_RANGE_WRITE: no journal commit, unlike an fdatasync per piece), so the disk writes while the kernel
    copies the next pieces; elsewhere, nothing (the final fsync writes everything)."""
    sync_file_range = _sync_file_range()
    if sync_file_range is None:
        return lambda start, end: None
    return lambda start, end: sync_file_range(fd, start, end - start, _SYNC_FILE_RANGE_WRITE)


_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>


def _sync_file_range():
    """libc's sync_file_range (the os module has none), or None where there is none."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


def _kernel_copy(sfd: int, dfd: int) -> Callable[[int, int], int]:
    """``copy(offset, count)`` -> bytes copied at ``offset`` (same offset in both files): ``copy_file_range``, else
    ``sendfile`` (another file system, an old kernel), else read/write."""
    how = {"call": "copy_file_range"}

    def copy(offset: int, count: int) -> int:
        if how["call"] == "copy_file_range":
            try:
                return os.copy_file_range(sfd, dfd, count, offset, offset)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                how["call"] = "sendfile"
        if how["call"] == "sendfile":
            try:
                os.lseek(dfd, offset, os.SEEK_SET)
                return os.sendfile(dfd, sfd, offset, count)
            except OSError as exc:
                if exc.errno not in (errno.ENOSYS, errno.EINVAL):
                    raise
                how["call"] = "pread"
        data = os.pread(sfd, count, offset)
        view = memoryview(data)
        at = offset
        while view:
            written = os.pwrite(dfd, view, at)
            view, at = view[written:], at + written
        return len(data)

    return copy


def _hash_of(fd: int, size: int, hasher, *, guard: bool = False) -> Callable[[int, int], None]:
    """Hashes ``[start, end)`` of the file, mapped (no copy into Python; the hash releases the GIL). ``guard`` (the
    source, which another process could cut short): a range past its end now is not read (a mapped page past the
    end of a file would kill the process); the copy then fails its size check."""
    if size == 0:
        return lambda start, end: None
    mapped = mmap.mmap(fd, size, prot=mmap.PROT_READ)

    def update(start: int, end: int) -> None:
        if guard and os.fstat(fd).st_size < end:
            raise CopyVerificationError("the source file became shorter while it was copied")
        with memoryview(mapped)[start:end] as view:
            hasher.update(view)
        if end == size:
            mapped.close()

    return update


class _Trailing:
    """One thread per job, each called with every newly copied range ``(start, end)`` in order. A job's failure is
    raised by ``close`` (after every thread has stopped)."""

    def __init__(self, jobs: list[Callable[[int, int], None]]) -> None:
        self._queues: list[queue.Queue] = []
        self._threads: list[threading.Thread] = []
        self._failures: list[BaseException] = []
        for job in jobs:
            q: queue.Queue = queue.Queue()
            thread = threading.Thread(target=self._run, args=(job, q), daemon=True)
            thread.start()
            self._queues.append(q)
            self._threads.append(thread)

    def _run(self, job: Callable[[int, int], None], q: queue.Queue) -> None:
        start = 0
        while (end := q.get()) is not None:
            if not self._failures:
                try:
                    job(start, end)
                except BaseException as exc:  # reported by close(); keep draining so the copy never blocks
                    self._failures.append(exc)
            start = end

    def done_to(self, end: int) -> None:
        for q in self._queues:
            q.put(end)

    def close(self) -> None:
        for q in self._queues:
            q.put(None)
        for thread in self._threads:
            thread.join()
        if self._failures:
            raise self._failures[0]
