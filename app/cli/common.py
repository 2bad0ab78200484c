"""What every `wayfarer` subcommand shares: help that shows defaults, tables, one-line failures."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

DEFAULT_PORT = 8000


class CommandFailed(Exception):
    """Stops a command with its message on stderr and exit status 1 (no traceback)."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each option's default, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, argparse.SUPPRESS) or "%(default)" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def add_command(commands: Any, name: str, help: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand parser (`commands` is an add_subparsers() result) with the shared help formatter."""
    parser: argparse.ArgumentParser = commands.add_parser(name, help=help, description=help,
                                                          formatter_class=HelpFormatter, **kwargs)
    return parser


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def note(message: str) -> None:
    """A line for the person at the terminal (stderr: stdout stays parseable)."""
    print(message, file=sys.stderr)


def fail(message: str) -> int:
    print(f"wayfarer: {message}", file=sys.stderr)
    return 1
