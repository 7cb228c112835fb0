"""The exchange's stores and background tasks, as one node (or one CLI command) uses them.

``open_stores`` opens the exchange database and the outbox backend the configuration
asks for (Redis Streams when ``redis_url`` is set, the embedded table otherwise). The
node runs ``ExchangeRuntime``: the delivery worker, the poller, the escalation timer
and (demo nodes) the demo clerk, each a loop around its ``run_once`` step. Intervals
come from ``ExchangeTiming``; tests put a fast one on the app under ``EXCHANGE_TIMING``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from adapters.base import PartnerAdapter
from gateway.audit.events import AuditLog
from gateway.config import NodeConfig
from gateway.errors import GatewayError
from gateway.exchange.breakers import Breakers
from gateway.exchange.catalog import Catalog
from gateway.exchange.circuit import CircuitPolicy
from gateway.exchange.db import ExchangeDb, exchange_db_path
from gateway.exchange.delivery import DeliveryReport, DeliveryWorker
from gateway.exchange.demo_worker import DemoWorker
from gateway.exchange.escalation import EscalationTimer
from gateway.exchange.metrics import ExchangeMetrics
from gateway.exchange.outbox import OutboxQueue, RetryPolicy, SqliteOutbox
from gateway.exchange.outbox_redis import RedisOutbox, consumer_name
from gateway.exchange.poller import RequestPoller
from gateway.exchange.requests import RequestStore
from gateway.exchange.service import ExchangeService
from gateway.logs import get_logger
from gateway.tokens import redis_from_url

__all__ = ["ExchangeRuntime", "ExchangeStores", "ExchangeTiming", "open_stores"]

_log = get_logger("tongban.exchange")


@dataclass(frozen=True)
class ExchangeTiming:
    """How often each background step runs, and the outbox's retry and breaker policy."""

    worker_interval: float = 0.5
    poll_tick: float = 1.0
    poll_interval: float = 5.0
    escalation_interval: float = 30.0
    demo_step: float = 2.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    circuit: CircuitPolicy = field(default_factory=CircuitPolicy)
    lease: float = 60.0
    claim_idle: float = 90.0
    attempt_timeout: float = 30.0
    stop_grace: float = 5.0


@dataclass
class ExchangeStores:
    """What the exchange keeps on disk (and in Redis), opened together."""

    db: ExchangeDb
    requests: RequestStore
    queue: OutboxQueue
    breakers: Breakers

    async def close(self) -> None:
        try:
            await self.queue.close()
        finally:
            await self.db.close()


def open_stores(cfg: NodeConfig, timing: ExchangeTiming | None = None) -> ExchangeStores:
    """The node's exchange stores; nothing is touched until first use."""
    timing = timing or ExchangeTiming()
    db = ExchangeDb(exchange_db_path(cfg.data_dir))
    queue: OutboxQueue
    if cfg.redis_url:
        queue = RedisOutbox(
            db,
            redis_from_url(cfg.redis_url, timeout=2.0),
            node_id=cfg.id,
            consumer=consumer_name(cfg.id),
            lease=timing.lease,
            claim_idle=timing.claim_idle,
            owns_client=True,
        )
    else:
        queue = SqliteOutbox(db, owner=consumer_name(cfg.id), lease=timing.lease)
    return ExchangeStores(db, RequestStore(db), queue, Breakers(db, timing.circuit))


Step = Callable[[], Awaitable[bool]]
"""One background step; returns ``True`` when there may be more work right away."""


class ExchangeRuntime:
    """The node's exchange: the service for handlers and the background loops."""

    MAX_BURST = 20
    """Steps run back to back at most, before a loop sleeps even with work left."""

    def __init__(
        self,
        *,
        cfg: NodeConfig,
        catalog: Catalog,
        audit: AuditLog,
        adapters: Mapping[str, PartnerAdapter],
        stores: ExchangeStores,
        timing: ExchangeTiming,
        clock: Callable[[], float] = time.time,
        metrics: ExchangeMetrics | None = None,
    ) -> None:
        self.cfg = cfg
        self.timing = timing
        self.stores = stores
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._events: list[asyncio.Event] = []
        self.service = ExchangeService(
            cfg=cfg,
            catalog=catalog,
            store=stores.requests,
            audit=audit,
            clock=clock,
            kick=self._wake.set,
            metrics=metrics,
        )
        self.worker = DeliveryWorker(
            node_id=cfg.id,
            queue=stores.queue,
            breakers=stores.breakers,
            adapters=adapters,
            requests=stores.requests,
            audit=audit,
            retry=timing.retry,
            clock=clock,
            rng=random.Random(),
            attempt_timeout=timing.attempt_timeout,
            metrics=metrics,
        )
        self.poller = RequestPoller(
            service=self.service,
            ledger=stores.queue.ledger,
            adapters=adapters,
            clock=clock,
            interval=timing.poll_interval,
        )
        self.escalation = EscalationTimer(
            service=self.service, audit=audit, clock=clock, metrics=metrics
        )
        self.demo = DemoWorker(service=self.service, clock=clock, step=timing.demo_step)

    async def _deliver(self) -> bool:
        report: DeliveryReport = await self.worker.run_once()
        return bool(report.delivered)  # a delivery may unblock the next of its request

    async def _poll(self) -> bool:
        return await self.poller.run_once() > 0

    async def _escalate(self) -> bool:
        await self.escalation.run_once()
        return False

    async def _demo(self) -> bool:
        return bool(await self.demo.run_once())

    async def start(self) -> None:
        await self.stores.queue.start()
        loops: list[tuple[str, Step, float, asyncio.Event]] = [
            ("delivery", self._deliver, self.timing.worker_interval, self._wake),
            ("poller", self._poll, self.timing.poll_tick, asyncio.Event()),
            ("escalation", self._escalate, self.timing.escalation_interval, asyncio.Event()),
        ]
        if self.cfg.demo and not self.cfg.simulator:
            demo_tick = min(1.0, self.timing.demo_step / 2)
            loops.append(("demo", self._demo, demo_tick, asyncio.Event()))
        for name, step, interval, wake in loops:
            self._events.append(wake)
            self._tasks.append(
                asyncio.create_task(self._loop(name, step, interval, wake), name=f"exchange-{name}")
            )

    async def _loop(self, name: str, step: Step, interval: float, wake: asyncio.Event) -> None:
        """Run ``step`` until stopped: again at once while it reports more work (up to
        ``MAX_BURST`` times), otherwise after ``interval`` or when woken."""
        burst = 0
        while not self._stopping:
            more = False
            try:
                more = await step()
            except GatewayError as exc:  # a store is down: say so, try again next time
                _log.warning("exchange step failed", loop=name, code=exc.code, detail=exc.detail)
            except Exception:  # a bug must not end the loop either
                _log.exception("exchange step failed", loop=name)
            burst = burst + 1 if more else 0
            if more and burst < self.MAX_BURST:
                continue
            burst = 0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await wake.wait()
            wake.clear()

    async def stop(self) -> None:
        """Let running steps finish (up to ``stop_grace`` seconds), then cancel."""
        self._stopping = True
        for event in self._events:
            event.set()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=self.timing.stop_grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
