"""Simulators of the legacy partner systems, started by ``tongban demo`` and the tests."""

from __future__ import annotations

from aiohttp import web

from gateway.config import NodeConfig


def simulator_app(cfg: NodeConfig) -> web.Application:
    """The simulator for ``cfg.simulator``'s partner style."""
    app = web.Application()

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "node": cfg.id, "style": cfg.simulator})

    app.router.add_get("/healthz", health)
    return app
