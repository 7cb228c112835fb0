"""The escalation timer: fires the 三单一函 ladder of open requests (SPEC 5).

Each request row carries ``next_escalation_at``, so a step only reads the requests
whose next rung is due. A rung is recorded once per request (primary key
``(request_id, level)``, so several processes cannot fire it twice), then audited as
``request.escalate``; a rung recorded but not yet audited when the process stopped is
audited on the next step, so the log never misses one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from gateway.audit.events import AuditEvent, AuditLog
from gateway.exchange.auditing import append_event
from gateway.exchange.deadlines import due_levels, next_level_at
from gateway.exchange.metrics import ExchangeMetrics
from gateway.exchange.requests import RequestStore, ServiceRequest
from gateway.exchange.service import ExchangeService
from gateway.exchange.validation import format_rfc3339
from gateway.logs import get_logger

__all__ = ["EscalationTimer"]

_log = get_logger("tongban.exchange.escalation")


class EscalationTimer:
    """Fires due ladder rungs; ``run_once`` is one bounded step."""

    def __init__(
        self,
        *,
        service: ExchangeService,
        audit: AuditLog,
        clock: Callable[[], float],
        batch: int = 100,
        metrics: ExchangeMetrics | None = None,
    ) -> None:
        self.service = service
        self.store: RequestStore = service.store
        self.audit = audit
        self.clock = clock
        self.batch = batch
        self.metrics = metrics

    async def run_once(self) -> list[tuple[str, str]]:
        """Fire every rung due now; returns ``(request_id, level)`` of those fired."""
        for request_id, level, due_at in await self.store.unaudited_escalations(self.batch):
            record = await self.store.get(request_id)
            if record is not None:
                await self._audit(record, level, due_at)
            await self.store.mark_escalation_audited(request_id, level)
        fired: list[tuple[str, str]] = []
        now = self.clock()
        for record in await self.store.due_for_escalation(now, self.batch):
            fired.extend(await self._escalate(record, now))
        return fired

    async def _escalate(self, record: ServiceRequest, now: float) -> list[tuple[str, str]]:
        deadline = self.service.deadline_of(record)
        done = {e.level for e in record.escalations}
        if deadline is None:  # the item left the catalog: nothing to measure against
            await self.store.stop_escalation(record.request_id)
            return []
        fired: list[tuple[str, str]] = []
        for level, due in due_levels(deadline, datetime.fromtimestamp(now, UTC), done):
            done.add(level)
            following = next_level_at(deadline, done)
            due_at = format_rfc3339(due)
            inserted = await self.store.record_escalation(
                record.request_id,
                level,
                due_at,
                now=now,
                next_at=following.timestamp() if following else None,
            )
            if not inserted:
                continue
            await self._audit(record, level, due_at)
            await self.store.mark_escalation_audited(record.request_id, level)
            if self.metrics is not None:
                self.metrics.escalations.labels(level).inc()
            fired.append((record.request_id, level))
        return fired

    async def _audit(self, record: ServiceRequest, level: str, due_at: str) -> None:
        await append_event(
            self.audit,
            AuditEvent(
                event="request.escalate",
                actor_type="system",
                actor_id=self.service.cfg.id,
                subject=record.applicant_id,
                meta={
                    "request_id": record.request_id,
                    "item": record.item_code,
                    "partner": record.partner,
                    "role": record.role,
                    "level": level,
                    "due_at": due_at,
                    "status": record.status,
                },
            ),
        )
        _log.info("escalation", request_id=record.request_id, level=level, due_at=due_at)
