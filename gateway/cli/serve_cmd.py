"""``tongban serve`` (one node) and ``tongban demo`` (the five-city network of SPEC 1).

``tongban serve --workers N`` runs one node as N processes on one port: a small
supervisor starts the workers, each binding the port with ``SO_REUSEPORT`` so the
kernel spreads connections between them, restarts a worker that dies, and stops them
all on SIGINT/SIGTERM. One process is one event loop on one core; the workers share
the node's SQLite files (audit log, license register, outbox), which are safe for
several processes, and need Redis for the replay cache and rate limits (SPEC 9).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from dataclasses import dataclass

from aiohttp import web

from gateway.cli.certs_cmd import ensure_demo_pki
from gateway.cli.common import add_node_options, node_config
from gateway.config import DEMO_NODE_IDS, NodeConfig, demo_config_path, load_node_config
from gateway.logs import configure_logging


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run one node in the foreground")
    add_node_options(serve)
    serve.add_argument("--port", type=int, help="listen on this port instead of the file's")
    serve.add_argument("--log-level", default="INFO")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes serving the node on one port (more than one needs redis_url)",
    )
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(func=run_serve)

    demo = sub.add_parser("demo", help="run the demo network until Ctrl-C")
    demo.add_argument(
        "--base-port",
        type=int,
        default=8080,
        help="port of cn-360800; the others follow (default 8080)",
    )
    demo.add_argument("--log-level", default="WARNING")
    demo.set_defaults(func=run_demo)


def app_for(cfg: NodeConfig) -> web.Application:
    """A Tongban node, or the simulator of a legacy partner system."""
    if cfg.simulator:
        from adapters.simulators import simulator_app

        return simulator_app(cfg)
    from gateway.http.app import build_app

    return build_app(cfg)


@dataclass
class Running:
    cfg: NodeConfig
    runner: web.AppRunner


async def start(cfg: NodeConfig, *, reuse_port: bool = False) -> Running:
    from gateway.http.app import make_runner

    runner = make_runner(app_for(cfg))
    try:
        await runner.setup()
        site = web.TCPSite(runner, cfg.host, cfg.port, reuse_address=True, reuse_port=reuse_port)
        await site.start()
    except BaseException:
        # A start that fails half-way (Redis down, port taken) still closes what it
        # opened: the stores' threads and files, in the order they were set up.
        with contextlib.suppress(Exception):
            await runner.cleanup()
        raise
    return Running(cfg, runner)


async def serve_until_stopped(
    configs: list[NodeConfig], banner: bool, *, reuse_port: bool = False
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    running: list[Running] = []
    try:
        for cfg in configs:
            running.append(await start(cfg, reuse_port=reuse_port))
        if reuse_port:
            from gateway.cli.workers import tell_ready

            tell_ready()
        if banner:
            print_banner(configs)
        await stop.wait()
    finally:
        for r in reversed(running):
            with contextlib.suppress(Exception):
                await r.runner.cleanup()
        if banner:
            print("stopped.", flush=True)


def print_banner(configs: list[NodeConfig]) -> None:
    print("Tongban demo network (跨省通办) is running:", flush=True)
    for cfg in configs:
        kind = f"simulator ({cfg.simulator})" if cfg.simulator else "Tongban node"
        print(f"  {cfg.id}  {cfg.name:<16} {cfg.public_url:<24} {kind}")
    home = configs[0]
    print(f"\n  hall desk: {home.public_url}/desk/  (staff01 / demo-staff, audit01 / demo-audit)")
    print(f"  try:      tongban call --node cn-330800 GET {home.public_url}/v1/catalog")
    print("\nCtrl-C stops everything.", flush=True)


GIL_SWITCH_INTERVAL = 0.0005
"""Seconds a thread may hold the GIL while another waits for it (CPython: 0.005)."""


def run_serve(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    # The audit writer and the replay cache commit on their own threads; each SQLite
    # statement gives the GIL up and must take it back, and while the event loop is
    # busy every take-back waits out a whole switch interval. At CPython's 5 ms a
    # group commit of a few statements waited tens of milliseconds for the GIL.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    cfg = node_config(args)
    if args.port:
        cfg = cfg.with_port_offset(args.port - cfg.port)
    if args.workers != 1:
        from gateway.cli.workers import supervise

        return supervise(args, cfg)
    asyncio.run(serve_until_stopped([cfg], banner=False, reuse_port=args.reuse_port))
    return 0


def demo_configs(base_port: int = 8080) -> list[NodeConfig]:
    configs = [load_node_config(demo_config_path(n)) for n in DEMO_NODE_IDS]
    offset = base_port - configs[0].port
    return [c.with_port_offset(offset) for c in configs]


def run_demo(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    made = ensure_demo_pki()
    if made:
        print(f"made {len(made)} demo keys and certificates under certs/", file=sys.stderr)
    configs = demo_configs(args.base_port)
    from gateway.demo_data import seed_demo

    seed_demo(configs)
    asyncio.run(serve_until_stopped(configs, banner=True))
    return 0
