"""Restore planning at catalog scale: one year of nightly fulls and 15-minute log backups of the 12 databases of
a BizTalk group (about 425,000 backup sets, as msdb.dbo.backupset holds them), every database planned to the
newest point, against merely sorting the same headers by database and LSN in the same run. Goal (issue 16):
under 1 s and 500 MB in one process, linear or N log N. The worst case is added: a target only the oldest full
reaches, all newer fulls damaged (a stripe missing), so the whole year's log chain is walked.
Usage: python benchmarks/bench_restore_planner.py [DAYS]
"""

from __future__ import annotations

import datetime as dt
import gc
import resource
import sys
import time
import uuid

from biztalk_dr.backup_files.headers import BackupSetHeader
from biztalk_dr.domain.restore_planner import Target, plan_restore, plan_restores

DATABASES = ["BizTalkMgmtDb", "BizTalkMsgBoxDb", "BizTalkDTADb", "SSODB", "BizTalkRuleEngineDb", "BAMPrimaryImport",
             "BAMArchive", "BAMStarSchema", "BAMAlertsApplication", "BAMAlertsNSMain", "DemoOrders", "EDIDb"]
_STEP = 10**5 * 8  # LSN advance between log backups (eight log blocks)


def catalog(days: int, *, damaged_newer_fulls: bool = False, databases: list[str] = DATABASES
            ) -> list[BackupSetHeader]:
    """Headers as msdb.dbo.backupset rows give them (one file per set): per database a full at 01:00 and a log
    backup every 15 minutes, each log starting where the previous one ended."""
    start = dt.datetime(2026, 1, 1)
    headers: list[BackupSetHeader] = []
    for d, name in enumerate(databases):
        family = str(uuid.UUID(int=d + 1))
        lsn = (30 + d) * 10**15
        created = dt.datetime(2025, 6, 1)
        for day in range(days):
            for slot in range(96):
                when = start + dt.timedelta(days=day, minutes=15 * slot)
                if slot == 4:  # 01:00: the nightly full, inside the log chain
                    stripes = (1, 2) if damaged_newer_fulls and day > 0 else (1, 1)  # stripe 2 lost
                    headers.append(BackupSetHeader(
                        path=f"F:\\Backup\\{name}_Full_{day}.bak", position=1, database_name=name,
                        server_name="SQLPRD01", backup_type="FULL", first_lsn=lsn + 1, last_lsn=lsn + 3,
                        checkpoint_lsn=lsn + 1, database_backup_lsn=lsn - _STEP, backup_start_date=when,
                        backup_finish_date=when + dt.timedelta(minutes=4), database_creation_date=created,
                        compressed=True, software_version="16.0.4135", media_set_id=f"{name}-{day}-full",
                        family_count=stripes[1], family_sequence=stripes[0], copy_only=False,
                        backup_set_id=str(uuid.uuid4()), family_guid=family, recovery_fork_id=family))
                headers.append(BackupSetHeader(
                    path=f"F:\\Backup\\{name}_Log_{day}_{slot}.trn", position=1, database_name=name,
                    server_name="SQLPRD01", backup_type="LOG", first_lsn=lsn, last_lsn=lsn + _STEP,
                    checkpoint_lsn=lsn + _STEP - 1, database_backup_lsn=lsn - _STEP, backup_start_date=when,
                    backup_finish_date=when + dt.timedelta(seconds=20), database_creation_date=created,
                    compressed=True, software_version="16.0.4135", media_set_id=f"{name}-{day}-{slot}",
                    family_count=1, family_sequence=1, copy_only=False, backup_set_id=str(uuid.uuid4()),
                    family_guid=family, recovery_fork_id=family))
                lsn += _STEP
    return headers


def _best(fn, *args) -> tuple[float, object]:
    """The fastest of three runs of ``fn(*args)``, and its result."""
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        result = fn(*args)
        runs.append((time.perf_counter() - started, result))
    return min(runs, key=lambda run: run[0])


def _sorted(headers: list[BackupSetHeader]) -> list[BackupSetHeader]:
    return sorted(headers, key=lambda h: (h.database_name, h.first_lsn))


def main() -> None:
    days = int(sys.argv[1]) if len(sys.argv) > 1 else 365
    headers = catalog(days)
    print(f"{len(headers):,} backup sets: {len(DATABASES)} databases, {days} days of nightly fulls and 15-minute logs")
    sort_s, _ = _best(_sorted, headers)
    plan_s, plans = _best(plan_restores, headers)
    steps = {name: len(getattr(plan, "steps", ())) for name, plan in plans.items()}
    assert set(steps.values()) == {1 + 92}, steps  # the newest full and the logs from 01:00 on
    print(f"{'case':<58}{'seconds':>9}{'vs sort':>9}")
    print(f"{'sort the headers by database and LSN (baseline)':<58}{sort_s:>9.3f}{1:>9.2f}")
    print(f"{'plan every database to latest':<58}{plan_s:>9.3f}{plan_s / sort_s:>9.2f}"
          f"   goal < 1 s: {'met' if plan_s < 1 else 'NOT met'}")
    for fraction in (4, 2):  # the same per set on a quarter and half of the catalog: linear, not quadratic
        part = headers[: len(headers) // fraction]
        part_s, _ = _best(plan_restores, part)
        print(f"{f'  ... on 1/{fraction} of the headers ({len(part):,})':<58}{part_s:>9.3f}"
              f"{part_s / sort_s:>9.2f}   {part_s / len(part) * 1e6:.2f} µs per set")
    print(f"{'  (per set, whole catalog)':<58}{'':>9}{'':>9}   {plan_s / len(headers) * 1e6:.2f} µs per set")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'peak memory of this process, the headers included':<58}{rss:>8,.0f} MB   goal < 500 MB: "
          f"{'met' if rss < 500 else 'NOT met'}")
    del headers, plans
    gc.collect()
    one = catalog(days, damaged_newer_fulls=True, databases=["BizTalkMsgBoxDb"])
    oldest_s, plan = _best(plan_restore, one, "BizTalkMsgBoxDb", Target())
    one_sort_s, _ = _best(_sorted, one)
    assert len(plan.steps) == 1 + days * 96 - 4, len(plan.steps)  # the oldest full and every log after it
    print(f"{'worst case: only the oldest full usable, one database':<58}{oldest_s:>9.3f}"
          f"{oldest_s / one_sort_s:>9.2f}   ({len(plan.steps):,} steps, {len(one):,} sets)")
    target = plan.steps[-2].backup.header.first_lsn + 1
    lsn_s, plan = _best(plan_restore, one, "BizTalkMsgBoxDb", Target(lsn=target))
    print(f"{'worst case, to an LSN near the end':<58}{lsn_s:>9.3f}{lsn_s / one_sort_s:>9.2f}")


if __name__ == "__main__":
    main()
