"""Backup files read per second by the backup-file reader, against merely opening each file and reading
its first 64 KiB, in the same run. Goals (issues 4 and 16): >= 5,000 uncompressed and >= 500 compressed files/s
on one core. "On one core" is measured as the CPU time of this process (the reader is single-threaded), so a
machine shared with other work does not change the figure; the wall-clock rate is printed beside it.
Usage: python benchmarks/bench_backup_reader.py [FOLDER] [SECONDS]
(FOLDER defaults to ../shared/sqlserver-backups, real SQL Server backups.)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from biztalk_dr.backup_files import BACKUP_FILE_SUFFIXES, read_backup_file

_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "sqlserver-backups"


def _rate(files: list[Path], work, seconds: float) -> tuple[float, float]:
    """(files per CPU second, files per wall-clock second)."""
    done, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        for path in files:
            work(path)
        done += len(files)
    return done / (time.process_time() - cpu), done / (time.perf_counter() - start)


def _first_64k(path: Path) -> None:
    with open(path, "rb") as fh:
        fh.read(65536)


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else _DEFAULT
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in BACKUP_FILE_SUFFIXES)
    if not files:
        sys.exit(f"no backup files under {folder}")
    groups: dict[str, list[Path]] = {"uncompressed": [], "compressed": []}
    for path in files:
        with open(path, "rb") as fh:
            groups["compressed" if fh.read(8) == b"MSSQLBAK" else "uncompressed"].append(path)
    print(f"{len(files)} backup files under {folder}, {seconds:.0f} s per measurement, one core")
    print(f"{'files':<14}{'count':>6}{'MiB':>8}{'read headers/s':>17}{'(wall)':>10}{'open+64KiB/s':>15}{'ratio':>8}"
          "  goal (per CPU second)")
    for name, goal in (("uncompressed", 5000), ("compressed", 500)):
        group = groups[name]
        if not group:
            continue
        mib = sum(p.stat().st_size for p in group) / 2**20
        reader, reader_wall = _rate(group, read_backup_file, seconds)
        baseline, _ = _rate(group, _first_64k, seconds)
        verdict = "met" if reader >= goal else "NOT met"
        print(f"{name:<14}{len(group):>6}{mib:>8.1f}{reader:>17,.0f}{reader_wall:>10,.0f}{baseline:>15,.0f}"
              f"{reader / baseline:>8.3f}  >= {goal:,}: {verdict}")


if __name__ == "__main__":
    main()
