"""``biztalk-dr``: what an operator needs outside the Airflow UI.

Each sub-command module exposes ``register(subparsers)``; its handlers return the exit status:
0 done, 1 the check found a problem in the group, 2 bad input (file, argument).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser", "group_config_or_none"]

_COMMAND_MODULES = (
    "biztalk_dr.cli.config_commands",
    "biztalk_dr.cli.backup_commands",
    "biztalk_dr.cli.status_commands",
    "biztalk_dr.cli.drill_commands",
    "biztalk_dr.cli.roles_commands",
)


def group_config_or_none(path: str | None):  # noqa: ANN201 - GroupConfig, imported lazily
    """The group's configuration (``path`` or $BIZTALK_DR_CONFIG); None after printing its problems to stderr,
    for the command to exit 2."""
    from biztalk_dr.config import load_config
    from biztalk_dr.errors import ConfigError

    try:
        return load_config(path) if path else load_config()
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="biztalk-dr",
        description="Disaster recovery for a BizTalk Server group: checks and tools for operators.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a command family not installed in this build
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from biztalk_dr.errors import SetupError

    try:
        return int(args.handler(args))
    except SetupError as exc:  # the environment, not the group: one clear line, exit 2
        print(f"biztalk-dr {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
