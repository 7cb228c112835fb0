"""Ji'an (a real node, with the adapters' callback routes wired by build_app)
hands requests to the three simulated legacy cities and hears back from each in its own
way: Longyan and Tongliao by signed callback, Zhuzhou by being polled."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from adapters.sim_workflow import SimTiming
from gateway.exchange.runtime import ExchangeTiming
from gateway.exchange.service import EXCHANGE, ExchangeService
from gateway.http.app import build_app
from gateway.http.context import AUDIT
from gateway.http.requests_api import EXCHANGE_TIMING
from tests.adapters.harness import (
    JIAN,
    LEGACY_STYLES,
    STATUSES_OF,
    ManualClock,
    request_id_for,
    running_partner,
    submission,
)
from tests.support.network import Tree

FAST = ExchangeTiming(worker_interval=0.05, poll_tick=0.05, poll_interval=0.1)


@asynccontextmanager
async def running_jian(tree: Tree) -> AsyncIterator[web.Application]:
    cfg = tree.config(JIAN)

    def wire(app: web.Application) -> None:
        app[EXCHANGE_TIMING] = FAST

    app = build_app(cfg, extra_setup=(wire,))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, cfg.host, cfg.port, reuse_address=True).start()
    try:
        yield app
    finally:
        await runner.cleanup()


async def test_every_legacy_city_works_a_request_and_reports_back(tree: Tree) -> None:
    # Legacy cities write times to the second, so the simulated steps are one second
    # apart on a clock the test moves; the node's own loops run in real time.
    clock = ManualClock()
    timing = SimTiming(step_seconds=1, poll_seconds=0.05, retry_base_seconds=0.05)
    outcomes = {"xml_envelope": "supplement", "form_async": "complete", "sharing_api": "reject"}
    async with (
        running_partner(tree, "xml_envelope", timing=timing, clock=clock) as longyan,
        running_partner(tree, "form_async", timing=timing, clock=clock) as zhuzhou,
        running_partner(tree, "sharing_api", timing=timing, clock=clock) as tongliao,
        running_jian(tree) as jian,
    ):
        service: ExchangeService = jian[EXCHANGE]
        expected = {}
        for style in LEGACY_STYLES:
            request_id = request_id_for(outcomes[style])
            expected[request_id] = ["received", *STATUSES_OF[outcomes[style]]]
            _, created = await service.accept_local(submission(style, request_id).to_json())
            assert created
        got: dict[str, list[str]] = {}
        for _ in range(400):  # bounded: a few seconds of real work at most
            for request_id in expected:
                record = await service.store.get(request_id)
                got[request_id] = [] if record is None else [h.status for h in record.history]
            if got == expected:
                break
            clock.advance(1)
            for sim in (longyan, zhuzhou, tongliao):
                await sim.tick()
            await asyncio.sleep(0.02)  # let the node's outbox, poller and callbacks run
        assert got == expected

        # Each callback from a push-style city is one audit entry, by that partner.
        audit = jian[AUDIT]
        callbacks = []
        async for _, data in audit.iter_entries():
            entry = json.loads(data)
            if entry["event"] == "service_request.event":
                callbacks.append((entry["actor"]["type"], entry["actor"]["id"], entry["outcome"]))
        assert ("partner", "cn-350800", "ok") in callbacks
        assert ("partner", "cn-150500", "ok") in callbacks
        assert all(actor != "unauthenticated" for _, actor, _ in callbacks)
