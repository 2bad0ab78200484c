"""The `wayfarer` command: run the server or a worker, manage the schema, API keys and the secret key
(app/cli/deployment.py); submit and follow runs through the HTTP API (app/cli/client.py)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import version as package_version

from app.cli import client, deployment
from app.cli.common import DEFAULT_PORT, CommandFailed, add_command, fail
from app.db.migrate import DatabaseNotReady
from app.platform.secret_key import SecretKeyRefused
from app.platform.settings import InvalidSettings

__all__ = ["DEFAULT_PORT", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`wayfarer runs list | head`): stop as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush must not fail
        return 1
    except (CommandFailed, InvalidSettings, DatabaseNotReady, SecretKeyRefused) as exc:  # said, no traceback
        for line in str(exc).splitlines():
            fail(line)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wayfarer", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    deployment.add_commands(commands)
    add_command(commands, "version", "print the version").set_defaults(handler=_version)
    client.add_commands(commands)
    return parser


def _version(_args: argparse.Namespace) -> int:
    print(f"wayfarer {package_version('wayfarer')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
