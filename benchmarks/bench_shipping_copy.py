"""Shipping copy throughput against plain copies of the same file, in the same run.

ship_file does more than a copy — SHA-256 of every byte, fsync, a read-back check of the written
file, atomic rename — so the figure to watch is its cost relative to `shutil.copyfile` (+ fsync),
the least any copy of a backup must do. Usage: python benchmarks/bench_shipping_copy.py [MiB]
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from biztalk_dr.shipping_copy import ship_file


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    with tempfile.TemporaryDirectory(prefix="bench-ship-") as tmp:
        root = Path(tmp)
        source = root / "src" / "SQL1_BizTalkMsgBoxDb_Full_BTS_2026_11_25_01_00_00_000.bak"
        source.parent.mkdir()
        with open(source, "wb") as fh:
            for _ in range(mib):
                fh.write(os.urandom(1024 * 1024))
        results = {}
        for name, run in [
            ("shutil.copyfile", lambda d: shutil.copyfile(source, d / source.name)),
            ("shutil.copyfile + fsync", lambda d: _copy_fsync(source, d / source.name)),
            ("ship_file (sha256, fsync, verify, rename)", lambda d: ship_file(source, d)),
        ]:
            times = []
            for i in range(3):
                dest = root / f"dst-{len(results)}-{i}"
                dest.mkdir()
                times.append(_timed(lambda d=dest, run=run: run(d)))
                shutil.rmtree(dest)
            results[name] = min(times)
        base = results["shutil.copyfile + fsync"]
        print(f"file: {mib} MiB, best of 3 runs")
        for name, seconds in results.items():
            print(f"  {name:45s} {seconds:7.3f} s  {mib / seconds:8.1f} MiB/s  {seconds / base:5.2f}x baseline")
        ship = results["ship_file (sha256, fsync, verify, rename)"]
        plain = results["shutil.copyfile"]
        sha = _sha256_seconds(source)
        ratio = plain / ship
        print(f"ship_file throughput / plain copy throughput: {ratio:.2f} (issue 6 goal >= 0.90: "
              f"{'met' if ratio >= 0.9 else 'NOT met'}); SHA-256 of the file alone takes {sha:.3f} s here")


def _sha256_seconds(path: Path) -> float:
    import hashlib

    digest = hashlib.sha256()
    start = time.perf_counter()
    with open(path, "rb") as fh:
        while block := fh.read(4 * 1024 * 1024):
            digest.update(block)
    return time.perf_counter() - start


def _copy_fsync(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    with open(dst, "rb+") as fh:
        os.fsync(fh.fileno())


if __name__ == "__main__":
    main()
