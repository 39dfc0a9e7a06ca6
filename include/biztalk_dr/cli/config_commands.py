"""``biztalk-dr config check FILE``: validate a group's configuration before the DAGs read it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from biztalk_dr.domain.errors import ConfigError
from biztalk_dr.edge.groups import deployment_files
from biztalk_dr.ops.config_fallback import last_valid
from biztalk_dr.ops.config_files import load_config

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    config = subparsers.add_parser("config", help="check the group's configuration file")
    actions = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="validate a configuration file; one line per problem (file:line: field: what is expected)",
    )
    check.add_argument("file", help="the group's YAML file")
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.file)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in {args.file}", file=sys.stderr)
        path = Path(args.file).absolute()
        if path in deployment_files() and (copy := last_valid(path)) is not None:
            print(f"until it is fixed the DAGs run on its last valid version of {copy[2]:%Y-%m-%d %H:%M:%S} UTC "
                  f"({copy[1]}), and every run alerts", file=sys.stderr)
        return 2
    sites = ", ".join(name for name in ("primary", "standby", "validation") if getattr(cfg.sites, name))
    print(f"{args.file}: OK: group {cfg.group.name!r}, {len(cfg.databases)} databases, sites: {sites}")
    return 0
