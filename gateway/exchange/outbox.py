"""Durable outbox: every outbound delivery is written before it is attempted (SPEC 5).

Two kinds of delivery leave a node: a **submission** to the city that handles a request
(idempotency key ``submit:<request_id>``) and a **status event** to the city that
accepted it (``event:<request_id>:<status>:<at>``). Each is a row of the ``outbox``
table, inserted in the *same transaction* as the state change that causes it
(``enqueue``), so after a crash either both exist or neither does.

Guarantees, whatever the backend:

- **never lost**: a row stays ``pending`` until the partner acknowledged it (2xx); a
  restart, an outage or a crash mid-send only delays it;
- **one effective delivery per key**: a row is marked delivered only after the ack. A
  crash between the partner's ack and that mark sends it again, and the partner's own
  idempotency (same ``request_id`` + body, same event status + time) makes the second
  send change nothing; a lease (``lease_until``, on the injectable clock) keeps two
  workers from sending the same row at the same time;
- **in order per request**: a delivery waits while an earlier one of the same request is
  pending or refused, so ``accepted`` never overtakes ``received``;
- **backoff**: failed attempts are retried after an exponential delay with full jitter
  (``RetryPolicy``), capped; a refused delivery (the partner answered and said no)
  is parked as ``refused`` for an operator (``tongban requests retry``).

``SqliteOutbox`` hands out due rows straight from the table. The Redis Streams backend
(``gateway.exchange.outbox_redis``) distributes the same rows to the workers of several
processes; both share ``OutboxLedger``, the table's bookkeeping.
"""

from __future__ import annotations

import functools
import json
import os
import random
import socket
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from gateway.exchange.db import ExchangeDb
from gateway.exchange.model import StatusEvent, Submission

__all__ = [
    "DeliveryKind",
    "OutboundDelivery",
    "OutboxEntry",
    "OutboxLedger",
    "OutboxQueue",
    "PartnerQueue",
    "RetryPolicy",
    "SqliteOutbox",
    "enqueue",
    "event_entry",
    "submission_entry",
]

DeliveryKind = Literal["submit", "event"]
DeliveryState = Literal["pending", "delivered", "refused"]
MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class OutboxEntry:
    """A delivery to be written with the state change that causes it."""

    key: str
    partner: str
    kind: DeliveryKind
    request_id: str
    payload: dict[str, Any]


def submission_entry(submission: Submission, handling_node: str) -> OutboxEntry:
    """The delivery of a request we accepted to the city that handles it."""
    return OutboxEntry(
        key=f"submit:{submission.request_id}",
        partner=handling_node,
        kind="submit",
        request_id=submission.request_id,
        payload={
            "submission": submission.to_json(),
            "accepting_node": submission.accepting_node,
        },
    )


def event_entry(event: StatusEvent, accepting_node: str) -> OutboxEntry:
    """The delivery of a status change to the city that accepted the request."""
    return OutboxEntry(
        key=f"event:{event.request_id}:{event.status}:{event.at}",
        partner=accepting_node,
        kind="event",
        request_id=event.request_id,
        payload={"event": event.to_json(), "accepting_node": accepting_node},
    )


def enqueue(db: sqlite3.Connection, entry: OutboxEntry, now: float) -> bool:
    """Insert ``entry`` inside the caller's transaction; ``False`` if the key exists."""
    cursor = db.execute(
        "INSERT OR IGNORE INTO outbox (key, partner, kind, request_id, payload, created_at, "
        "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            entry.key,
            entry.partner,
            entry.kind,
            entry.request_id,
            json.dumps(entry.payload, ensure_ascii=False, sort_keys=True),
            now,
            now,
        ),
    )
    return cursor.rowcount == 1


@dataclass(frozen=True)
class OutboundDelivery:
    """One outbox row as a worker or an operator sees it."""

    seq: int
    key: str
    partner: str
    kind: DeliveryKind
    request_id: str
    payload: dict[str, Any]
    state: DeliveryState
    attempts: int
    created_at: float
    next_attempt_at: float
    last_attempt_at: float | None
    last_error: str | None
    delivered_at: float | None
    token: str = ""
    """Backend handle of this hand-out (the Redis stream entry id); empty for SQLite."""

    def submission(self) -> Submission:
        raw = self.payload["submission"]
        return Submission(
            request_id=raw["request_id"],
            item_code=raw["item_code"],
            applicant=raw["applicant"],
            licenses=tuple(raw["licenses"]),
            form=raw["form"],
            submitted_at=raw["submitted_at"],
            accepting_node=self.payload["accepting_node"],
        )

    def event(self) -> StatusEvent:
        raw = self.payload["event"]
        return StatusEvent(
            request_id=raw["request_id"], status=raw["status"], at=raw["at"], note=raw["note"]
        )

    def wire_body(self) -> dict[str, Any]:
        """What the delivery says, in the SPEC's JSON (its digest goes to the audit log)."""
        return dict(self.payload["submission" if self.kind == "submit" else "event"])

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "partner": self.partner,
            "kind": self.kind,
            "state": self.state,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "next_attempt_at": self.next_attempt_at if self.state == "pending" else None,
            "last_attempt_at": self.last_attempt_at,
            "last_error": self.last_error,
            "delivered_at": self.delivered_at,
        }


@dataclass(frozen=True)
class PartnerQueue:
    """What waits for one partner: for ``tongban requests list`` and the metrics."""

    partner: str
    pending: int
    refused: int
    delivered: int
    oldest_pending_at: float | None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits uniformly in
    ``[0, min(cap, base * 2**(n-1))]``, which spreads the retries of many deliveries
    to a partner that comes back instead of sending them in one burst."""

    base: float = 1.0
    cap: float = 300.0

    def delay(self, attempts: int, rng: random.Random) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(max(attempts - 1, 0), 40))
        return rng.uniform(0.0, ceiling)


_SELECT = """SELECT seq, key, partner, kind, request_id, payload, state, attempts, created_at,
    next_attempt_at, last_attempt_at, last_error, delivered_at FROM outbox o"""
# A row is blocked while an earlier row of the same request waits (pending) or was
# refused: events must arrive in the order they happened.
_UNBLOCKED = """ NOT EXISTS (SELECT 1 FROM outbox p WHERE p.request_id = o.request_id
    AND p.seq < o.seq AND p.state IN ('pending', 'refused'))"""
_BY_KEY = _SELECT + " WHERE key = ?"
_BY_REQUEST = _SELECT + " WHERE request_id = ? ORDER BY seq"
_LEASABLE = _SELECT + " WHERE key = ? AND state = 'pending' AND lease_until <= ? AND" + _UNBLOCKED
_DUE_KEYS = """SELECT key FROM outbox o WHERE state = 'pending' AND next_attempt_at <= ?
    AND lease_until <= ? AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.request_id = o.request_id
    AND p.seq < o.seq AND p.state IN ('pending', 'refused'))
    ORDER BY next_attempt_at, seq LIMIT ?"""


def _delivery(row: Sequence[Any], token: str = "") -> OutboundDelivery:
    return OutboundDelivery(
        seq=row[0],
        key=row[1],
        partner=row[2],
        kind=row[3],
        request_id=row[4],
        payload=json.loads(row[5]),
        state=row[6],
        attempts=row[7],
        created_at=row[8],
        next_attempt_at=row[9],
        last_attempt_at=row[10],
        last_error=row[11],
        delivered_at=row[12],
        token=token,
    )


class OutboxLedger:
    """The ``outbox`` table's bookkeeping, shared by both backends and the CLI."""

    def __init__(self, db: ExchangeDb) -> None:
        self.db = db

    # -- leases and outcomes -------------------------------------------------------

    @staticmethod
    def lease_in(
        db: sqlite3.Connection, key: str, owner: str, now: float, until: float
    ) -> OutboundDelivery | None:
        """Lease one due, unblocked, pending row inside the caller's transaction."""
        row = db.execute(_LEASABLE, (key, now)).fetchone()
        if row is None:
            return None
        db.execute(
            "UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE seq = ?",
            (owner, until, row[0]),
        )
        return _delivery(row)

    async def delivered(self, d: OutboundDelivery, now: float) -> None:
        await self.db.write(
            lambda db: db.execute(
                "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, "
                "last_attempt_at = ?, delivered_at = ?, last_error = NULL, lease_owner = NULL, "
                "lease_until = 0 WHERE seq = ? AND state = 'pending'",
                (now, now, d.seq),
            )
        )

    async def mirror_delivered(self, d: OutboundDelivery, now: float) -> None:
        """Record a delivery that another worker completed (its ack marker exists)."""
        await self.db.write(
            lambda db: db.execute(
                "UPDATE outbox SET state = 'delivered', delivered_at = COALESCE(delivered_at, ?), "
                "lease_owner = NULL, lease_until = 0 WHERE seq = ? AND state = 'pending'",
                (now, d.seq),
            )
        )

    async def failed(self, d: OutboundDelivery, now: float, next_at: float, error: str) -> None:
        await self.db.write(
            lambda db: db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ?, "
                "next_attempt_at = ?, last_error = ?, lease_owner = NULL, lease_until = 0 "
                "WHERE seq = ? AND state = 'pending'",
                (now, next_at, error[:MAX_ERROR_CHARS], d.seq),
            )
        )

    async def refused(self, d: OutboundDelivery, now: float, error: str) -> None:
        await self.db.write(
            lambda db: db.execute(
                "UPDATE outbox SET state = 'refused', attempts = attempts + 1, "
                "last_attempt_at = ?, last_error = ?, lease_owner = NULL, lease_until = 0 "
                "WHERE seq = ? AND state = 'pending'",
                (now, error[:MAX_ERROR_CHARS], d.seq),
            )
        )

    async def deferred(self, d: OutboundDelivery, until: float) -> None:
        """Not attempted (the partner's circuit is open): wait, without using an attempt."""
        await self.db.write(
            lambda db: db.execute(
                "UPDATE outbox SET next_attempt_at = MAX(next_attempt_at, ?), lease_owner = NULL, "
                "lease_until = 0 WHERE seq = ? AND state = 'pending'",
                (until, d.seq),
            )
        )

    async def reset(self, request_id: str, now: float) -> list[str]:
        """Make every undelivered row of a request due now (refused ones pending again);
        returns their keys."""

        def txn(db: sqlite3.Connection) -> list[str]:
            keys = [
                r[0]
                for r in db.execute(
                    "SELECT key FROM outbox WHERE request_id = ? AND state IN ('pending', "
                    "'refused') ORDER BY seq",
                    (request_id,),
                )
            ]
            db.execute(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?, published = 0 "
                "WHERE request_id = ? AND state IN ('pending', 'refused')",
                (now, request_id),
            )
            return keys

        return await self.db.write(txn)

    # -- reads -------------------------------------------------------------------------

    async def get(self, key: str) -> OutboundDelivery | None:
        row = await self.db.read(lambda db: db.execute(_BY_KEY, (key,)).fetchone())
        return _delivery(row) if row is not None else None

    async def for_request(self, request_id: str) -> list[OutboundDelivery]:
        rows = await self.db.read(lambda db: db.execute(_BY_REQUEST, (request_id,)).fetchall())
        return [_delivery(r) for r in rows]

    async def pending_by_partner(self) -> dict[str, int]:
        """Pending deliveries per partner (cheap: read from the ``state`` index)."""
        rows = await self.db.read(
            lambda db: db.execute(
                "SELECT partner, COUNT(*) FROM outbox WHERE state = 'pending' GROUP BY partner"
            ).fetchall()
        )
        return {r[0]: r[1] for r in rows}

    async def by_partner(self) -> list[PartnerQueue]:
        rows = await self.db.read(
            lambda db: db.execute(
                "SELECT partner, SUM(state = 'pending'), SUM(state = 'refused'), "
                "SUM(state = 'delivered'), MIN(CASE WHEN state = 'pending' THEN created_at END) "
                "FROM outbox GROUP BY partner ORDER BY partner"
            ).fetchall()
        )
        return [PartnerQueue(r[0], r[1], r[2], r[3], r[4]) for r in rows]


class OutboxQueue(Protocol):
    """How a worker gets due deliveries and settles them; one per backend."""

    name: str
    ledger: OutboxLedger

    async def start(self) -> None:
        """Prepare the backend (streams, groups) and re-offer everything pending."""
        ...

    async def claim(self, now: float, limit: int) -> list[OutboundDelivery]:
        """Due deliveries, each leased to this worker until attempted or the lease ends."""
        ...

    async def delivered(self, d: OutboundDelivery, now: float) -> None: ...

    async def failed(self, d: OutboundDelivery, now: float, next_at: float, error: str) -> None: ...

    async def refused(self, d: OutboundDelivery, now: float, error: str) -> None: ...

    async def deferred(self, d: OutboundDelivery, until: float) -> None: ...

    async def retry_now(self, request_id: str, now: float) -> int:
        """Reset the backoff of a request's undelivered deliveries; returns how many."""
        ...

    async def close(self) -> None: ...


def release_dead_leases(db: sqlite3.Connection, *, me: str) -> int:
    """End the leases of this host's processes that died; how many owners that was.

    Both backends call it at start: a lease normally runs out by itself, but waiting
    for that after a crash would hold back the very deliveries the crash interrupted.
    """
    owners = [r[0] for r in db.execute(
        "SELECT DISTINCT lease_owner FROM outbox WHERE state = 'pending' "
        "AND lease_owner IS NOT NULL AND lease_until > 0"
    )]  # fmt: skip
    dead = [o for o in owners if o != me and owner_is_dead(o)]
    for owner in dead:
        db.execute(
            "UPDATE outbox SET lease_owner = NULL, lease_until = 0 "
            "WHERE lease_owner = ? AND state = 'pending'",
            (owner,),
        )
    return len(dead)


def owner_is_dead(owner: str) -> bool:
    """Whether a lease owner (``node/host/pid/random``) is a process of this host that is
    gone. Owners of other hosts, or of a live process, are never judged dead."""
    parts = owner.split("/")
    if len(parts) != 4 or parts[1] != socket.gethostname() or not parts[2].isdigit():
        return False
    pid = int(parts[2])
    if pid == os.getpid():
        return True  # our pid, another owner name: an earlier process that had our pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class SqliteOutbox:
    """The embedded backend: workers lease due rows straight from the table.

    Safe with several processes on one data directory: choosing and leasing rows is
    one ``BEGIN IMMEDIATE`` transaction, so two workers never lease the same row.
    """

    name = "sqlite"

    def __init__(self, db: ExchangeDb, *, owner: str, lease: float = 60.0) -> None:
        self.ledger = OutboxLedger(db)
        self.owner = owner
        self.lease = lease

    async def start(self) -> None:
        """Take back leases of this host's processes that died (SIGKILL, power cut).

        A lease normally runs out by itself; waiting that long after a crash would hold
        back the very deliveries the crash interrupted. An owner on this host whose
        process is gone cannot be attempting anything, so its leases end now.
        """

        await self.ledger.db.write(functools.partial(release_dead_leases, me=self.owner))

    async def claim(self, now: float, limit: int) -> list[OutboundDelivery]:
        def txn(db: sqlite3.Connection) -> list[OutboundDelivery]:
            keys = [r[0] for r in db.execute(_DUE_KEYS, (now, now, limit))]
            leased = (
                OutboxLedger.lease_in(db, key, self.owner, now, now + self.lease) for key in keys
            )
            return [d for d in leased if d is not None]

        return await self.ledger.db.write(txn)

    async def delivered(self, d: OutboundDelivery, now: float) -> None:
        await self.ledger.delivered(d, now)

    async def failed(self, d: OutboundDelivery, now: float, next_at: float, error: str) -> None:
        await self.ledger.failed(d, now, next_at, error)

    async def refused(self, d: OutboundDelivery, now: float, error: str) -> None:
        await self.ledger.refused(d, now, error)

    async def deferred(self, d: OutboundDelivery, until: float) -> None:
        await self.ledger.deferred(d, until)

    async def retry_now(self, request_id: str, now: float) -> int:
        return len(await self.ledger.reset(request_id, now))

    async def close(self) -> None:
        return None
