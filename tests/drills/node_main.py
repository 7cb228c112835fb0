"""A node in its own process with the exchange's timing made fast, for the drills.

``python -m tests.drills.node_main --config FILE --port P`` builds exactly the node
``tongban serve`` builds (``gateway.http.app.build_app``) and sets only
``EXCHANGE_TIMING`` — the clerk's step, retry backoff, circuit cooldown and outbox
lease — from the command line, so a drill that kills the process with SIGKILL sees
retries within seconds instead of the production minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiohttp import web

from gateway.config import load_node_config
from gateway.exchange.circuit import CircuitPolicy
from gateway.exchange.outbox import RetryPolicy
from gateway.exchange.runtime import ExchangeTiming
from gateway.http.app import build_app, make_runner
from gateway.http.requests_api import EXCHANGE_TIMING
from gateway.logs import configure_logging


def timing(step: float) -> ExchangeTiming:
    return ExchangeTiming(
        worker_interval=0.05,
        poll_tick=0.05,
        escalation_interval=0.5,
        demo_step=step,
        retry=RetryPolicy(base=0.05, cap=0.5),
        circuit=CircuitPolicy(threshold=3, cooldown=0.5),
        lease=1.5,
        claim_idle=2.0,
        attempt_timeout=3.0,
        stop_grace=1.0,
    )


async def serve(config: str, port: int, step: float) -> None:
    cfg = load_node_config(config)
    cfg = cfg.with_port_offset(port - cfg.port)
    app = build_app(cfg)
    app[EXCHANGE_TIMING] = timing(step)
    runner = make_runner(app)
    await runner.setup()
    await web.TCPSite(runner, cfg.host, cfg.port, reuse_address=True).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--demo-step", type=float, default=0.3)
    args = parser.parse_args()
    configure_logging("INFO")
    asyncio.run(serve(args.config, args.port, args.demo_step))


if __name__ == "__main__":
    main()
