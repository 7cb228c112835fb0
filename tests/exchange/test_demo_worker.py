"""The demo clerk: a demo node works the requests it handles, one step per ``step``,
along a plan chosen by a rule the README can show."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.exchange.demo_worker import PLANS, DemoWorker, demo_outcome
from tests.exchange.harness import Exchange
from tests.exchange.support import JIAN, QUZHOU, Clock, new_request_id, submission
from tests.support.network import Tree


@pytest.mark.parametrize(
    ("last", "form", "outcome"),
    [
        ("0", {}, "complete"),
        ("b", {}, "complete"),
        ("c", {}, "supplement"),
        ("D", {}, "supplement"),
        ("e", {}, "reject"),
        ("f", {}, "reject"),
        ("f", {"demo_outcome": "complete"}, "complete"),
        ("0", {"demo_outcome": "supplement"}, "supplement"),
        ("0", {"demo_outcome": "explode"}, "complete"),
    ],
)
def test_the_rule(last: str, form: dict[str, str], outcome: str) -> None:
    assert demo_outcome(new_request_id(last), form) == outcome


@pytest.fixture
async def exchange(tree: Tree) -> AsyncIterator[Exchange]:
    ex = Exchange.for_node(tree.config(JIAN), Clock())
    await ex.open()
    yield ex
    await ex.close()


@pytest.mark.parametrize("last", ["0", "c", "e"])
async def test_each_plan_is_worked_step_by_step_and_reported(exchange: Exchange, last: str) -> None:
    assert exchange.service is not None
    partner = exchange.cfg.partner(QUZHOU)
    assert partner is not None
    rid = new_request_id(last)
    body = submission(rid, item_code="TB-360800-0101", licenses=[])
    await exchange.service.receive_submission(partner, body)
    clerk = DemoWorker(service=exchange.service, clock=exchange.clock, step=2.0)
    assert await clerk.run_once() == []  # not before a step has passed
    moved = []
    for _ in range(10):
        exchange.clock.advance(2.0)
        moved += [status for _, status in await clerk.run_once()]
    plan = PLANS[demo_outcome(rid, {})]
    assert moved == list(plan[1:])
    record = await exchange.service.store.get(rid)
    assert record is not None and record.is_final
    # every change is on its way to the accepting city, in order
    events = [d.event().status for d in await exchange.deliveries(rid)]
    assert events == list(plan[1:])
    assert {d.partner for d in await exchange.deliveries(rid)} == {QUZHOU}


async def test_a_request_staff_took_off_the_plan_is_left_alone(exchange: Exchange) -> None:
    assert exchange.service is not None
    partner = exchange.cfg.partner(QUZHOU)
    assert partner is not None
    rid = new_request_id("0")
    await exchange.service.receive_submission(
        partner, submission(rid, item_code="TB-360800-0101", licenses=[])
    )
    await exchange.service.advance(rid, "rejected", actor_type="staff", actor_sub="staff01")
    exchange.clock.advance(10)
    clerk = DemoWorker(service=exchange.service, clock=exchange.clock, step=2.0)
    assert await clerk.run_once() == []
