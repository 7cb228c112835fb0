"""One worker process of a node served by several processes on one port.

``tongban serve`` binds its port alone; to let two processes serve one node (the
kernel spreading connections between them) this worker builds the very same
application (``gateway.cli.serve_cmd.app_for``) and binds with ``SO_REUSEPORT``.
Several processes of one node need Redis for the replay cache (SPEC 9): the config
given must carry ``redis_url``.

    python -m bench.serve_worker --config FILE --port P
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiohttp import web

from gateway.cli.serve_cmd import app_for
from gateway.config import load_node_config
from gateway.http.app import make_runner
from gateway.logs import configure_logging


async def serve(config: str, port: int) -> None:
    cfg = load_node_config(config)
    cfg = cfg.with_port_offset(port - cfg.port)
    runner = make_runner(app_for(cfg))
    await runner.setup()
    site = web.TCPSite(runner, cfg.host, cfg.port, reuse_port=True)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    configure_logging(args.log_level)
    asyncio.run(serve(args.config, args.port))


if __name__ == "__main__":
    main()
