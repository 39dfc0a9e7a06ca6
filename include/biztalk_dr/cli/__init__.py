"""``biztalk-dr``: what an operator needs outside the Airflow UI.

Each sub-command module exposes ``register(subparsers)``; its handlers return the exit status:
0 done, 1 the check found a problem in the group, 2 bad input (file, argument) or a missing prerequisite.
What a command needs (``_PREREQUISITES``: unixODBC, the ODBC driver and the connections of the instances it
reaches) is checked before it starts; a missing one is one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main", "build_parser", "group_command", "group_config_or_none"]

_COMMAND_MODULES = (
    "biztalk_dr.cli.config_commands",
    "biztalk_dr.cli.backup_commands",
    "biztalk_dr.cli.status_commands",
    "biztalk_dr.cli.drill_commands",
    "biztalk_dr.cli.roles_commands",
    "biztalk_dr.cli.pool_commands",
)


def group_config_or_none(path: str | None):  # noqa: ANN201 - GroupConfig, imported lazily
    """The group's configuration (``path``, validated; or $BIZTALK_DR_CONFIG as the DAGs see it: its last valid
    version while the file is broken, said on stderr); None after printing its problems to stderr, for the
    command to exit 2."""
    from biztalk_dr.domain.errors import ConfigError
    from biztalk_dr.ops.config_fallback import current_fallback
    from biztalk_dr.ops.config_files import config_path

    try:
        cfg = _load(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    if not path and (fallback := current_fallback(config_path())) is not None:
        print(f"warning: {fallback.file} is broken ({len(fallback.problems)} problem(s): biztalk-dr config check "
              f"{fallback.file}); as the DAGs do, this uses its last valid version of "
              f"{fallback.saved:%Y-%m-%d %H:%M:%S} UTC", file=sys.stderr)
    return cfg


def group_command(subparsers: argparse._SubParsersAction, name: str, help: str,  # noqa: A002 - argparse's word
                  run: Callable[[argparse.Namespace, Any], int]) -> argparse.ArgumentParser:
    """A sub-command on one group: ``--config FILE`` (default: $BIZTALK_DR_CONFIG), the group's configuration
    loaded (``group_config_or_none``: exit 2 after its problems), then ``run(args, cfg)`` gives the exit status."""
    parser = subparsers.add_parser(name, help=help)
    parser.add_argument("--config", metavar="FILE", help="the group's YAML file (default: $BIZTALK_DR_CONFIG)")

    def handler(args: argparse.Namespace) -> int:
        cfg = group_config_or_none(args.config)
        return 2 if cfg is None else run(args, cfg)

    parser.set_defaults(handler=handler)
    return parser


def _load(path: str | None):  # noqa: ANN202 - GroupConfig
    """``load_config`` for a command: the fallback's log record (meant for DAG and task logs) is left out, the
    command says it on stderr in its own words."""
    from biztalk_dr.ops.config_files import load_config

    if path:
        return load_config(path)
    logger = logging.getLogger("biztalk_dr.domain.config")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        return load_config()
    finally:
        logger.setLevel(level)


def _sql_instances(*sites: str) -> Callable[[argparse.Namespace], None]:
    """unixODBC, and every instance's connection at ``sites`` defined with a loadable driver."""
    def check(args: argparse.Namespace) -> None:
        from biztalk_dr.domain.errors import ConfigError
        from biztalk_dr.edge.prerequisites import (
            check_connections,
            check_driver_manager,
            connection_ids,
            require,
        )

        require(check_driver_manager())
        try:
            cfg = _load(getattr(args, "config", None))
        except ConfigError:
            return  # the command reports the file's problems itself
        require(check_connections(connection_ids(cfg, sites)))

    return check


def _drill(args: argparse.Namespace) -> None:
    from biztalk_dr.cli.drill_commands import drill_module

    drill_module().check_prerequisites()


def _airflow_logs_to_stderr() -> None:
    """Airflow writes its log lines to stdout, where a command's report goes (``status --json`` is read by
    monitoring): let it configure its logging while stdout is stderr, and give its structlog loggers stderr
    too (they would take stdout when first used). Only when this process is the command: a caller of main()
    in-process keeps its own logging."""
    with contextlib.redirect_stdout(sys.__stderr__):
        import airflow  # noqa: F401 - configures Airflow's logging on import
        import structlog

        factory = structlog.get_config().get("logger_factory")
        if getattr(factory, "io", False) is None:
            factory.io = sys.__stderr__


_AIRFLOW_COMMANDS = ("status", "resume-backups")  # the drill sets Airflow's home up first, then imports it
_PREREQUISITES: dict[str, Callable[[argparse.Namespace], None]] = {
    "status": _sql_instances("primary", "standby"),
    "drill": _drill,
}


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
    from biztalk_dr.domain.errors import SetupError

    parser = build_parser()
    args = parser.parse_args(argv)

    try:
        if argv is None and args.command in _AIRFLOW_COMMANDS:  # run as the program, not called in-process
            _airflow_logs_to_stderr()
        if (check := _PREREQUISITES.get(args.command)) is not None:
            with contextlib.redirect_stdout(sys.stderr):
                check(args)
        return int(args.handler(args))
    except SetupError as exc:  # the environment, not the group (a prerequisite missing too): one line, exit 2
        print(f"biztalk-dr {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
