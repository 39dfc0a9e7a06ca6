"""``biztalk-dr drill [--json]``: rehearse a disaster failover end to end on a stand-in group started for the
purpose (exit status 0 pass, 1 fail)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    drill = subparsers.add_parser("drill", help="rehearse a disaster failover on stand-ins: backups, shipping, "
                                                "a real failover to one mark; measured and checked")
    drill.add_argument("--json", action="store_true", help="one JSON object")
    drill.set_defaults(handler=_drill)


def _drill(args: argparse.Namespace) -> int:
    from biztalk_dr.drill import run_drill

    with contextlib.redirect_stdout(sys.stderr):  # the DAG runs' output goes to stderr; stdout is the report
        report = run_drill()
    if args.json:
        json.dump(report, sys.stdout, indent=2, default=str)
        print()
    else:
        print(f"drill: {report['result'].upper()}: mark {report['mark']}, data loss {report['data_loss_seconds']} s")
        for phase in report["phases"]:
            print(f"  {phase['name']:50} {phase['seconds']:8.2f} s")
        for db in report["databases"]:
            print(f"  {db['name']:22} {db['state']:10} {db['stop_at_mark_name']}")
        for problem in report["problems"]:
            print(f"  problem: {problem}")
    return 0 if report["result"] == "pass" else 1
