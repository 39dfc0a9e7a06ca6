"""``biztalk-dr status``: where the standby stands — per database the newest set at the source, shipped and
restored, the mark a failover can reach, and the data-loss window — for an operator at a terminal and for
monitoring (exit status 0 ok or waiting — a new group waiting for its first full set —, 1 warn or critical, 2 bad
input)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from biztalk_dr.cli import group_command

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    status = group_command(subparsers, "status", "log shipping: what is shipped, restored and recoverable now", _status)
    status.add_argument("--json", action="store_true", help="one JSON object (for monitoring)")


def _status(args: argparse.Namespace, cfg) -> int:  # noqa: ANN001 - GroupConfig, imported lazily
    from biztalk_dr.ops import shipping_jobs

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
