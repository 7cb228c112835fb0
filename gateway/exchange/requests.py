"""Service-request records (异地受理、属地办理) and their store (SPEC 5).

A node holds a record for every cross-provincial request it takes part in, in one of
two roles:

- **handling** (属地办理): a partner city submitted it to us; we work it and report
  each status change back to that city;
- **accepting** (异地受理): our hall took it in (``tongban requests submit``) for an
  item another city handles; we deliver it there and follow its status.

The record keeps the submission exactly as validated, its canonical digest (the
idempotency check: the same ``request_id`` with another body is a conflict), the
current status, and the full history. Status changes follow ``TRANSITIONS`` only, and
each one may carry the outbox entry that tells the other city, written in the same
transaction (``gateway.exchange.outbox``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gateway.encoding import canonical_json, sha256_b64u
from gateway.errors import Conflict, NotFound
from gateway.exchange.db import ExchangeDb
from gateway.exchange.model import (
    FINAL_STATUSES,
    TRANSITIONS,
    RequestStatus,
    StatusEvent,
    Submission,
)
from gateway.exchange.outbox import OutboxEntry, enqueue

__all__ = [
    "Escalation",
    "HistoryEntry",
    "RequestStore",
    "Role",
    "ServiceRequest",
    "submission_digest",
]

Role = Literal["handling", "accepting"]


def submission_digest(submission: Submission) -> str:
    """The idempotency digest: SHA-256 of the canonical JSON of the validated submission
    and the accepting city, so a resend compares equal whatever its key order or
    whitespace, and the same id from another city does not."""
    body = submission.to_json() | {"accepting_node": submission.accepting_node}
    return sha256_b64u(canonical_json(body))


@dataclass(frozen=True)
class HistoryEntry:
    """One status the request had: ``at`` as the deciding city stated it (RFC 3339 UTC),
    ``recorded_at`` when this node learned it (epoch seconds)."""

    status: RequestStatus
    at: str
    note: str
    source: str
    recorded_at: float

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "at": self.at, "note": self.note}


@dataclass(frozen=True)
class Escalation:
    """One rung of the 三单一函 ladder that fired for a request."""

    level: str
    due_at: str
    fired_at: float


@dataclass(frozen=True)
class ServiceRequest:
    """A request as this node knows it."""

    request_id: str
    role: Role
    item_code: str
    handling_node: str
    accepting_node: str
    status: RequestStatus
    submission: Submission
    digest: str
    answer: dict[str, Any]
    received_at: float
    updated_at: float
    history: tuple[HistoryEntry, ...]
    escalations: tuple[Escalation, ...]

    @property
    def partner(self) -> str:
        """The other city involved."""
        return self.accepting_node if self.role == "handling" else self.handling_node

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def applicant_id(self) -> str | None:
        value = self.submission.applicant.get("id")
        return value if isinstance(value, str) else None

    def involves(self, node_id: str) -> bool:
        return node_id in (self.handling_node, self.accepting_node)

    def has_event(self, status: str, at: str) -> bool:
        return any(h.status == status and h.at == at for h in self.history)


def _history(db: sqlite3.Connection, request_id: str) -> tuple[HistoryEntry, ...]:
    rows = db.execute(
        "SELECT status, at, note, source, recorded_at FROM history WHERE request_id = ? ORDER BY n",
        (request_id,),
    ).fetchall()
    return tuple(HistoryEntry(r[0], r[1], r[2], r[3], r[4]) for r in rows)


def _escalations(db: sqlite3.Connection, request_id: str) -> tuple[Escalation, ...]:
    rows = db.execute(
        "SELECT level, due_at, fired_at FROM escalations WHERE request_id = ? ORDER BY due_at",
        (request_id,),
    ).fetchall()
    return tuple(Escalation(r[0], r[1], r[2]) for r in rows)


# The statements below spell the final statuses out; keep them in step with the model.
assert frozenset({"completed", "rejected"}) == FINAL_STATUSES

# Full statements, no string building: the only variable parts are bound parameters.
_SELECT = """SELECT request_id, role, item_code, handling_node, accepting_node, status, digest,
    submission, answer, received_at, updated_at FROM requests"""
_BY_ID = _SELECT + " WHERE request_id = ?"
_RECENT = (
    _SELECT + " WHERE (? = 0 OR status NOT IN ('completed', 'rejected'))"
    " AND (? IS NULL OR role = ?) ORDER BY updated_at DESC LIMIT ?"
)
_OPEN = (
    _SELECT + " WHERE status NOT IN ('completed', 'rejected') AND role = ?"
    " AND updated_at <= ? ORDER BY updated_at LIMIT ?"
)
_DUE = (
    _SELECT + " WHERE next_escalation_at IS NOT NULL AND next_escalation_at <= ?"
    " AND status NOT IN ('completed', 'rejected') ORDER BY next_escalation_at LIMIT ?"
)


def _load(db: sqlite3.Connection, row: Sequence[Any]) -> ServiceRequest:
    sub = json.loads(row[7])
    submission = Submission(
        request_id=sub["request_id"],
        item_code=sub["item_code"],
        applicant=sub["applicant"],
        licenses=tuple(sub["licenses"]),
        form=sub["form"],
        submitted_at=sub["submitted_at"],
        accepting_node=sub["accepting_node"],
    )
    return ServiceRequest(
        request_id=row[0],
        role=row[1],
        item_code=row[2],
        handling_node=row[3],
        accepting_node=row[4],
        status=row[5],
        digest=row[6],
        submission=submission,
        answer=json.loads(row[8]),
        received_at=row[9],
        updated_at=row[10],
        history=_history(db, row[0]),
        escalations=_escalations(db, row[0]),
    )


def _get(db: sqlite3.Connection, request_id: str) -> ServiceRequest | None:
    row = db.execute(_BY_ID, (request_id,)).fetchone()
    return _load(db, row) if row is not None else None


def _append_history(
    db: sqlite3.Connection, request_id: str, event: StatusEvent, source: str, now: float
) -> None:
    n = db.execute(
        "SELECT COALESCE(MAX(n), -1) + 1 FROM history WHERE request_id = ?", (request_id,)
    ).fetchone()[0]
    db.execute(
        "INSERT INTO history (request_id, n, status, at, note, source, recorded_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (request_id, n, event.status, event.at, event.note, source, now),
    )


class RequestStore:
    """Request records in the exchange database; every method is one transaction."""

    def __init__(self, db: ExchangeDb) -> None:
        self.db = db

    async def create(
        self,
        submission: Submission,
        *,
        role: Role,
        handling_node: str,
        answer: dict[str, Any],
        received: StatusEvent,
        source: str,
        now: float,
        next_escalation_at: float | None,
        outbox: OutboxEntry | None = None,
    ) -> tuple[ServiceRequest, bool]:
        """Create the record (and its outbox entry) once per ``request_id``.

        Returns ``(record, created)``. The same id with the same digest returns the
        stored record untouched (``created`` False); with another digest it raises
        ``Conflict`` and nothing is written.
        """
        digest = submission_digest(submission)
        stored = canonical_json(
            submission.to_json() | {"accepting_node": submission.accepting_node}
        ).decode()

        def txn(db: sqlite3.Connection) -> tuple[ServiceRequest, bool]:
            existing = _get(db, submission.request_id)
            if existing is not None:
                if existing.digest != digest:
                    raise Conflict(
                        "this request_id was already used for a different submission; "
                        "a new request needs a new request_id"
                    )
                return existing, False
            db.execute(
                "INSERT INTO requests (request_id, role, item_code, handling_node, "
                "accepting_node, status, digest, submission, answer, submitted_at, "
                "received_at, updated_at, next_escalation_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    submission.request_id,
                    role,
                    submission.item_code,
                    handling_node,
                    submission.accepting_node,
                    received.status,
                    digest,
                    stored,
                    json.dumps(answer, ensure_ascii=False, sort_keys=True),
                    submission.submitted_at,
                    now,
                    now,
                    next_escalation_at,
                ),
            )
            _append_history(db, submission.request_id, received, source, now)
            if outbox is not None:
                enqueue(db, outbox, now)
            created = _get(db, submission.request_id)
            assert created is not None
            return created, True

        return await self.db.write(txn)

    async def transition(
        self,
        event: StatusEvent,
        *,
        source: str,
        now: float,
        expect_role: Role | None = None,
        outbox: OutboxEntry | None = None,
    ) -> tuple[ServiceRequest, bool]:
        """Apply one status change; returns ``(record, changed)``.

        An event already in the history (same status and time) changes nothing and is
        not an error, so a partner's retry is harmless. Any status that may not follow
        the current one raises ``Conflict`` naming both.
        """

        def txn(db: sqlite3.Connection) -> tuple[ServiceRequest, bool]:
            record = _get(db, event.request_id)
            if record is None or (expect_role is not None and record.role != expect_role):
                raise NotFound("no such service request")
            if record.has_event(event.status, event.at):
                return record, False
            allowed = TRANSITIONS[record.status]
            if event.status not in allowed:
                after = ", ".join(sorted(allowed)) or "nothing (it is final)"
                raise Conflict(
                    f"a request in status {record.status} cannot become {event.status}; "
                    f"allowed next: {after}"
                )
            final = event.status in FINAL_STATUSES
            db.execute(
                "UPDATE requests SET status = ?, updated_at = ?, next_escalation_at = "
                "CASE WHEN ? THEN NULL ELSE next_escalation_at END WHERE request_id = ?",
                (event.status, now, final, event.request_id),
            )
            _append_history(db, event.request_id, event, source, now)
            if outbox is not None:
                enqueue(db, outbox, now)
            changed = _get(db, event.request_id)
            assert changed is not None
            return changed, True

        return await self.db.write(txn)

    async def get(self, request_id: str) -> ServiceRequest | None:
        return await self.db.read(lambda db: _get(db, request_id))

    async def recent(
        self, *, open_only: bool = False, role: Role | None = None, limit: int = 100
    ) -> list[ServiceRequest]:
        """Most recently updated first."""

        def txn(db: sqlite3.Connection) -> list[ServiceRequest]:
            rows = db.execute(_RECENT, (int(open_only), role, role, limit)).fetchall()
            return [_load(db, r) for r in rows]

        return await self.db.read(txn)

    async def open_requests(
        self, *, role: Role, updated_before: float | None = None, limit: int = 100
    ) -> list[ServiceRequest]:
        """Requests not yet final in ``role``, least recently updated first."""
        before = float("inf") if updated_before is None else updated_before

        def txn(db: sqlite3.Connection) -> list[ServiceRequest]:
            rows = db.execute(_OPEN, (role, before, limit)).fetchall()
            return [_load(db, r) for r in rows]

        return await self.db.read(txn)

    # -- the 三单一函 ladder -------------------------------------------------------------

    async def due_for_escalation(self, now: float, limit: int = 100) -> list[ServiceRequest]:
        """Open requests whose next ladder level is due at ``now``."""

        def txn(db: sqlite3.Connection) -> list[ServiceRequest]:
            rows = db.execute(_DUE, (now, limit)).fetchall()
            return [_load(db, r) for r in rows]

        return await self.db.read(txn)

    async def record_escalation(
        self, request_id: str, level: str, due_at: str, *, now: float, next_at: float | None
    ) -> bool:
        """Record that ``level`` fired; ``False`` if it had already (once per request)."""

        def txn(db: sqlite3.Connection) -> bool:
            inserted = db.execute(
                "INSERT OR IGNORE INTO escalations (request_id, level, due_at, fired_at) "
                "VALUES (?, ?, ?, ?)",
                (request_id, level, due_at, now),
            ).rowcount
            db.execute(
                "UPDATE requests SET next_escalation_at = ? WHERE request_id = ? "
                "AND status NOT IN ('completed', 'rejected')",
                (next_at, request_id),
            )
            return inserted == 1

        return await self.db.write(txn)

    async def stop_escalation(self, request_id: str) -> None:
        """No further rungs for this request (its item has no time limit any more)."""
        await self.db.write(
            lambda db: db.execute(
                "UPDATE requests SET next_escalation_at = NULL WHERE request_id = ?",
                (request_id,),
            )
        )

    async def unaudited_escalations(self, limit: int = 100) -> list[tuple[str, str, str]]:
        """``(request_id, level, due_at)`` of escalations whose audit entry is not
        known to be written (the process stopped in between): written again."""

        def txn(db: sqlite3.Connection) -> list[tuple[str, str, str]]:
            rows = db.execute(
                "SELECT request_id, level, due_at FROM escalations WHERE audited = 0 LIMIT ?",
                (limit,),
            ).fetchall()
            return [(r[0], r[1], r[2]) for r in rows]

        return await self.db.read(txn)

    async def mark_escalation_audited(self, request_id: str, level: str) -> None:
        await self.db.write(
            lambda db: db.execute(
                "UPDATE escalations SET audited = 1 WHERE request_id = ? AND level = ?",
                (request_id, level),
            )
        )
