"""Polling a partner that never calls back: Zhuzhou (``form_async``), its real simulator
on 127.0.0.1 working each request through at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from adapters.sim_workflow import SimTiming, plan_for
from adapters.simulators import simulator_app
from gateway.exchange.poller import RequestPoller, adapter_polls
from tests.exchange.harness import Exchange
from tests.exchange.support import APPLICANT_ID, JIAN, QUZHOU, ZHUZHOU, Clock, license_id
from tests.support.network import Tree

pytestmark = pytest.mark.timeout(60)
DISABILITY = "111000000000179619001"


@pytest.fixture
async def zhuzhou(tree: Tree) -> AsyncIterator[None]:
    cfg = tree.config(ZHUZHOU)
    runner = web.AppRunner(simulator_app(cfg, timing=SimTiming(step_seconds=0)))
    await runner.setup()
    await web.TCPSite(runner, cfg.host, cfg.port, reuse_address=True).start()
    yield
    await runner.cleanup()


@pytest.fixture
async def exchange(tree: Tree) -> AsyncIterator[Exchange]:
    # the simulator works on the real clock: start there, so its times are not "future"
    ex = Exchange.for_node(tree.config(JIAN), Clock(time.time()))
    await ex.open()
    yield ex
    await ex.close()


async def test_statuses_of_a_polling_partner_come_in_through_the_poller(
    exchange: Exchange, zhuzhou: None
) -> None:
    assert exchange.service is not None and exchange.adapters is not None
    assert exchange.stores is not None
    assert adapter_polls(exchange.adapters[ZHUZHOU]) and not adapter_polls(
        exchange.adapters[QUZHOU]
    )
    record, _ = await exchange.service.accept_local(
        {
            "request_id": "6f1c2a9e-6a51-4c59-9a51-2f0d3c1b7a00",
            "item_code": "TB-430200-0305",
            "applicant": {"name": "李秀英", "id_type": "111", "id": APPLICANT_ID},
            "licenses": [license_id(type_code=DISABILITY)],
            "submitted_at": "2026-06-01T09:00:00+08:00",
        }
    )
    poller = RequestPoller(
        service=exchange.service,
        ledger=exchange.stores.queue.ledger,
        adapters=exchange.adapters,
        clock=exchange.clock,
        interval=5.0,
    )
    assert await poller.run_once() == 0  # not delivered yet: nothing to ask about
    assert (await exchange.run()).delivered == [f"submit:{record.request_id}"]
    expected = ["received", *(step.status for step in plan_for(record.request_id))]
    statuses: list[str] = []
    async with asyncio.timeout(20):
        for _ in range(400):  # the simulator works in real time: poll until it is done
            exchange.clock.advance(5.0)
            await poller.run_once()
            current = await exchange.service.store.get(record.request_id)
            assert current is not None
            statuses = [h.status for h in current.history]
            if current.is_final:
                break
            await asyncio.sleep(0.05)
    assert statuses == expected
    # asking again changes nothing: the partner's history is applied once
    exchange.clock.advance(5.0)
    assert await poller.run_once() == 0
    audited = await exchange.audit_events("request.status")
    assert [e["meta"]["status"] for e in audited] == expected[1:]
    assert {e["actor"]["id"] for e in audited} == {ZHUZHOU}
