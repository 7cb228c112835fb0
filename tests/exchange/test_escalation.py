"""The 三单一函 ladder on a real store and audit log, driven by a hand-turned clock over
a deadline that spans a weekend and the National Day holidays."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from gateway.exchange.deadlines import BEIJING
from gateway.exchange.escalation import EscalationTimer
from gateway.exchange.requests import ServiceRequest
from tests.exchange.harness import Exchange
from tests.exchange.support import JIAN, QUZHOU, Clock, submission
from tests.support.network import Tree

# Ji'an handles TB-360800-0101 within 3 working days. Submitted Thursday 24 September
# 2026: Friday 25 is a holiday (Mid-Autumn), then the weekend; 1-7 October is National
# Day (the demo configuration lists 1, 2, 5, 6, 7; 3 and 4 are the weekend).
SUBMITTED = "2026-09-24T10:00:00+08:00"


def cst(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING).timestamp()


@pytest.fixture
async def exchange(tree: Tree) -> AsyncIterator[Exchange]:
    ex = Exchange.for_node(tree.config(JIAN), Clock(cst("2026-09-24T10:00:01")))
    await ex.open()
    yield ex
    await ex.close()


async def handled_request(ex: Exchange) -> ServiceRequest:
    assert ex.service is not None
    partner = ex.cfg.partner(QUZHOU)
    assert partner is not None
    body = submission(item_code="TB-360800-0101", licenses=[], submitted_at=SUBMITTED)
    record, _ = await ex.service.receive_submission(partner, body)
    return record


def timer(ex: Exchange) -> EscalationTimer:
    assert ex.service is not None and ex.audit is not None
    return EscalationTimer(service=ex.service, audit=ex.audit, clock=ex.clock)


async def test_ladder_fires_each_level_once_at_its_time(exchange: Exchange) -> None:
    record = await handled_request(exchange)
    steps = [
        ("2026-09-29T11:59:59", []),
        ("2026-09-29T12:00:00", ["reminder"]),
        ("2026-09-29T18:00:00", []),
        ("2026-09-30T09:36:00", ["urge"]),
        ("2026-10-01T00:00:00", ["supervise"]),
        ("2026-10-07T23:59:59", []),  # still overdue through the holidays, no new rung
        ("2026-10-09T00:00:00", ["transfer"]),
        ("2026-12-31T00:00:00", []),
    ]
    for moment, expected in steps:
        exchange.clock.now = cst(moment)
        fired = await timer(exchange).run_once()
        assert fired == [(record.request_id, level) for level in expected], moment
    assert exchange.service is not None
    stored = await exchange.service.store.get(record.request_id)
    assert stored is not None
    view = exchange.service.view(stored)
    assert [(e["level"], e["due_at"]) for e in view["escalations"]] == [
        ("reminder", "2026-09-29T04:00:00.000000Z"),
        ("urge", "2026-09-30T01:36:00.000000Z"),
        ("supervise", "2026-09-30T16:00:00.000000Z"),
        ("transfer", "2026-10-08T16:00:00.000000Z"),
    ]
    assert view["deadline"]["due_at"] == "2026-10-01T00:00:00+08:00"
    audited = await exchange.audit_events("request.escalate")
    assert [e["meta"]["level"] for e in audited] == ["reminder", "urge", "supervise", "transfer"]
    assert all(e["actor"]["type"] == "system" for e in audited)
    assert all(e["subject"] and "330802" not in e["subject"] for e in audited)


async def test_a_node_down_past_several_rungs_fires_them_all_once(exchange: Exchange) -> None:
    record = await handled_request(exchange)
    await exchange.restart()
    exchange.clock.now = cst("2026-10-01T08:00:00")
    assert [level for _, level in await timer(exchange).run_once()] == [
        "reminder",
        "urge",
        "supervise",
    ]
    await exchange.restart()  # and again: nothing fires twice
    assert await timer(exchange).run_once() == []
    audited = await exchange.audit_events("request.escalate")
    assert len(audited) == 3
    assert {e["meta"]["request_id"] for e in audited} == {record.request_id}


async def test_a_finished_request_is_not_escalated(exchange: Exchange) -> None:
    assert exchange.service is not None
    record = await handled_request(exchange)
    exchange.clock.now = cst("2026-09-29T12:30:00")
    assert len(await timer(exchange).run_once()) == 1
    for status in ("accepted", "in_progress", "completed"):
        await exchange.service.advance(record.request_id, status)  # type: ignore[arg-type]
    exchange.clock.now = cst("2026-12-31T00:00:00")
    assert await timer(exchange).run_once() == []
    assert len(await exchange.audit_events("request.escalate")) == 1
