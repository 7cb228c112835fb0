"""The delivery worker: takes due outbox entries and hands them to partner adapters.

``run_once`` is one step (claim, attempt, settle) so tests drive it with an injected
clock and no sleeps; the runtime calls it in a loop. Deliveries to one partner are
attempted one after another (order and the breaker's single probe), different partners
in parallel (one slow city does not hold up the others).

Outcomes of an attempt:

- the adapter returned: the partner acknowledged, the row is marked delivered;
- ``UpstreamError`` / ``UpstreamTimeout`` (unreachable, 5xx, garbled answer): a failure,
  counted by the partner's breaker and retried after backoff;
- any other ``GatewayError`` (``not_found``, ``conflict``, ``validation_failed``, ...):
  the partner answered and refused; retrying the same bytes cannot help, so the row is
  parked as ``refused`` for an operator, and the breaker counts the partner as up.

Every attempt is one ``request.delivery`` audit event with its outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from adapters.base import PartnerAdapter
from gateway.audit.events import AuditEvent, AuditLog
from gateway.encoding import canonical_json
from gateway.errors import GatewayError, UpstreamError, UpstreamTimeout
from gateway.exchange.auditing import append_event
from gateway.exchange.breakers import Breakers
from gateway.exchange.circuit import CircuitState
from gateway.exchange.metrics import ExchangeMetrics
from gateway.exchange.outbox import OutboundDelivery, OutboxQueue, RetryPolicy
from gateway.exchange.requests import RequestStore
from gateway.logs import get_logger

__all__ = ["DeliveryReport", "DeliveryWorker"]

_log = get_logger("tongban.exchange.delivery")
Outcome = Literal["delivered", "retry", "refused", "deferred"]


@dataclass
class DeliveryReport:
    """What one ``run_once`` did, by outcome."""

    delivered: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return len(self.delivered) + len(self.retry) + len(self.refused)

    def add(self, outcome: Outcome, key: str) -> None:
        getattr(self, outcome).append(key)


class DeliveryWorker:
    """Delivers outbox entries through the partners' adapters."""

    def __init__(
        self,
        *,
        node_id: str,
        queue: OutboxQueue,
        breakers: Breakers,
        adapters: Mapping[str, PartnerAdapter],
        requests: RequestStore,
        audit: AuditLog,
        retry: RetryPolicy,
        clock: Callable[[], float],
        rng: random.Random | None = None,
        batch: int = 50,
        attempt_timeout: float = 30.0,
        metrics: ExchangeMetrics | None = None,
    ) -> None:
        self.node_id = node_id
        self.queue = queue
        self.breakers = breakers
        self.adapters = adapters
        self.requests = requests
        self.audit = audit
        self.retry = retry
        self.clock = clock
        self.rng = rng or random.Random()
        self.batch = batch
        self.attempt_timeout = attempt_timeout
        self.metrics = metrics

    async def run_once(self) -> DeliveryReport:
        """Claim what is due, attempt it, settle each; one bounded step."""
        report = DeliveryReport()
        claimed = await self.queue.claim(self.clock(), self.batch)
        by_partner: dict[str, list[OutboundDelivery]] = defaultdict(list)
        for d in claimed:
            by_partner[d.partner].append(d)
        await asyncio.gather(*(self._partner(p, ds, report) for p, ds in by_partner.items()))
        if self.metrics is not None:
            pending = await self.queue.ledger.pending_by_partner()
            circuits = {c.partner: c.status for c in await self.breakers.states()}
            for partner in set(pending) | set(self.adapters) | set(circuits):
                self.metrics.pending.labels(partner).set(pending.get(partner, 0))
                self.metrics.set_circuit(partner, circuits.get(partner, "closed"))
        return report

    async def _partner(
        self, partner: str, deliveries: list[OutboundDelivery], report: DeliveryReport
    ) -> None:
        for i, d in enumerate(deliveries):
            allowed, state = await self.breakers.admit(partner, self.clock())
            if self.metrics is not None:
                self.metrics.set_circuit(partner, state.status)
            if not allowed:
                until = state.retry_at(self.breakers.policy) or self.clock()
                for rest in deliveries[i:]:
                    await self.queue.deferred(rest, until)
                    report.add("deferred", rest.key)
                return
            try:
                report.add(await self._attempt(d), d.key)
            except Exception:  # a store or the audit log failed: release it, go on
                _log.exception("delivery step failed", partner=partner, key=d.key)
                with contextlib.suppress(Exception):
                    await self.queue.deferred(d, self.clock())

    async def _send(self, adapter: PartnerAdapter, d: OutboundDelivery) -> None:
        if d.kind == "submit":
            await adapter.submit_request(d.submission())
        else:
            await adapter.send_event(d.partner, d.event())

    async def _attempt(self, d: OutboundDelivery) -> Outcome:
        adapter = self.adapters.get(d.partner)
        error: GatewayError | None = None
        try:
            if adapter is None:
                raise UpstreamError(f"no adapter is available for {d.partner}")
            async with asyncio.timeout(self.attempt_timeout):
                await self._send(adapter, d)
        except TimeoutError:
            error = UpstreamTimeout(f"{d.partner} did not answer in time")
        except GatewayError as exc:
            error = exc
        except Exception as exc:  # an adapter bug must not stop the outbox
            _log.exception("adapter failed", partner=d.partner, key=d.key)
            error = UpstreamError(f"the adapter for {d.partner} failed: {type(exc).__name__}")
        now = self.clock()
        if error is None:
            await self.queue.delivered(d, now)
            await self._breaker(d.partner, ok=True, now=now)
            outcome: Outcome = "delivered"
        elif isinstance(error, UpstreamError):
            next_at = now + self.retry.delay(d.attempts + 1, self.rng)
            await self.queue.failed(d, now, next_at, error.detail)
            await self._breaker(d.partner, ok=False, now=now)
            outcome = "retry"
        else:
            await self.queue.refused(d, now, f"{error.code}: {error.detail}")
            await self._breaker(d.partner, ok=True, now=now)
            outcome = "refused"
        if self.metrics is not None:
            self.metrics.deliveries.labels(d.partner, d.kind, outcome).inc()
        await self._audit(d, outcome, error)
        return outcome

    async def _breaker(self, partner: str, *, ok: bool, now: float) -> None:
        change = self.breakers.succeeded if ok else self.breakers.failed
        before, after = await change(partner, now)
        if self.metrics is not None:
            self.metrics.set_circuit(partner, after.status)
        if before.status != after.status:
            await self._audit_circuit(after)

    async def _audit(
        self, d: OutboundDelivery, outcome: Outcome, error: GatewayError | None
    ) -> None:
        record = await self.requests.get(d.request_id)
        meta: dict[str, object] = {
            "request_id": d.request_id,
            "partner": d.partner,
            "kind": d.kind,
            "attempt": d.attempts + 1,
            "outcome": outcome,
        }
        if record is not None:
            meta["item"] = record.item_code
        if d.kind == "event":
            meta["status"] = d.event().status
        await append_event(
            self.audit,
            AuditEvent(
                event="request.delivery",
                actor_type="system",
                actor_id=self.node_id,
                outcome="ok" if error is None else ("error" if outcome == "retry" else "rejected"),
                code=error.code if error is not None else None,
                subject=record.applicant_id if record is not None else None,
                request=canonical_json(d.wire_body()),
                meta=meta,
            ),
        )
        _log.info(
            "delivery", request_id=d.request_id, partner=d.partner, kind=d.kind, outcome=outcome,
            attempt=d.attempts + 1, code=error.code if error else None,
        )  # fmt: skip

    async def _audit_circuit(self, state: CircuitState) -> None:
        await append_event(
            self.audit,
            AuditEvent(
                event="partner.circuit",
                actor_type="system",
                actor_id=self.node_id,
                meta={"partner": state.partner, "state": state.status, "failures": state.failures},
            ),
        )
        _log.warning("circuit", partner=state.partner, state=state.status, failures=state.failures)
