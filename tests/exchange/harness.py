"""An accepting node's exchange without HTTP: stores, service, delivery worker and a real
audit log, on a demo tree's data directory, with a hand-turned clock. ``restart`` closes
everything and opens it again on the same directory, as a node restart does."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from typing import Any

from adapters import make_adapter
from adapters.base import PartnerAdapter
from gateway.audit.store import AuditStore
from gateway.config import NodeConfig
from gateway.exchange.circuit import CircuitPolicy
from gateway.exchange.delivery import DeliveryReport, DeliveryWorker
from gateway.exchange.outbox import OutboundDelivery, RetryPolicy
from gateway.exchange.requests import ServiceRequest
from gateway.exchange.runtime import ExchangeStores, ExchangeTiming, open_stores
from gateway.exchange.service import ExchangeService
from gateway.keys import load_token_key
from tests.exchange.support import QUZHOU, Clock, catalog, submission

FAST = ExchangeTiming(
    retry=RetryPolicy(base=1.0, cap=300.0),
    circuit=CircuitPolicy(threshold=3, cooldown=30.0, probe_timeout=60.0),
    lease=60.0,
    claim_idle=0.0,  # Redis: take over a dead consumer's entries at once
)


@dataclass
class Exchange:
    cfg: NodeConfig
    clock: Clock
    timing: ExchangeTiming = FAST
    stores: ExchangeStores | None = None
    audit: AuditStore | None = None
    service: ExchangeService | None = None
    worker: DeliveryWorker | None = None
    adapter: PartnerAdapter | None = None
    adapters: dict[str, PartnerAdapter] | None = None

    @classmethod
    def for_node(cls, cfg: NodeConfig, clock: Clock, redis_url: str | None = None) -> Exchange:
        return cls(replace(cfg, redis_url=redis_url), clock)

    async def open(self) -> Exchange:
        self.audit = AuditStore.from_config(self.cfg)
        await self.audit.open()
        self.stores = open_stores(self.cfg, self.timing)
        await self.stores.queue.start()
        key = load_token_key(self.cfg)
        self.adapters = {p.id: make_adapter(self.cfg, p, key) for p in self.cfg.partners}
        self.adapter = self.adapters[QUZHOU]  # the native one most tests talk to
        self.service = ExchangeService(
            cfg=self.cfg,
            catalog=catalog(),
            store=self.stores.requests,
            audit=self.audit,
            clock=self.clock,
        )
        self.worker = DeliveryWorker(
            node_id=self.cfg.id,
            queue=self.stores.queue,
            breakers=self.stores.breakers,
            adapters=self.adapters,
            requests=self.stores.requests,
            audit=self.audit,
            retry=self.timing.retry,
            clock=self.clock,
            rng=random.Random(7),
            attempt_timeout=5.0,
        )
        return self

    async def close(self) -> None:
        for adapter in (self.adapters or {}).values():
            await adapter.close()
        if self.stores is not None:
            await self.stores.close()
        if self.audit is not None:
            await self.audit.close()
        self.stores = self.audit = self.service = self.worker = self.adapter = None
        self.adapters = None

    async def restart(self) -> None:
        await self.close()
        await self.open()

    async def accept(self, **over: Any) -> ServiceRequest:
        assert self.service is not None
        record, created = await self.service.accept_local(submission(**over), staff="staff01")
        assert created
        return record

    async def run(self) -> DeliveryReport:
        assert self.worker is not None
        return await self.worker.run_once()

    async def deliveries(self, request_id: str) -> list[OutboundDelivery]:
        assert self.stores is not None
        return await self.stores.queue.ledger.for_request(request_id)

    async def audit_events(self, event: str | None = None) -> list[dict[str, Any]]:
        assert self.audit is not None
        entries = [json.loads(data) async for _, data in self.audit.iter_entries()]
        return [e for e in entries if event is None or e["event"] == event]
