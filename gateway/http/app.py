"""Assemble one node: configuration in, ``web.Application`` out.

Long-lived resources open and close in ``cleanup_ctx`` in dependency order (stores
before the things that write to them), so a failing start leaves nothing half-open and
a graceful shutdown drains in reverse.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from adapters import inbound_routes, make_adapter
from gateway.config import NodeConfig
from gateway.exchange.catalog import load_catalog
from gateway.http import catalog_api, ops
from gateway.http.context import (
    ADAPTERS,
    AUDIT,
    CATALOG,
    CONFIG,
    METRICS,
    RATE,
    READINESS,
    REGISTRY,
    REPLAY,
    TOKEN_KEY,
)
from gateway.http.metrics import make_metrics
from gateway.http.middleware import pipeline
from gateway.keys import load_token_key
from gateway.tokens import (
    InProcessRateLimiter,
    RedisRateLimiter,
    RedisReplayCache,
    SqliteReplayCache,
    redis_from_url,
)

#: Extra setup steps (one per concern), each adding routes and cleanup contexts.
Setup = Callable[[web.Application], None]


async def _safety_stores(app: web.Application) -> AsyncIterator[None]:
    """Replay cache and rate limiter: Redis when configured, embedded otherwise."""
    cfg = app[CONFIG]
    if cfg.redis_url:
        client = redis_from_url(cfg.redis_url)
        replay = RedisReplayCache(client)
        app[REPLAY] = replay
        app[RATE] = RedisRateLimiter(client)
    else:
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        sqlite_replay = SqliteReplayCache(cfg.data_dir / "replay.db")
        replay = sqlite_replay  # type: ignore[assignment]
        app[REPLAY] = sqlite_replay
        app[RATE] = InProcessRateLimiter()
    app[READINESS]["replay_cache"] = replay.ping
    try:
        yield
    finally:
        await replay.close()


async def _adapters(app: web.Application) -> AsyncIterator[None]:
    """One adapter per partner; each owns its ClientSession and closes it on shutdown."""
    cfg = app[CONFIG]
    app[ADAPTERS] = {
        p.id: make_adapter(cfg, p, app[TOKEN_KEY], audit=app[AUDIT]) for p in cfg.partners
    }
    try:
        yield
    finally:
        for adapter in app[ADAPTERS].values():
            await adapter.close()


def build_app(cfg: NodeConfig, *, extra_setup: tuple[Setup, ...] = ()) -> web.Application:
    """The node's application; nothing touches disk or network until it starts."""
    app = web.Application(middlewares=[pipeline], client_max_size=cfg.max_body_bytes)
    app[CONFIG] = cfg
    app[CATALOG] = load_catalog(cfg.catalog_path)
    app[REGISTRY] = cfg.key_registry()
    app[METRICS] = make_metrics()
    app[TOKEN_KEY] = load_token_key(cfg)
    app[READINESS] = {}
    from gateway.audit.service import setup_audit  # the audit log opens first, closes last

    setup_audit(app)
    app.cleanup_ctx.append(_safety_stores)
    app.cleanup_ctx.append(_adapters)
    app.router.add_routes(ops.routes)
    app.router.add_routes(catalog_api.routes)
    for setup in (*default_setups(), *extra_setup):
        setup(app)
    return app


def default_setups() -> tuple[Setup, ...]:
    """Each concern's HTTP setup, in the order their resources must open."""
    from gateway.desk.setup import setup_desk
    from gateway.http import licenses_api, requests_api

    return (requests_api.setup, setup_partner_callbacks, setup_desk, licenses_api.setup)


def setup_partner_callbacks(app: web.Application) -> None:
    """Legacy partners that push status events in their own style (``/adapters/...``)."""
    from gateway.exchange.service import event_sink

    app.router.add_routes(inbound_routes(app[CONFIG], event_sink(app)))


__all__ = ["AUDIT", "build_app"]


#: Header fields up to 16 KiB reach the middleware, so an oversized token (> 8 KiB) is
#: answered as ``token_malformed`` instead of aiohttp's bare 400; beyond this the HTTP
#: parser refuses the request itself.
MAX_HEADER_FIELD = 16 * 1024


def make_runner(app: web.Application) -> web.AppRunner:
    """The runner every node and simulator is served with (CLI, demo and tests)."""
    return web.AppRunner(app, access_log=None, shutdown_timeout=5, max_field_size=MAX_HEADER_FIELD)
