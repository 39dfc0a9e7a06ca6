"""``biztalk-dr status``: where the standby stands — per database the newest set at the source, shipped and
restored, the mark a failover can reach, and the data-loss window — for an operator at a terminal and for
monitoring (exit status 0 ok or waiting — a new group waiting for its first full set —, 1 warn or critical, 2 bad
input)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from biztalk_dr.cli import group_config_or_none

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    status = subparsers.add_parser("status", help="log shipping: what is shipped, restored and recoverable now")
    status.add_argument("--config", metavar="FILE", help="the group's YAML file (default: $BIZTALK_DR_CONFIG)")
    status.add_argument("--json", action="store_true", help="one JSON object (for monitoring)")
    status.set_defaults(handler=_status)


def _status(args: argparse.Namespace) -> int:
    from biztalk_dr import shipping_jobs

    cfg = group_config_or_none(args.config)
    if cfg is None:
        return 2
    with contextlib.redirect_stdout(sys.stderr):  # Airflow's logging writes to stdout; stdout is the report
        report = shipping_jobs.status(cfg).as_json()
    if args.json:
        json.dump(report, sys.stdout, indent=2, default=str)
        print()
    else:
        _print(report)
    return 0 if report["health"] in ("ok", "waiting") else 1


def _print(report: dict) -> None:
    source = "" if report["source_reachable"] else " (primary unreachable: from the standby's records)"
    print(f"{report['group']}: {report['health'].upper()}{source}")
    print(report["waiting"] or report["data_loss"])
    columns = ("database", "source set", "shipped set", "restored set", "restored mark")
    rows = [(d["name"], *(str(d[k]) if d[k] is not None else "-" for k in
                          ("source_set", "shipped_set", "restored_set", "restored_mark"))) for d in report["databases"]]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    for line in (columns, *rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
