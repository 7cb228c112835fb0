"""The exchange service: the one place request records change (SPEC 5).

Callers (HTTP handlers, adapters' inbound routes, the CLI, the demo worker, the poller)
never touch the store directly: they call this service, which validates, applies the
status machine, writes the outbox entry with the change and — for changes that are not
themselves an audited HTTP call — appends the audit event.

Adapters whose partner calls *us* back (legacy systems) reach the service through the
``EventSink`` returned by ``event_sink(app)``, which looks up ``app[EXCHANGE]`` when an
event arrives (the service only exists once the node has started).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from adapters.base import EventSink
from gateway.audit.events import ActorType, AuditEvent, AuditLog
from gateway.config import NodeConfig, PartnerConfig
from gateway.encoding import canonical_json
from gateway.errors import (
    Forbidden,
    NotFound,
    PartnerSuspended,
    ServiceUnavailable,
    ValidationFailed,
)
from gateway.exchange.auditing import append_event
from gateway.exchange.catalog import Catalog
from gateway.exchange.deadlines import Deadline, WorkCalendar, compute_deadline, next_level_at
from gateway.exchange.metrics import ExchangeMetrics
from gateway.exchange.model import RequestStatus, StatusEvent, Submission
from gateway.exchange.outbox import event_entry, submission_entry
from gateway.exchange.requests import RequestStore, ServiceRequest
from gateway.exchange.validation import (
    format_rfc3339,
    normalise_event,
    parse_request_id,
    parse_rfc3339,
    parse_submission,
)
from gateway.exchange.views import request_deadline, request_view

__all__ = ["EXCHANGE", "ExchangeService", "event_sink"]


class ExchangeService:
    """Service requests of one node, in both roles."""

    def __init__(
        self,
        *,
        cfg: NodeConfig,
        catalog: Catalog,
        store: RequestStore,
        audit: AuditLog,
        clock: Callable[[], float] = time.time,
        kick: Callable[[], None] = lambda: None,
        metrics: ExchangeMetrics | None = None,
    ) -> None:
        self.cfg = cfg
        self.catalog = catalog
        self.store = store
        self.audit = audit
        self.clock = clock
        self.calendar = WorkCalendar.of(cfg.holidays)
        self._kick = kick
        self.metrics = metrics

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # -- views ---------------------------------------------------------------------------

    def deadline_of(self, record: ServiceRequest) -> Deadline | None:
        """The request's deadline on this node's calendar (``None`` if its item is gone)."""
        return request_deadline(record, self.catalog, self.calendar)

    def view(self, record: ServiceRequest) -> dict[str, Any]:
        """What ``GET /v1/service-requests/{id}`` answers (see ``request_view``)."""
        return request_view(record, self.catalog, self.calendar)

    def _first_escalation_at(self, submission: Submission) -> float | None:
        item = self.catalog.item(submission.item_code)
        if item is None:
            return None
        deadline = compute_deadline(
            parse_rfc3339(submission.submitted_at), item.time_limit_days, self.calendar
        )
        first = next_level_at(deadline, ())
        return first.timestamp() if first else None

    # -- handling role (属地办理) -----------------------------------------------------------

    async def receive_submission(
        self, partner: PartnerConfig, data: Mapping[str, Any]
    ) -> tuple[ServiceRequest, bool]:
        """A partner city submits a request for an item we handle (the HTTP call is the
        audit entry). Returns ``(record, created)``; a resend returns the same record."""
        submission = parse_submission(
            data,
            catalog=self.catalog,
            accepting_node=partner.id,
            now=self.now(),
            handling_node=self.cfg.id,
        )
        if not partner.allows_item(submission.item_code):
            raise Forbidden(f"partner {partner.id} may not submit item {submission.item_code}")
        now = self.clock()
        received_at = format_rfc3339(datetime.fromtimestamp(now, UTC))
        answer = {
            "request_id": submission.request_id,
            "status": "received",
            "item_code": submission.item_code,
            "handling_node": self.cfg.id,
            "received_at": received_at,
        }
        record, created = await self.store.create(
            submission,
            role="handling",
            handling_node=self.cfg.id,
            answer=answer,
            received=StatusEvent(submission.request_id, "received", received_at),
            source=partner.id,
            now=now,
            next_escalation_at=self._first_escalation_at(submission),
        )
        if created:
            self._count("handling", "received")
        return record, created

    async def advance(
        self,
        request_id: str,
        status: RequestStatus,
        *,
        note: str = "",
        actor_type: ActorType = "system",
        actor_sub: str | None = None,
    ) -> ServiceRequest:
        """Change a request we handle and tell its accepting city (via the outbox)."""
        now = self.clock()
        event = StatusEvent(
            request_id, status, format_rfc3339(datetime.fromtimestamp(now, UTC)), note
        )
        record = await self.store.get(request_id)
        if record is None or record.role != "handling":
            raise NotFound("no such service request handled here")
        changed, _ = await self.store.transition(
            event,
            source=self.cfg.id,
            now=now,
            expect_role="handling",
            outbox=event_entry(event, record.accepting_node),
        )
        self._count("handling", status)
        await self._audit_status(changed, event, actor_type=actor_type, actor_sub=actor_sub)
        self._kick()
        return changed

    # -- accepting role (异地受理) ------------------------------------------------------------

    async def accept_local(
        self, data: Mapping[str, Any], *, staff: str | None = None
    ) -> tuple[ServiceRequest, bool]:
        """Our hall accepts a request for another city's item: record it and queue its
        delivery in one transaction. Returns ``(record, created)``."""
        submission = parse_submission(
            data, catalog=self.catalog, accepting_node=self.cfg.id, now=self.now()
        )
        item = self.catalog.item(submission.item_code)
        assert item is not None  # parse_submission checked it
        partner = self.cfg.partner(item.handling_node)
        if item.handling_node == self.cfg.id:
            raise ValidationFailed(
                "this node handles the item itself; nothing to deliver",
                fields={"item_code": f"handled by this node ({self.cfg.id})"},
            )
        if partner is None:
            raise ValidationFailed(
                "the item's handling city is not a partner of this node",
                fields={"item_code": f"handled by {item.handling_node}, not a partner"},
            )
        now = self.clock()
        if not partner.active_on(datetime.fromtimestamp(now, UTC).date()):
            raise PartnerSuspended(f"partner {partner.id} is disabled or outside its agreement")
        record, created = await self.store.create(
            submission,
            role="accepting",
            handling_node=partner.id,
            answer={"request_id": submission.request_id, "status": "received"},
            received=StatusEvent(submission.request_id, "received", submission.submitted_at),
            source=self.cfg.id,
            now=now,
            next_escalation_at=self._first_escalation_at(submission),
            outbox=submission_entry(submission, partner.id),
        )
        if created:
            self._count("accepting", "received")
            await append_event(
                self.audit,
                AuditEvent(
                    event="request.submit",
                    actor_type="staff",
                    actor_id=self.cfg.id,
                    actor_sub=staff,
                    subject=record.applicant_id,
                    request=canonical_json(submission.to_json()),
                    payload=canonical_json(submission.to_json()),
                    meta={
                        "request_id": record.request_id,
                        "item": record.item_code,
                        "partner": partner.id,
                        "role": "accepting",
                    },
                ),
            )
            self._kick()
        return record, created

    async def apply_event(self, partner_id: str, event: StatusEvent) -> tuple[ServiceRequest, bool]:
        """A status change from the city handling a request we accepted.

        Only that city may change it (``forbidden`` otherwise); an event already
        applied (same status and time) changes nothing; an illegal step is ``conflict``.
        The HTTP handler's call entry records it; other callers use ``apply_partner_event``.
        """
        record = await self.store.get(event.request_id)
        if record is None:
            raise NotFound("no such service request")
        if record.role != "accepting" or record.handling_node != partner_id:
            raise Forbidden("only the city handling this request may report its status")
        if event.status == "received" and record.status == "received":
            return record, False  # we hold it as received since we accepted it
        changed, did_change = await self.store.transition(
            event, source=partner_id, now=self.clock(), expect_role="accepting"
        )
        if did_change:
            self._count("accepting", event.status)
        return changed, did_change

    async def apply_partner_event(self, partner_id: str, event: StatusEvent) -> bool:
        """What adapters call with an event (callbacks and polling): validate it, apply
        it, and audit the change as its own ``request.status`` entry. Returns whether
        it changed anything (``False`` for an event already applied)."""
        checked = normalise_event(event, now=self.now())
        record, changed = await self.apply_event(partner_id, checked)
        if changed:
            await self._audit_status(record, checked, actor_type="partner", actor_id=partner_id)
        return changed

    async def read(self, partner_id: str, request_id: str) -> ServiceRequest:
        """A request for a partner: only the two cities involved see it; for anyone else
        it does not exist (``not_found``), so existence does not leak."""
        try:
            rid = parse_request_id(request_id)
        except ValidationFailed:
            raise NotFound("no such service request") from None
        record = await self.store.get(rid)
        if record is None or not record.involves(partner_id):
            raise NotFound("no such service request")
        return record

    # -- helpers -----------------------------------------------------------------------

    def _count(self, role: str, status: str) -> None:
        if self.metrics is not None:
            self.metrics.status_changes.labels(role, status).inc()

    async def _audit_status(
        self,
        record: ServiceRequest,
        event: StatusEvent,
        *,
        actor_type: ActorType,
        actor_id: str | None = None,
        actor_sub: str | None = None,
    ) -> None:
        meta: dict[str, Any] = {
            "request_id": record.request_id,
            "item": record.item_code,
            "partner": record.partner,
            "role": record.role,
            "status": event.status,
            "at": event.at,
        }
        await append_event(
            self.audit,
            AuditEvent(
                event="request.status",
                actor_type=actor_type,
                actor_id=actor_id or self.cfg.id,
                actor_sub=actor_sub,
                subject=record.applicant_id,
                request=canonical_json(event.to_json()),
                meta=meta,
            ),
        )


EXCHANGE = web.AppKey("exchange", ExchangeService)
"""The running node's exchange service (set when the node starts)."""


def event_sink(app: web.Application) -> EventSink:
    """An ``EventSink`` for adapters' inbound routes, bound late to ``app[EXCHANGE]``."""

    async def sink(partner_id: str, event: StatusEvent) -> None:
        service = app.get(EXCHANGE)
        if service is None:
            raise ServiceUnavailable("the exchange service is not running yet")
        await service.apply_partner_event(partner_id, event)

    return sink
