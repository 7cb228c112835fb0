"""``tongban certs init``: the demo network's keys and certificates (SPEC 9)."""

from __future__ import annotations

import argparse

from gateway.cli.common import add_json_option, print_json, project_root
from gateway.config import DEMO_NODE_IDS, demo_config_path, load_node_config
from gateway.keys import init_demo_pki


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    certs = sub.add_parser("certs", help="keys and certificates")
    csub = certs.add_subparsers(dest="certs_command", required=True, metavar="ACTION")
    init = csub.add_parser(
        "init",
        help="make the demo PKI: provincial roots, issuer certificates, token and log keys",
        description="Idempotent: existing keys are kept unless --force is given.",
    )
    init.add_argument("--force", action="store_true", help="replace existing keys")
    add_json_option(init)
    init.set_defaults(func=run_init)


def ensure_demo_pki(*, force: bool = False) -> list[str]:
    """Make whatever the demo network is missing; returns the files written."""
    configs = [load_node_config(demo_config_path(n), require_keys=False) for n in DEMO_NODE_IDS]
    certs_dir = configs[0].certs_dir
    made = init_demo_pki(configs, certs_dir, force=force)
    root = project_root()
    return [str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in made]


def run_init(args: argparse.Namespace) -> int:
    made = ensure_demo_pki(force=args.force)
    if args.json:
        print_json({"written": made})
    elif made:
        print(f"wrote {len(made)} files:")
        for m in made:
            print(f"  {m}")
    else:
        print("all keys and certificates already exist (use --force to replace them)")
    return 0
