"""``/v1/service-requests`` on running nodes, called with real signed partner tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.exchange.runtime import ExchangeTiming
from gateway.exchange.service import EXCHANGE
from tests.exchange.nodes import (
    Caller,
    Nodes,
    add_last_partner_key,
    add_native_partner,
    edit_config,
)
from tests.exchange.support import JIAN, QUZHOU, TONGLIAO, new_request_id, submission
from tests.support.network import Tree

pytestmark = pytest.mark.timeout(60)
# The demo clerk and the timers stay still: these tests look at the API alone.
STILL = ExchangeTiming(demo_step=1e9, escalation_interval=3600, poll_tick=3600)
PATH = "/v1/service-requests"


@pytest.fixture
async def nodes(tree: Tree) -> AsyncIterator[Nodes]:
    running = Nodes(tree)
    try:
        yield running
    finally:
        await running.stop_all()


def as_jian(tree: Tree, target: str = QUZHOU) -> Caller:
    return Caller(tree, JIAN, target)


async def test_submit_answers_202_received_and_a_resend_the_same(tree: Tree, nodes: Nodes) -> None:
    await nodes.start(QUZHOU, STILL)
    body = submission()
    status, answer, resp = await as_jian(tree).call("POST", PATH, body)
    assert status == 202, answer
    assert answer["request_id"] == body["request_id"]
    assert (answer["status"], answer["handling_node"]) == ("received", QUZHOU)
    assert resp.headers["Tongban-Audit"].startswith("seq=")
    # the same request again, keys in another order: the same answer, byte for byte
    again_status, _, again = await as_jian(tree).call("POST", PATH, dict(reversed(body.items())))
    assert (again_status, again.body) == (202, resp.body)


async def test_same_id_different_body_is_409(tree: Tree, nodes: Nodes) -> None:
    await nodes.start(QUZHOU, STILL)
    body = submission()
    await as_jian(tree).call("POST", PATH, body)
    status, problem, _ = await as_jian(tree).call("POST", PATH, body | {"form": {"x": 1}})
    assert (status, problem["code"]) == (409, "conflict")


BAD: dict[str, tuple[Any, int, str, str | None]] = {
    "not JSON object": ([1, 2], 400, "invalid_json", None),
    "bad uuid": (submission("nope"), 400, "validation_failed", "request_id"),
    "item of another city": (
        submission(item_code="TB-360800-0101", licenses=[]),
        400,
        "validation_failed",
        "item_code",
    ),
    "applicant missing": (
        {k: v for k, v in submission().items() if k != "applicant"},
        400,
        "validation_failed",
        "applicant",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
async def test_bad_submissions(tree: Tree, nodes: Nodes, name: str) -> None:
    await nodes.start(QUZHOU, STILL)
    body, status, code, field = BAD[name]
    got, problem, resp = await as_jian(tree).call("POST", PATH, body)
    assert (got, problem["code"]) == (status, code), problem
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    if field is not None:
        assert field in problem["fields"]


async def test_an_item_outside_the_partners_agreement_is_forbidden(
    tree: Tree, nodes: Nodes
) -> None:
    # Quzhou lets Ji'an submit only the retirement item, not mortgage deregistration.
    edit_config(tree, QUZHOU, 'items = ["*"]', 'items = ["TB-330800-0701"]')
    await nodes.start(QUZHOU, STILL)
    status, problem, _ = await as_jian(tree).call("POST", PATH, submission())
    assert (status, problem["code"]) == (403, "forbidden")


async def test_only_the_two_cities_involved_can_read_a_request(tree: Tree, nodes: Nodes) -> None:
    add_native_partner(tree, QUZHOU, TONGLIAO, tree.config(TONGLIAO).port)
    await nodes.start(QUZHOU, STILL)
    body = submission()
    await as_jian(tree).call("POST", PATH, body)
    status, view, _ = await as_jian(tree).call("GET", f"{PATH}/{body['request_id']}")
    assert status == 200, view
    assert (view["status"], view["accepting_node"], view["handling_node"]) == (
        "received",
        JIAN,
        QUZHOU,
    )
    assert [h["status"] for h in view["history"]] == ["received"]
    assert view["deadline"]["time_limit_days"] == 5
    assert view["escalations"] == []
    assert "applicant" not in view
    # Tongliao is a partner of Quzhou but not involved: the request does not exist for it
    other = Caller(tree, TONGLIAO, QUZHOU)
    status, problem, _ = await other.call("GET", f"{PATH}/{body['request_id']}")
    assert (status, problem["code"]) == (404, "not_found")
    status, problem, _ = await other.call("GET", f"{PATH}/{new_request_id()}")
    assert (status, problem["code"]) == (404, "not_found")
    status, problem, _ = await other.call("GET", f"{PATH}/not-a-uuid")
    assert (status, problem["code"]) == (404, "not_found")


async def _accepted_at_jian(tree: Tree, nodes: Nodes) -> str:
    """Start Ji'an with a request it accepted for Quzhou (Quzhou is not running)."""
    await nodes.start(JIAN, STILL)
    service = nodes.app(JIAN)[EXCHANGE]
    record, _ = await service.accept_local(submission(), staff="staff01")
    return record.request_id


async def test_events_from_the_handling_city_move_the_request(tree: Tree, nodes: Nodes) -> None:
    rid = await _accepted_at_jian(tree, nodes)
    quzhou = Caller(tree, QUZHOU, JIAN)
    path = f"{PATH}/{rid}/events"
    accepted = {"status": "accepted", "at": "2026-06-01T09:30:00+08:00", "note": "受理"}
    status, view, resp = await quzhou.call("POST", path, accepted)
    assert status == 200, view
    assert view["status"] == "accepted"
    assert resp.headers["Tongban-Audit"].startswith("seq=")
    # the same event again (a retry) changes nothing
    status, again, _ = await quzhou.call("POST", path, accepted)
    assert (status, again["history"]) == (200, view["history"])
    # a status that may not follow is refused
    status, problem, _ = await quzhou.call(
        "POST", path, {"status": "completed", "at": "2026-06-01T09:40:00+08:00"}
    )
    assert (status, problem["code"]) == (409, "conflict")
    assert "accepted cannot become completed" in problem["detail"]
    status, problem, _ = await quzhou.call("POST", path, {"status": "done", "at": "x"})
    assert (status, problem["code"]) == (400, "validation_failed")
    assert set(problem["fields"]) == {"status", "at"}


async def test_only_the_handling_city_may_send_events(tree: Tree, nodes: Nodes) -> None:
    add_last_partner_key(tree, JIAN, TONGLIAO)  # Tongliao may call Ji'an's /v1 too
    rid = await _accepted_at_jian(tree, nodes)
    event = {"status": "accepted", "at": "2026-06-01T09:30:00+08:00"}
    status, problem, _ = await Caller(tree, TONGLIAO, JIAN).call(
        "POST", f"{PATH}/{rid}/events", event
    )
    assert (status, problem["code"]) == (403, "forbidden")
    status, problem, _ = await Caller(tree, QUZHOU, JIAN).call(
        "POST", f"{PATH}/{new_request_id()}/events", event
    )
    assert (status, problem["code"]) == (404, "not_found")


async def test_the_openapi_document_describes_the_routes(tree: Tree, nodes: Nodes) -> None:
    import aiohttp

    await nodes.start(QUZHOU, STILL)
    async with aiohttp.ClientSession() as s, s.get(tree.url(QUZHOU) + "/openapi.json") as r:
        doc = await r.json()
    assert set(doc["paths"][PATH]) == {"post"}
    assert set(doc["paths"][PATH + "/{request_id}"]) == {"get"}
    assert set(doc["paths"][PATH + "/{request_id}/events"]) == {"post"}
