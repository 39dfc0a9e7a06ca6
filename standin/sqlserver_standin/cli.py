"""``biztalk-dr-standin``: run a SQL Server stand-in instance, or inject a fault into one."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlserver_standin import faults

__all__ = ["PASSWORD_ENV_VAR", "build_parser", "main"]

PASSWORD_ENV_VAR = "BIZTALK_DR_STANDIN_PASSWORD"


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
    serve.add_argument("--password-file", type=Path, metavar="FILE",
                       help=f"a file (mode 0600) holding its password; else ${PASSWORD_ENV_VAR}. Never on the "
                            "command line, which every user of the machine can read (ps)")
    serve.add_argument("--password", help=argparse.SUPPRESS)  # refused with the reason, see _password
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


def _password(args: argparse.Namespace) -> str:
    """The login's password: from --password-file (0600) or $BIZTALK_DR_STANDIN_PASSWORD (then removed from
    this process's environment, so nothing it starts inherits it)."""
    if args.password is not None:
        raise SystemExit("biztalk-dr-standin serve: --password is refused: a command line is visible to every user "
                         f"of the machine (ps); give --password-file FILE (mode 0600) or set ${PASSWORD_ENV_VAR}")
    if args.password_file is not None:
        try:
            mode = args.password_file.stat().st_mode
            text = args.password_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise SystemExit(f"biztalk-dr-standin serve: --password-file {args.password_file}: {exc.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SystemExit(f"biztalk-dr-standin serve: --password-file {args.password_file} can be read by other "
                             f"users (mode {stat.S_IMODE(mode):04o}): chmod 600 it")
        password = text.rstrip("\r\n")
    else:
        password = os.environ.pop(PASSWORD_ENV_VAR, "")
    if not password:
        raise SystemExit(f"biztalk-dr-standin serve: no password: give --password-file FILE (mode 0600) or set "
                         f"${PASSWORD_ENV_VAR}")
    return password


def _serve(args: argparse.Namespace) -> int:
    from .engine import StandinEngine  # the behaviour model; imported only when serving
    from .server import serve

    engine = StandinEngine(data_dir=args.data_dir, instance_name=args.name, login=args.login,
                           password=_password(args), workload=args.workload_interval > 0,
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
