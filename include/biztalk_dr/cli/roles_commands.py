"""``biztalk-dr resume-backups``: release the backup schedule a failover holds, when that failover was abandoned.

dr_failover holds dr_full_backup and dr_log_backup while it runs and resumes them at its end. A failover that
is given up half-way (the switchover is called off) leaves the hold in place; the health check alerts after
two log intervals, and this command is how the operator gives the schedule back (exit 0 done, 2 bad input).
"""

from __future__ import annotations

import argparse

from biztalk_dr.cli import group_command

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    group_command(subparsers, "resume-backups", "release the backup schedule held by an abandoned failover", _resume)


def _resume(args: argparse.Namespace, cfg) -> int:  # noqa: ANN001 - GroupConfig, imported lazily
    from biztalk_dr.ops.site_roles import backups_held, release_backups

    held = backups_held(cfg)
    if held:
        print(f"was: {held}")
    print(release_backups(cfg))
    return 0
