"""``biztalk-dr drill [--json]``: rehearse a disaster failover end to end on a stand-in group started for the
purpose (exit status 0 pass, 1 fail)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from importlib.metadata import entry_points
from types import ModuleType

__all__ = ["register", "drill_module"]

DRILL_ENTRY_POINT = "biztalk_dr.drill"


def drill_module() -> ModuleType:
    """The drill (``check_prerequisites``, ``run_drill``): it lives with the SQL Server stand-in, which the product
    never imports, and is found through the ``biztalk_dr.drill`` entry point (PrerequisiteMissing without it)."""
    from biztalk_dr.domain.errors import PrerequisiteMissing
    from biztalk_dr.edge.prerequisites import Missing

    found = entry_points(group=DRILL_ENTRY_POINT)
    if not found:
        raise PrerequisiteMissing([Missing("the drill (the SQL Server stand-in package) is not installed",
                                           "run `make install` in a checkout of biztalk-dr (the drill runs from one)")])
    return next(iter(found)).load()


def register(subparsers: argparse._SubParsersAction) -> None:
    drill = subparsers.add_parser("drill", help="rehearse a disaster failover on stand-ins: backups, shipping, "
                                                "a real failover to one mark; measured and checked")
    drill.add_argument("--json", action="store_true", help="one JSON object")
    drill.set_defaults(handler=_drill)


def _drill(args: argparse.Namespace) -> int:
    with contextlib.redirect_stdout(sys.stderr):  # the DAG runs' output goes to stderr; stdout is the report
        report = drill_module().run_drill()
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
