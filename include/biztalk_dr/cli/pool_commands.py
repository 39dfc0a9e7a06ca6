"""``biztalk-dr pools``: the Airflow pools the group's DAGs use (``--airflow-json``: for `airflow pools import`)."""

from __future__ import annotations

import argparse

from biztalk_dr.cli import group_config_or_none

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    cmd = subparsers.add_parser("pools", help="the Airflow pools the DAGs use (create them with airflow pools import)")
    cmd.add_argument("--config", metavar="FILE", help="the group's YAML file (default: $BIZTALK_DR_CONFIG)")
    cmd.add_argument("--airflow-json", action="store_true",
                     help="print them as `airflow pools import FILE` reads them")
    cmd.set_defaults(handler=_pools)


def _pools(args: argparse.Namespace) -> int:
    from biztalk_dr.pools import airflow_import_json, pools

    cfg = group_config_or_none(args.config)
    if cfg is None:
        return 2
    if args.airflow_json:
        print(airflow_import_json(cfg))
        return 0
    for name, pool in pools(cfg).items():
        print(f"{name}  slots={pool['slots']}  {pool['description']}")
    return 0
