"""``biztalk-dr pools``: the Airflow pools the group's DAGs use (``--airflow-json``: for `airflow pools import`)."""

from __future__ import annotations

import argparse
import sys

from biztalk_dr.cli import group_config_or_none

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    cmd = subparsers.add_parser("pools", help="the Airflow pools the DAGs use (create them with airflow pools import)")
    cmd.add_argument("--config", metavar="FILE", help="the group's YAML file (default: every group of $BIZTALK_DR_CONFIG)")
    cmd.add_argument("--airflow-json", action="store_true",
                     help="print them as `airflow pools import FILE` reads them")
    cmd.set_defaults(handler=_pools)


def _deployment_configs():  # noqa: ANN202 - list of GroupConfig, or None
    """Every group of $BIZTALK_DR_CONFIG that loads; a broken group (no DAGs, no pools) is said on stderr."""
    from biztalk_dr.domain.errors import ConfigError
    from biztalk_dr.edge.groups import dag_groups

    try:
        good, broken = dag_groups()
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    for gf, exc in broken.items():
        print(f"warning: group {gf.key} left out (its DAGs do not load either):\n{exc}", file=sys.stderr)
    return [cfg for _gf, cfg in good]


def _pools(args: argparse.Namespace) -> int:
    from biztalk_dr.domain.pools import airflow_import_json, deployment_pools

    cfgs = [group_config_or_none(args.config)] if args.config else _deployment_configs()
    if cfgs is None or None in cfgs:
        return 2
    if args.airflow_json:
        print(airflow_import_json(cfgs))
        return 0
    for name, pool in deployment_pools(cfgs).items():
        print(f"{name}  slots={pool['slots']}  {pool['description']}")
    return 0
