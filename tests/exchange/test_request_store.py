"""The request store: idempotent creation, the status machine, history, and the outbox
entry written in the same transaction. Real SQLite files in ``tmp_path``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import Conflict, NotFound
from gateway.exchange.db import ExchangeDb
from gateway.exchange.model import REQUEST_STATUSES, TRANSITIONS, StatusEvent, Submission
from gateway.exchange.outbox import OutboxLedger, event_entry, submission_entry
from gateway.exchange.requests import RequestStore, Role, ServiceRequest, submission_digest
from gateway.exchange.validation import parse_submission
from tests.exchange.support import JIAN, QUZHOU, T0, catalog, new_request_id, submission

CATALOG = catalog()
# The shortest path from received to each status.
PATHS: dict[str, tuple[str, ...]] = {
    "received": (),
    "accepted": ("accepted",),
    "in_progress": ("accepted", "in_progress"),
    "needs_supplement": ("accepted", "in_progress", "needs_supplement"),
    "completed": ("accepted", "in_progress", "completed"),
    "rejected": ("rejected",),
}


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[ExchangeDb]:
    database = ExchangeDb(tmp_path / "exchange.db")
    yield database
    await database.close()


def validated(body: dict[str, Any], accepting: str = JIAN) -> Submission:
    return parse_submission(
        body, catalog=CATALOG, accepting_node=accepting, now=datetime.fromtimestamp(T0, UTC)
    )


async def create(
    store: RequestStore, body: dict[str, Any], *, role: Role = "handling"
) -> tuple[ServiceRequest, bool]:
    sub = validated(body)
    return await store.create(
        sub,
        role=role,
        handling_node=QUZHOU,
        answer={"request_id": sub.request_id, "status": "received"},
        received=StatusEvent(sub.request_id, "received", "2026-06-01T01:00:00.000000Z"),
        source=JIAN,
        now=T0,
        next_escalation_at=None,
        outbox=submission_entry(sub, QUZHOU) if role == "accepting" else None,
    )


def event(rid: str, status: str, n: int = 0) -> StatusEvent:
    return StatusEvent(rid, status, f"2026-06-01T02:{n:02d}:00.000000Z")  # type: ignore[arg-type]


async def test_same_request_twice_is_the_same_record(db: ExchangeDb) -> None:
    store = RequestStore(db)
    body = submission()
    first, created = await create(store, body)
    # the same submission with keys in another order and the id upper-cased
    resent = dict(reversed(list(body.items())))
    resent["request_id"] = str(body["request_id"]).upper()
    second, created_again = await create(store, resent)
    assert (created, created_again) == (True, False)
    assert second == first


async def test_same_id_with_another_body_is_a_conflict(db: ExchangeDb) -> None:
    store = RequestStore(db)
    body = submission()
    await create(store, body)
    with pytest.raises(Conflict) as caught:
        await create(store, submission(body["request_id"], form={"reason": "changed"}))
    assert (caught.value.code, caught.value.status) == ("conflict", 409)
    stored = await store.get(str(body["request_id"]))
    assert stored is not None and stored.submission.form == body["form"]


async def test_same_id_from_another_city_is_a_conflict(db: ExchangeDb) -> None:
    store = RequestStore(db)
    body = submission()
    await create(store, body)
    other = validated(body, accepting="cn-350800")
    assert submission_digest(other) != submission_digest(validated(body))
    with pytest.raises(Conflict):
        await store.create(
            other,
            role="handling",
            handling_node=QUZHOU,
            answer={},
            received=StatusEvent(other.request_id, "received", "2026-06-01T01:00:00.000000Z"),
            source="cn-350800",
            now=T0,
            next_escalation_at=None,
        )


ILLEGAL = [
    (current, target)
    for current in REQUEST_STATUSES
    for target in REQUEST_STATUSES
    if target not in TRANSITIONS[current]
]


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
async def test_every_illegal_transition_is_a_conflict(
    db: ExchangeDb, current: str, target: str
) -> None:
    store = RequestStore(db)
    rid = new_request_id()
    await create(store, submission(rid))
    for n, status in enumerate(PATHS[current], start=1):
        await store.transition(event(rid, status, n), source=QUZHOU, now=T0 + n)
    with pytest.raises(Conflict) as caught:
        await store.transition(event(rid, target, 50), source=QUZHOU, now=T0 + 50)
    assert caught.value.code == "conflict"
    assert f"in status {current} cannot become {target}" in caught.value.detail
    record = await store.get(rid)
    assert record is not None and record.status == current
    assert len(record.history) == len(PATHS[current]) + 1


async def test_supplement_path_keeps_the_full_history(db: ExchangeDb) -> None:
    store = RequestStore(db)
    rid = new_request_id()
    await create(store, submission(rid))
    steps = ["accepted", "in_progress", "needs_supplement", "in_progress", "completed"]
    for n, status in enumerate(steps, start=1):
        record, changed = await store.transition(event(rid, status, n), source=QUZHOU, now=T0 + n)
        assert changed
    assert record.status == "completed"
    assert [h.status for h in record.history] == ["received", *steps]
    assert record.is_final


async def test_a_repeated_event_changes_nothing(db: ExchangeDb) -> None:
    store = RequestStore(db)
    rid = new_request_id()
    await create(store, submission(rid))
    first, changed = await store.transition(event(rid, "accepted", 1), source=QUZHOU, now=T0)
    again, changed_again = await store.transition(event(rid, "accepted", 1), source=QUZHOU, now=T0)
    assert (changed, changed_again) == (True, False)
    assert again == first
    # the same status at another time is a new event, and accepted -> accepted is illegal
    with pytest.raises(Conflict):
        await store.transition(event(rid, "accepted", 2), source=QUZHOU, now=T0)


async def test_unknown_request_is_not_found(db: ExchangeDb) -> None:
    with pytest.raises(NotFound):
        await RequestStore(db).transition(
            event(new_request_id(), "accepted"), source=QUZHOU, now=T0
        )


async def test_the_delivery_is_written_with_the_change(db: ExchangeDb) -> None:
    store, ledger = RequestStore(db), OutboxLedger(db)
    rid = new_request_id()
    await create(store, submission(rid), role="accepting")
    accepted = event(rid, "accepted", 1)
    await store.transition(accepted, source=QUZHOU, now=T0, outbox=event_entry(accepted, JIAN))
    rows = await ledger.for_request(rid)
    assert [(r.kind, r.partner, r.state) for r in rows] == [
        ("submit", QUZHOU, "pending"),
        ("event", JIAN, "pending"),
    ]
    # a refused change writes no delivery either
    with pytest.raises(Conflict):
        bad = event(rid, "completed", 2)
        await store.transition(bad, source=QUZHOU, now=T0, outbox=event_entry(bad, JIAN))
    assert len(await ledger.for_request(rid)) == 2


async def test_two_processes_creating_the_same_request_make_one(tmp_path: Path) -> None:
    # Two connections with their own threads stand for two processes on one data dir.
    first, second = ExchangeDb(tmp_path / "x.db"), ExchangeDb(tmp_path / "x.db")
    try:
        body = submission()
        results = await asyncio.gather(
            create(RequestStore(first), body, role="accepting"),
            create(RequestStore(second), body, role="accepting"),
        )
        assert sorted(created for _, created in results) == [False, True]
        assert len(await OutboxLedger(first).for_request(str(body["request_id"]))) == 1
    finally:
        await first.close()
        await second.close()


async def test_records_survive_reopening(tmp_path: Path) -> None:
    rid = new_request_id()
    db = ExchangeDb(tmp_path / "x.db")
    await create(RequestStore(db), submission(rid))
    await RequestStore(db).transition(event(rid, "accepted", 1), source=QUZHOU, now=T0)
    await db.close()
    reopened = ExchangeDb(tmp_path / "x.db")
    try:
        record = await RequestStore(reopened).get(rid)
        assert record is not None and record.status == "accepted"
    finally:
        await reopened.close()
