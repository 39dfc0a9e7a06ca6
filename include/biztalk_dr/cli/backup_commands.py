"""``biztalk-dr backup-info`` and ``biztalk-dr plan``: what backup files hold and how they restore, read
from the files alone — for the standby site at 3 a.m., when the primary's catalog is gone.

Exit status: 0 every file read (and, for ``plan``, the target reachable); 1 the plan cannot reach the
target (the reason names the LSN range and files); 2 bad input (a file that is not a readable backup,
a bad argument) — every other file is still reported.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence

from biztalk_dr.backup_files import BackupSetHeader, read_backup_files
from biztalk_dr.domain.errors import RestorePlanError
from biztalk_dr.domain.restore_planner import RestorePlan, Target, plan_restore

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    info = subparsers.add_parser(
        "backup-info", help="what each SQL Server backup file holds (RESTORE HEADERONLY without a server)")
    info.add_argument("paths", nargs="+", metavar="PATH", help="backup files or folders (searched recursively)")
    info.add_argument("--json", action="store_true", help="a JSON list, one object per backup set")
    info.set_defaults(handler=_backup_info)

    plan = subparsers.add_parser(
        "plan", help="the restore sequence of one database from backup files alone, with its WITH options")
    plan.add_argument("paths", nargs="+", metavar="PATH", help="backup files or folders (searched recursively)")
    plan.add_argument("--database", required=True, help="the database to restore (as named in the backups)")
    target = plan.add_mutually_exclusive_group()
    target.add_argument("--latest", action="store_true", help="the newest point the backups reach (default)")
    target.add_argument("--stop-at-lsn", type=_lsn, metavar="LSN",
                        help="stop at this LSN (decimal, as RESTORE HEADERONLY prints it; a mark's LSN)")
    target.add_argument("--stop-at", type=_time, metavar="TIME",
                        help="stop at this time, ISO 8601 (2026-11-25T03:10:00), the server's local time as the "
                             "backups record it")
    target.add_argument("--stop-at-mark", metavar="NAME",
                        help="stop at this marked transaction (included), as STOPATMARK = 'NAME': BizTalk log backups "
                             "carry their mark in their file name")
    plan.add_argument("--after", type=_time, metavar="TIME",
                      help="with --stop-at-mark: the first mark of that name at or after this time (STOPATMARK ... "
                           "AFTER 'TIME'), for a name used more than once")
    plan.add_argument("--recovery-fork", metavar="GUID",
                      help="follow this recovery branch (RecoveryForkID) where the backups hold several, e.g. the old "
                           "and the new primary's after a failover")
    plan.add_argument("--family-guid", metavar="GUID",
                      help="the database with this FamilyGUID, where the files hold two databases of the same name")
    plan.add_argument("--json", action="store_true", help="the plan as one JSON object")
    plan.set_defaults(handler=_plan)


def _guid(text: str | None) -> str | None:
    return text.strip().strip("{}").lower() if text else None


def _lsn(text: str) -> int:
    if not text.isdigit() or len(text) > 25:
        raise argparse.ArgumentTypeError(f"{text!r} is not an LSN: give the decimal number RESTORE HEADERONLY prints "
                                         "(up to 25 digits), e.g. 27000000018100001")
    return int(text)


def _time(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time such as 2026-11-25T03:10:00") from None
    if value.tzinfo is not None:
        raise argparse.ArgumentTypeError(f"{text!r} has a time zone: backups record the server's local time, so give "
                                         "that time without a zone")
    return value


def _read(paths: Sequence[str]) -> tuple[list[BackupSetHeader], int]:
    """Every backup set of every file; one error line per unreadable file on stderr, one note per file passed
    over unopened (a FIFO, socket or device in a folder). Returns the sets and the number of files that failed."""
    headers, failed = [], 0
    for result in read_backup_files(paths):
        if result.skipped is not None:
            print(f"note: {result.path}: {result.skipped}", file=sys.stderr)
        elif result.error is not None:
            failed += 1
            print(f"error: {result.error}", file=sys.stderr)
        else:
            headers.extend(result.sets)
    return headers, failed


def _backup_info(args: argparse.Namespace) -> int:
    headers, failed = _read(args.paths)
    if args.json:
        json.dump([h.as_json() for h in headers], sys.stdout, indent=2)
        print()
    else:
        _print_table(headers)
    return 2 if failed else 0


def _print_table(headers: Sequence[BackupSetHeader]) -> None:
    columns = ("database", "type", "pos", "first_lsn", "last_lsn", "started", "stripe", "family", "fork", "server",
               "path")
    rows = [(h.database_name, h.backup_type + (" (copy-only)" if h.copy_only else ""), str(h.position),
             str(h.first_lsn), str(h.last_lsn), h.backup_start_date.isoformat(sep=" "),
             f"{h.family_sequence}/{h.family_count}", (h.family_guid or "?")[:8], (h.recovery_fork_id or "?")[:8],
             h.server_name, h.path) for h in headers]
    _table(columns, rows)


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    for line in (columns, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def _plan(args: argparse.Namespace) -> int:
    if args.after is not None and args.stop_at_mark is None:
        print("error: --after qualifies --stop-at-mark: give the mark's name too", file=sys.stderr)
        return 2
    headers, failed = _read(args.paths)
    target = Target(lsn=args.stop_at_lsn, time=args.stop_at, mark=args.stop_at_mark, after=args.after,
                    recovery_fork_id=_guid(args.recovery_fork), family_guid=_guid(args.family_guid))
    try:
        plan = plan_restore(headers, args.database, target)
    except RestorePlanError as exc:
        if args.json:
            json.dump({"database": args.database, "target": target.text(), "steps": [], "problems": exc.problems},
                      sys.stdout, indent=2)
            print()
        for problem in exc.problems:
            print(f"cannot plan: {problem}", file=sys.stderr)
        return 2 if failed else 1
    if args.json:
        json.dump(plan.as_json(), sys.stdout, indent=2)
        print()
    else:
        _print_plan(plan)
    return 2 if failed else 0


def _print_plan(plan: RestorePlan) -> None:
    print(f"Restore of {plan.database} to {plan.target.text()}: {len(plan.steps)} step(s), reaching LSN "
          f"{plan.reaches_lsn} ({plan.reaches_time.isoformat(sep=' ')}) on recovery fork {plan.recovery_fork_id} of "
          f"FamilyGUID {plan.family_guid}")
    rows = [(str(n), s.backup.backup_type, str(s.backup.header.first_lsn), str(s.backup.header.last_lsn),
             ", ".join(s.with_options()), " + ".join(s.backup.paths)) for n, s in enumerate(plan.steps, 1)]
    _table(("step", "type", "first_lsn", "last_lsn", "with", "files"), rows)
    for note in plan.notes:
        print(f"note: {note}")
