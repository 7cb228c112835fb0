"""The durable outbox, on both backends: partner outages, restarts, crashes mid-send,
ordering, refusals and the circuit breaker. The partner is a real HTTP server on
127.0.0.1 that counts every call that reaches it; time moves only by the test's clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.exchange.outbox import RetryPolicy
from gateway.exchange.outbox_redis import RedisOutbox
from tests.exchange.harness import Exchange
from tests.exchange.support import JIAN, QUZHOU, Clock, Receiver, new_request_id, submission
from tests.support.network import Tree

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["sqlite", "redis"])
async def exchange(request: pytest.FixtureRequest, tree: Tree) -> AsyncIterator[Exchange]:
    url = request.getfixturevalue("redis_server").url if request.param == "redis" else None
    ex = Exchange.for_node(tree.config(JIAN), Clock(), url)
    await ex.open()
    yield ex
    await ex.close()


@pytest.fixture
async def receiver(tree: Tree) -> AsyncIterator[Receiver]:
    partner = Receiver(tree.config(QUZHOU).port)
    yield partner
    await partner.stop()


async def settle(ex: Exchange, rounds: int = 30, step: float = 301.0) -> None:
    """Run the worker, moving the clock past any backoff, until nothing is pending."""
    assert ex.stores is not None
    for _ in range(rounds):
        await ex.run()
        if all(q.pending == 0 for q in await ex.stores.queue.ledger.by_partner()):
            return
        ex.clock.advance(step)
    raise AssertionError("deliveries still pending after every round")


async def test_partner_down_for_a_while_then_each_request_arrives_once(
    exchange: Exchange, receiver: Receiver
) -> None:
    records = [await exchange.accept() for _ in range(3)]
    first = await exchange.run()
    assert sorted(first.retry) == sorted(f"submit:{r.request_id}" for r in records)
    for _ in range(4):  # still down: retries, then the breaker holds them back
        exchange.clock.advance(301)
        await exchange.run()
    assert receiver.posts == []
    for r in records:
        [d] = await exchange.deliveries(r.request_id)
        assert d.state == "pending" and d.attempts >= 1
        assert d.last_error is not None and "cannot be reached" in d.last_error
    await receiver.start()
    await settle(exchange)
    assert sorted(receiver.effective) == sorted(r.request_id for r in records)
    assert receiver.count() == 3  # not one duplicate
    outcomes = [e["meta"]["outcome"] for e in await exchange.audit_events("request.delivery")]
    assert outcomes.count("delivered") == 3
    assert outcomes.count("retry") >= 3


async def test_a_node_restart_in_between_still_delivers_once(
    exchange: Exchange, receiver: Receiver
) -> None:
    records = [await exchange.accept() for _ in range(2)]
    await exchange.run()  # partner down: both fail
    await exchange.restart()  # the node stops and starts again on the same data dir
    await receiver.start()
    exchange.clock.advance(301)
    await settle(exchange)
    await exchange.restart()
    exchange.clock.advance(301)
    await settle(exchange)  # nothing left to send after another restart
    assert sorted(receiver.effective) == sorted(r.request_id for r in records)
    assert receiver.count() == 2


async def test_a_crash_between_send_and_mark_is_one_effective_delivery(
    exchange: Exchange, receiver: Receiver
) -> None:
    record = await exchange.accept()
    receiver.hold = asyncio.Event()  # the partner stores it; its answer is slow to come
    await receiver.start()
    attempt = asyncio.create_task(exchange.run())
    async with asyncio.timeout(10):
        await receiver.arrived.wait()
    attempt.cancel()  # the node dies before it can mark the delivery done
    with pytest.raises(asyncio.CancelledError):
        await attempt
    receiver.hold.set()
    receiver.hold = None
    await exchange.restart()
    [d] = await exchange.deliveries(record.request_id)
    assert d.state == "pending"  # as far as the node knows, it was never delivered
    exchange.clock.advance(61)  # past the dead worker's lease
    await settle(exchange)
    assert receiver.count() == 2  # sent twice ...
    assert list(receiver.effective) == [record.request_id]  # ... but delivered once
    [d] = await exchange.deliveries(record.request_id)
    assert d.state == "delivered"


async def test_a_restart_takes_back_the_dead_workers_lease_at_once(
    exchange: Exchange, receiver: Receiver
) -> None:
    # The worker leased the delivery and died before attempting it. Its lease (60 s)
    # and, on Redis, its unacknowledged stream entry (XAUTOCLAIM after 90 s) would hold
    # the delivery back; the restarted node sees the lease owner is gone and sends now.
    record = await exchange.accept()
    assert exchange.stores is not None
    [leased] = await exchange.stores.queue.claim(exchange.clock(), 10)
    assert leased.request_id == record.request_id
    await exchange.restart()  # the clock does not move
    await receiver.start()
    report = await exchange.run()
    assert report.attempted == 1
    assert list(receiver.effective) == [record.request_id]
    [d] = await exchange.deliveries(record.request_id)
    assert d.state == "delivered"


async def test_events_are_delivered_in_the_order_they_happened(
    exchange: Exchange, receiver: Receiver
) -> None:
    assert exchange.service is not None and exchange.cfg.partner(QUZHOU) is not None
    # Ji'an handles this item; Quzhou accepted it: Ji'an reports each change to Quzhou.
    body = submission(item_code="TB-360800-0101", licenses=[])
    await exchange.service.receive_submission(exchange.cfg.partner(QUZHOU), body)
    rid = body["request_id"]
    for status in ("accepted", "in_progress", "completed"):
        await exchange.service.advance(rid, status)  # type: ignore[arg-type]
        exchange.clock.advance(1)
    report = await exchange.run()  # partner down: only the first is even attempted
    assert report.retry == [d.key for d in await exchange.deliveries(rid)][:1]
    await receiver.start()
    await settle(exchange)
    assert [body["status"] for _, body in receiver.posts] == [
        "accepted",
        "in_progress",
        "completed",
    ]


async def test_a_refused_delivery_is_parked_until_an_operator_retries(
    exchange: Exchange, receiver: Receiver
) -> None:
    assert exchange.stores is not None
    record = await exchange.accept()
    receiver.fail_with = (404, "not_found")
    await receiver.start()
    report = await exchange.run()
    assert report.refused == [f"submit:{record.request_id}"]
    exchange.clock.advance(3600)
    assert (await exchange.run()).attempted == 0  # parked: not retried by itself
    [d] = await exchange.deliveries(record.request_id)
    assert (d.state, d.attempts) == ("refused", 1)
    assert d.last_error is not None and d.last_error.startswith("not_found")
    receiver.fail_with = None
    assert await exchange.stores.queue.retry_now(record.request_id, exchange.clock()) == 1
    await settle(exchange)
    assert list(receiver.effective) == [record.request_id]


async def test_circuit_opens_after_threshold_then_half_opens_and_closes(
    exchange: Exchange, receiver: Receiver
) -> None:
    assert exchange.stores is not None
    breakers = exchange.stores.breakers
    records = [await exchange.accept() for _ in range(5)]
    report = await exchange.run()  # threshold 3: three attempts, then the circuit opens
    assert (len(report.retry), len(report.deferred)) == (3, 2)
    state = await breakers.state(QUZHOU)
    assert (state.status, state.failures) == ("open", 3)
    exchange.clock.advance(10)  # within the cool-down nothing is attempted
    assert (await exchange.run()).attempted == 0
    exchange.clock.advance(20)  # cool-down over: one probe, which fails: open again
    report = await exchange.run()
    assert len(report.retry) == 1
    assert (await breakers.state(QUZHOU)).status == "open"
    await receiver.start()
    exchange.clock.advance(30)  # the next probe succeeds and closes the circuit
    await settle(exchange, step=1.0)
    assert (await breakers.state(QUZHOU)).status == "closed"
    assert sorted(receiver.effective) == sorted(r.request_id for r in records)
    assert receiver.count() == 5
    states = [e["meta"]["state"] for e in await exchange.audit_events("partner.circuit")]
    assert states[0] == "open" and states[-1] == "closed"


async def test_the_redis_marker_stops_a_claimed_again_entry_being_sent_twice(
    tree: Tree, redis_server: object, receiver: Receiver
) -> None:
    url = redis_server.url  # type: ignore[attr-defined]
    ex = Exchange.for_node(tree.config(JIAN), Clock(), url)
    await ex.open()
    try:
        assert ex.stores is not None and ex.adapter is not None
        queue = ex.stores.queue
        assert isinstance(queue, RedisOutbox)
        record = await ex.accept()
        await receiver.start()
        [d] = await queue.claim(ex.clock(), 10)
        await ex.adapter.submit_request(d.submission())  # the partner acknowledged it
        await queue.mark_effective(d)  # ... and the marker is written; then the node dies
        await ex.restart()  # a new consumer takes the unacknowledged entry over
        ex.clock.advance(61)
        report = await ex.run()
        assert report.attempted == 0
        [after] = await ex.deliveries(record.request_id)
        assert after.state == "delivered"
        assert receiver.count() == 1
        fresh = ex.stores.queue
        assert isinstance(fresh, RedisOutbox) and fresh is not queue
        pending = await fresh.redis.xpending(fresh.stream, fresh.group)
        assert pending["pending"] == 0  # the taken-over entry was acknowledged
    finally:
        await ex.close()


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    import random

    policy, rng = RetryPolicy(base=2.0, cap=60.0), random.Random(1)
    for attempts, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0), (6, 60.0), (50, 60.0)]:
        delays = [policy.delay(attempts, rng) for _ in range(200)]
        assert all(0.0 <= x <= ceiling for x in delays)
        assert max(delays) > ceiling * 0.8  # the whole range is used: full jitter


async def test_unknown_request_ids_stay_apart(exchange: Exchange, receiver: Receiver) -> None:
    # two requests whose ids differ only in case are one request (canonical UUID form)
    rid = new_request_id()
    await exchange.accept(request_id=rid)
    assert exchange.service is not None
    again, created = await exchange.service.accept_local(submission(rid.upper()))
    assert not created and again.request_id == rid
