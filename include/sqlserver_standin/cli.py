"""``biztalk-dr-standin``: run a SQL Server stand-in instance, or inject a fault into one."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlserver_standin import faults

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="biztalk-dr-standin",
                                     description="A SQL Server stand-in speaking TDS, for tests and drills.")
    parser.add_argument("--log-level", default="WARNING",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log to stderr at this level (DEBUG shows every request the clients send)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run one instance until SIGTERM/SIGINT")
    serve.add_argument("--data-dir", required=True, type=Path, help="where the instance keeps its state")
    serve.add_argument("--port", required=True, type=_port, help="TCP port (0: any free one)")
    serve.add_argument("--name", required=True, help="instance name (@@SERVERNAME)")
    serve.add_argument("--login", required=True, help="the SQL login clients use")
    serve.add_argument("--password", required=True, help="its password")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--workload-interval", type=float, default=2.0, metavar="SECONDS",
                       help="background activity in every database every SECONDS (0: none); default 2")
    serve.set_defaults(handler=_serve)
    faults.register_cli(commands)
    return parser


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--port must be a number 0..65535, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"--port must be 0..65535, got {port}")
    return port


def _serve(args: argparse.Namespace) -> int:
    from .engine import StandinEngine  # the behaviour model; imported only when serving
    from .server import serve

    engine = StandinEngine(data_dir=args.data_dir, instance_name=args.name, login=args.login,
                           password=args.password, workload=args.workload_interval > 0,
                           workload_interval=args.workload_interval or 1.0)

    def ready(host: str, port: int) -> None:
        print(f"ready on {host}:{port}", flush=True)

    asyncio.run(serve(engine, args.host, args.port, on_ready=ready))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
