"""What every command shares: choosing a node, printing JSON, failing in one line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

from gateway.config import NodeConfig, demo_config_path, load_node_config


class CliError(Exception):
    """A one-line reason for the user; ``exit_code`` 2 for bad input, 1 for a failed check."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def project_root() -> Path:
    return Path(__file__).resolve().parents[2]


def add_node_options(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--config FILE`` (any node) or ``--node ID`` (a demo-network node), SPEC 8."""
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--config", type=Path, help="node configuration file (TOML)")
    group.add_argument("--node", help="a node of the demo network, e.g. cn-360800")


def node_config(args: argparse.Namespace, *, require_keys: bool = True) -> NodeConfig:
    path = args.config if args.config else demo_config_path(args.node)
    return load_node_config(path, require_keys=require_keys)


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def fail(message: str, exit_code: int = 2) -> NoReturn:
    raise CliError(message, exit_code)


def is_terminal() -> bool:
    return sys.stderr.isatty()
