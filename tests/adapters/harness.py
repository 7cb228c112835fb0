"""Legacy partners as the adapter tests drive them: a real simulator on loopback, the
Ji'an side's adapter for it, and Ji'an's callback receiver.

The receiver is the node's real request pipeline (``gateway.http.middleware.pipeline``)
with a real audit store, replay cache and rate limiter, serving only the adapters'
inbound routes; its sink records the events it is handed, the way the exchange service
would take them.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from adapters import inbound_routes, make_adapter
from adapters.base import PartnerAdapter
from adapters.native import NativeAdapter
from adapters.sim_workflow import SimTiming, planned_outcome
from adapters.simulators import simulator_app
from gateway.audit.store import AuditStore
from gateway.config import NodeConfig
from gateway.demo_data import seed_licenses
from gateway.exchange.catalog import load_catalog
from gateway.exchange.model import StatusEvent, Submission
from gateway.http.client import PartnerClient
from gateway.http.context import AUDIT, CATALOG, CONFIG, METRICS, RATE, READINESS, REGISTRY, REPLAY
from gateway.http.metrics import make_metrics
from gateway.http.middleware import pipeline
from gateway.keys import load_issuer, load_token_key
from gateway.licenses.identifiers import make_license_identifier
from gateway.licenses.issuing import change_status, issue_license, mint_license_qr
from gateway.licenses.policy import PurposePolicy
from gateway.licenses.store import LicenseStore, license_db_path
from gateway.tokens import InProcessRateLimiter, SqliteReplayCache
from tests.support.network import Network, Tree, free_port_block

JIAN = "cn-360800"
QUZHOU = "cn-330800"
SIM_OF: dict[str, str] = {
    "xml_envelope": "cn-350800",
    "form_async": "cn-430200",
    "sharing_api": "cn-150500",
}
LEGACY_STYLES = tuple(SIM_OF)
ALL_STYLES = ("native", *LEGACY_STYLES)
PUSH_STYLES = ("xml_envelope", "sharing_api")
ITEM_OF = {
    "native": "TB-330800-0501",
    "xml_envelope": "TB-350800-0103",
    "form_async": "TB-430200-0305",
    "sharing_api": "TB-150500-0106",
}


class ManualClock:
    """A clock tests move by hand; starts at the real time so signed times are fresh."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


BUSINESS_DRAFT: dict[str, Any] = {
    "type_code": "11100000MB0341032Y001",
    "holder": {"name": "龙岩市闽西红土食品有限公司", "id_type": "001", "id": "91350800MA2Y3KXW41"},
    "valid_until": None,
    "data": {
        "enterprise_name": "龙岩市闽西红土食品有限公司",
        "legal_representative": "林建华",
        "registered_capital": "500万元",
        "address": "福建省龙岩市新罗区龙腾中路88号",
        "business_scope": "食品生产；食品销售",
    },
}


@dataclass
class Partner:
    """One legacy city's simulator, running, and how Ji'an reaches it."""

    style: str
    tree: Tree
    sim: NodeConfig
    jian: NodeConfig
    clock: Any
    timing: SimTiming
    runner: web.AppRunner | None = None
    adapters: list[PartnerAdapter] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.sim.public_url

    async def start(self) -> None:
        app = simulator_app(self.sim, timing=self.timing, clock=self.clock)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        await web.TCPSite(self.runner, self.sim.host, self.sim.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def adapter(self, *, timeout: float = 3.0, jian: NodeConfig | None = None) -> PartnerAdapter:
        """Ji'an's adapter for this partner, with a short client timeout."""
        node = jian or self.jian
        partner = node.partner(self.sim.id)
        assert partner is not None
        options = dict(partner.options)
        options["timeout_seconds"] = timeout
        adapter = make_adapter(node, replace(partner, options=options), load_token_key(node))
        self.adapters.append(adapter)
        return adapter

    async def sim_call(self, method: str, path: str, body: Any = None) -> Any:
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, self.base + path, json=body) as resp,
        ):
            text = await resp.text()
            assert resp.status < 300, f"{path}: {resp.status} {text}"
            return json.loads(text)

    async def fault(self, mode: str | None) -> None:
        await self.sim_call("POST", "/_sim/mode", {"fail": mode})

    async def tick(self) -> int:
        return int((await self.sim_call("POST", "/_sim/tick"))["done"])

    async def show(self, request_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.sim_call("GET", f"/_sim/requests/{request_id}")
        return result

    async def issue(self, draft: dict[str, Any] | None = None) -> str:
        answer = await self.sim_call("POST", "/_sim/licenses", draft or BUSINESS_DRAFT)
        return str(answer["identifier"])

    async def set_status(self, identifier: str, status: str, reason: str = "测试") -> None:
        await self.sim_call(
            "POST",
            "/_sim/licenses/status",
            {"identifier": identifier, "status": status, "reason": reason},
        )

    async def qr(self, identifier: str, fields: list[str] | None = None) -> str:
        answer = await self.sim_call(
            "POST", "/_sim/qr", {"identifier": identifier, "fields": fields or ["*"]}
        )
        return str(answer["qr"])

    async def notices(self) -> list[dict[str, str]]:
        return list((await self.sim_call("GET", "/_sim/notices"))["notices"])


class StandIn:
    """A broken stand-in for a native partner (a node cannot be told to misbehave):
    answers garbage, hangs, resets the connection, or is down behind a proxy."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.mode == "down":
            return web.Response(status=503, text="<html>503 Bad Gateway</html>")
        if self.mode == "timeout":
            await asyncio.sleep(60)
        if self.mode == "reset" and request.transport is not None:
            request.transport.abort()
        if self.mode == "missing":
            return web.json_response({})
        return web.Response(body=b"\x00\xff garbage", content_type="application/json")

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self.runner.setup()
        port = free_port_block(1)
        await web.TCPSite(self.runner, "127.0.0.1", port, reuse_address=True).start()
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@dataclass
class NativePartner:
    """Quzhou, a real Tongban node, driven the way the contract tests drive simulators."""

    style: str
    tree: Tree
    network: Network
    sim: NodeConfig  # the partner's own configuration (named like the simulators')
    jian: NodeConfig
    adapters: list[PartnerAdapter] = field(default_factory=list)
    replaced: list[PartnerClient] = field(default_factory=list)
    stand_in: StandIn | None = None

    async def start(self) -> None:
        await self.network.start(self.sim.id)

    async def stop(self) -> None:
        await self.network.stop(self.sim.id)

    def adapter(self, *, timeout: float = 3.0, jian: NodeConfig | None = None) -> PartnerAdapter:
        node = jian or self.jian
        partner = node.partner(self.sim.id)
        assert partner is not None
        if self.stand_in is not None:
            partner = replace(partner, url=self.stand_in.url)
        adapter = NativeAdapter(node, partner, load_token_key(node))
        # NativeAdapter takes no timeout option (see the report): give it a short one.
        self.replaced.append(adapter.client)
        adapter.client = PartnerClient(
            node_id=node.id,
            partner_id=partner.id,
            base_url=partner.url,
            key=load_token_key(node),
            timeout=aiohttp.ClientTimeout(total=timeout),
        )
        self.adapters.append(adapter)
        return adapter

    def _store(self) -> LicenseStore:
        return LicenseStore(license_db_path(self.sim))

    async def issue(self, draft: dict[str, Any] | None = None) -> str:
        store = self._store()
        try:
            signed, _ = issue_license(
                store,
                load_issuer(self.sim),
                draft or BUSINESS_DRAFT,
                cfg=self.sim,
                catalog=load_catalog(self.sim.catalog_path),
                today=datetime.now(UTC).date(),
            )
        finally:
            store.close()
        return signed.identifier

    async def set_status(self, identifier: str, status: str, reason: str = "测试") -> None:
        store = self._store()
        try:
            change_status(store, identifier, status, reason=reason)  # type: ignore[arg-type]
        finally:
            store.close()

    async def qr(self, identifier: str, fields: list[str] | None = None) -> str:
        store = self._store()
        try:
            stored = store.get(identifier)
        finally:
            store.close()
        return mint_license_qr(
            stored,
            load_token_key(self.sim),
            node_id=self.sim.id,
            policy=PurposePolicy(load_catalog(self.sim.catalog_path)),
            fields=fields,
        )

    async def fault(self, mode: str | None) -> None:
        if self.stand_in is not None:
            await self.stand_in.stop()
            self.stand_in = None
        if mode is not None:
            self.stand_in = StandIn(mode)
            self.stand_in.url = await self.stand_in.start()


@asynccontextmanager
async def running_partner(
    tree: Tree, style: str, *, timing: SimTiming | None = None, clock: Any = time.time
) -> AsyncIterator[Any]:
    if style == "native":
        quzhou = tree.config(QUZHOU)
        seed_licenses(quzhou)
        native = NativePartner(
            style=style, tree=tree, network=Network(tree), sim=quzhou, jian=tree.config(JIAN)
        )
        await native.start()
        try:
            yield native
        finally:
            for adapter in native.adapters:
                await adapter.close()
            for client in native.replaced:
                await client.close()
            await native.fault(None)
            await native.network.stop_all()
        return
    p = Partner(
        style=style,
        tree=tree,
        sim=tree.config(SIM_OF[style]),
        jian=tree.config(JIAN),
        clock=clock,
        timing=timing or SimTiming(step_seconds=0.0, poll_seconds=0.05, retry_base_seconds=0.05),
    )
    await p.start()
    try:
        yield p
    finally:
        for adapter in p.adapters:
            await adapter.close()
        await p.stop()


@dataclass
class Receiver:
    """Ji'an's callback side: the real pipeline, audit store and the inbound routes."""

    cfg: NodeConfig
    events: asyncio.Queue[tuple[str, StatusEvent]]
    audit: AuditStore
    refuse: type[Exception] | None = None

    async def take(self, count: int, within: float = 10.0) -> list[tuple[str, StatusEvent]]:
        """The next ``count`` events handed to the sink (bounded wait, no polling)."""
        got = []
        async with asyncio.timeout(within):
            for _ in range(count):
                got.append(await self.events.get())
        return got


@asynccontextmanager
async def running_receiver(cfg: NodeConfig, *, clock: Any = time.time) -> AsyncIterator[Receiver]:
    events: asyncio.Queue[tuple[str, StatusEvent]] = asyncio.Queue()
    audit = AuditStore.from_config(cfg)
    receiver = Receiver(cfg=cfg, events=events, audit=audit)

    async def sink(partner_id: str, event: StatusEvent) -> None:
        if receiver.refuse is not None:
            raise receiver.refuse("refused by the test")
        await events.put((partner_id, event))

    app = web.Application(middlewares=[pipeline], client_max_size=cfg.max_body_bytes)
    app[CONFIG] = cfg
    app[CATALOG] = load_catalog(cfg.catalog_path)
    app[REGISTRY] = cfg.key_registry()
    app[METRICS] = make_metrics()
    app[READINESS] = {}
    app[RATE] = InProcessRateLimiter()
    replay = SqliteReplayCache(cfg.data_dir / "replay.db")
    app[REPLAY] = replay
    app.router.add_routes(inbound_routes(cfg, sink, clock=clock))
    await audit.open()
    app[AUDIT] = audit
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, cfg.host, cfg.port, reuse_address=True).start()
    try:
        yield receiver
    finally:
        await runner.cleanup()
        await replay.close()
        await audit.close()


def request_id_for(outcome: str) -> str:
    """A request id the simulators' deterministic rule gives ``outcome``."""
    for i in range(1000):
        candidate = str(uuid.uuid5(uuid.NAMESPACE_URL, f"tongban-test-{outcome}-{i}"))
        if planned_outcome(candidate) == outcome:
            return candidate
    raise AssertionError(f"no request id found for {outcome}")


JIAN_ISSUER = "1136080001423588XW"
#: A license type each style's test item may read (用证清单).
LICENSE_TYPE_OF = {
    "native": "11100000MB1742030G001",
    "xml_envelope": "11100000MB0341032Y015",
    "form_async": "111000000000179619001",
    "sharing_api": "11100000MB0341032Y001",
}

STATUSES_OF = {
    "complete": ["accepted", "in_progress", "completed"],
    "supplement": ["accepted", "in_progress", "needs_supplement", "in_progress", "completed"],
    "reject": ["rejected"],
}


def submission(style: str, request_id: str, **over: Any) -> Submission:
    values: dict[str, Any] = {
        "request_id": request_id,
        "item_code": ITEM_OF[style],
        "applicant": {"name": "张三", "id_type": "111", "id": "11010519491231002X"},
        "licenses": (make_license_identifier(LICENSE_TYPE_OF[style], JIAN_ISSUER, "2600001"),),
        "form": {"reason": "住所变更", "copies": 2, "contact": {"phone": "0597-1234567"}},
        "submitted_at": "2026-01-15T02:30:00.000Z",
        "accepting_node": JIAN,
    }
    values.update(over)
    return Submission(**values)
