"""``tongban``: one entry point, one module per command group (SPEC 8)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

import structlog

from gateway.cli.common import CliError
from gateway.errors import ConfigError, GatewayError
from gateway.logs import configure_logging

#: Command groups, each a module with ``register(subparsers)``; the handler is set as
#: ``func`` on the parsed arguments and returns the exit code.
GROUPS = ("serve", "certs", "call", "license", "requests", "audit", "desk")
#: The top-level commands each group module registers.
COMMANDS = {"demo": "serve"} | {name: name for name in GROUPS}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``command``'s group alone.

    Importing every group pulls in aiohttp, redis-py, prometheus and the rest, about
    half a second; an auditor's ``tongban audit verify`` needs none of that, so a
    command line whose first word names a command builds only that command's group.
    ``tongban --help`` and anything unknown get the full parser and its messages.
    """
    parser = argparse.ArgumentParser(
        prog="tongban",
        description="Tongban (通办): cross-provincial service interoperability gateway",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups = (COMMANDS[command],) if command in COMMANDS else GROUPS
    for name in groups:
        importlib.import_module(f"gateway.cli.{name}_cmd").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Log lines go to stderr, so stdout carries only a command's answer (--json stays
    # parseable); serve and demo set their own level on top of this.
    if not structlog.is_configured():  # a host process (tests) may have set it up already
        configure_logging(os.environ.get("TONGBAN_LOG_LEVEL", "WARNING"))
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words[0] if words else None)
    args = parser.parse_args(words)
    try:
        code: int = args.func(args)
    except CliError as exc:
        print(f"tongban: {exc}", file=sys.stderr)
        return exc.exit_code
    except ConfigError as exc:
        print(f"tongban: {exc.detail}", file=sys.stderr)
        return 2
    except GatewayError as exc:
        print(f"tongban: {exc.code}: {exc.detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `tongban ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
