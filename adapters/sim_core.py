"""What every partner simulator shares: state, the worker, fault modes and ``/_sim``.

A simulator is a small aiohttp app that answers in its city's format (the style module
adds those routes) on top of this core:

* ``SimCore`` under ``app[SIM]``: configuration, the SQLite store, the workflow that
  works requests by itself, the fault mode, the clock, and a ``ClientSession`` for
  callbacks — all opened in ``cleanup_ctx`` and closed in reverse;
* a fault middleware, so contract tests can make the partner API misbehave:
  ``POST /_sim/mode {"fail": "garbage" | "timeout" | "reset" | "down" | ...}`` (``null``
  restores it). ``charset``, ``missing``, ``badsig`` and ``stale`` are distortions a
  style applies to its own replies;
* test and demo hooks under ``/_sim/``: run the worker now (``tick``), a request's
  history, notices received, license statuses, and the QR the citizen app would show.
  They exist only on simulators (loopback demo), never on a Tongban node.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware

from adapters.sim_licenses import issue_draft, mint_holder_qr, seed_licenses
from adapters.sim_store import SimStore
from adapters.sim_workflow import Deliver, SimTiming, SimWorkflow, planned_outcome
from adapters.wire_time import rfc3339
from gateway.config import NodeConfig, PartnerConfig
from gateway.encoding import json_loads
from gateway.errors import GatewayError

COMMON_FAULTS = frozenset({"garbage", "timeout", "reset", "down"})
HANG_SECONDS = 60.0
MAX_SIM_BODY = 1 << 20
CALLBACK_TIMEOUT = aiohttp.ClientTimeout(total=5, connect=2)
GARBAGE = b"\x00\xff\xfe<<<\xe4\xb8 not what you asked for }}}"
DOWN_PAGE = (
    b"<html><head><title>503 Service Temporarily Unavailable</title></head><body>"
    b"<center><h1>503 Service Temporarily Unavailable</h1></center><hr><center>nginx</center>"
    b"</body></html>"
)

#: A style's distortion of a finished reply for a style-specific fault.
Distort = Callable[[str, web.Request, web.Response], web.Response]


@dataclass
class SimCore:
    """One running simulator's state, reached by handlers as ``request.app[SIM]``."""

    cfg: NodeConfig
    store: SimStore
    workflow: SimWorkflow
    clock: Callable[[], float]
    faults: frozenset[str]
    fault: str | None = None
    session: aiohttp.ClientSession | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def partner_by_division(self, code: str) -> PartnerConfig | None:
        return self.cfg.partner(f"cn-{code}")

    def now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def callback_url(self, partner: PartnerConfig) -> str:
        """Where this city pushes status changes on the accepting node."""
        return f"{partner.url}/adapters/{self.cfg.id}/callback"


SIM = web.AppKey("sim", SimCore)


@dataclass(frozen=True)
class SimStyle:
    """What a style module gives the core: its API routes and how it misbehaves."""

    name: str
    routes: list[web.RouteDef]
    extra_faults: frozenset[str]
    distort: Distort
    garbage_type: str
    make_deliver: Callable[[SimCore], Deliver] | None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def fault_middleware(api_prefix: str, style: SimStyle) -> Middleware:
    """Misbehave on the partner API (never on ``/_sim`` or ``/healthz``) as configured."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        core = request.app[SIM]
        mode = core.fault
        if mode is None or not request.path.startswith(api_prefix):
            return await handler(request)
        if mode == "down":
            return web.Response(status=503, body=DOWN_PAGE, content_type="text/html")
        if mode == "timeout":
            await asyncio.sleep(HANG_SECONDS)
            return web.Response(status=504, body=DOWN_PAGE, content_type="text/html")
        if mode == "reset":
            if request.transport is not None:
                request.transport.abort()  # drop the connection without an answer
            return web.Response(status=500)  # never reaches the caller
        if mode == "garbage":
            return web.Response(body=GARBAGE, headers={"Content-Type": style.garbage_type})
        answered = await handler(request)
        if not isinstance(answered, web.Response):
            return answered
        return style.distort(mode, request, answered)

    return middleware


async def _read_json(request: web.Request) -> dict[str, Any]:
    try:
        value = json_loads(await request.read())
    except ValueError:
        raise web.HTTPBadRequest(text="expected a JSON object") from None
    if not isinstance(value, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return value


async def set_mode(request: web.Request) -> web.Response:
    core = request.app[SIM]
    mode = (await _read_json(request)).get("fail")
    if mode is not None and mode not in core.faults:
        raise web.HTTPBadRequest(text=f"fail must be one of {sorted(core.faults)} or null")
    core.fault = mode
    return web.json_response({"fail": mode})


async def tick(request: web.Request) -> web.Response:
    """Run the worker once now (tests with an injected clock use this)."""
    return web.json_response({"done": await request.app[SIM].workflow.run_once()})


async def show_request(request: web.Request) -> web.Response:
    core = request.app[SIM]
    found = core.store.request(request.match_info["key"])
    if found is None:
        raise web.HTTPNotFound(text="no such request")
    return web.json_response(
        {
            "request_id": found.request_id,
            "ticket": found.ticket,
            "status": found.status,
            "outcome": planned_outcome(found.request_id),
            "history": [
                {
                    "status": e.status,
                    "at": rfc3339(datetime.fromtimestamp(e.at, UTC)),
                    "note": e.note,
                }
                for e in found.history
            ],
            "callbacks": core.store.callback_states(),
        }
    )


async def notices(request: web.Request) -> web.Response:
    return web.json_response({"notices": request.app[SIM].store.notices()})


async def licenses(request: web.Request) -> web.Response:
    rows = request.app[SIM].store.licenses()
    return web.json_response(
        {"licenses": [{"identifier": r.identifier, "status": r.status} for r in rows]}
    )


async def set_license_status(request: web.Request) -> web.Response:
    """Revoke, suspend or reinstate one of this city's licenses (SPEC 4.3 statuses)."""
    core = request.app[SIM]
    body = await _read_json(request)
    status, reason = body.get("status"), body.get("reason")
    if status not in ("valid", "revoked", "suspended") or not isinstance(
        body.get("identifier"), str
    ):
        raise web.HTTPBadRequest(text="identifier and status (valid|revoked|suspended) required")
    try:
        changed = core.store.set_license_status(
            body["identifier"], status, core.clock(), reason if isinstance(reason, str) else None
        )
    except ValueError as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    if not changed:
        raise web.HTTPNotFound(text="no such license")
    return web.json_response({"identifier": body["identifier"], "status": status})


async def issue(request: web.Request) -> web.Response:
    """Issue a license from a draft, as this city's own issuing desk would."""
    core = request.app[SIM]
    try:
        identifier = issue_draft(
            core.store, core.cfg, await _read_json(request), core.now_dt().date()
        )
    except GatewayError as exc:
        raise web.HTTPBadRequest(text=exc.detail) from None
    return web.json_response({"identifier": identifier}, status=201)


async def make_qr(request: web.Request) -> web.Response:
    """The 亮证码 the citizen app of this city would show for one license."""
    core = request.app[SIM]
    body = await _read_json(request)
    lic = core.store.license(str(body.get("identifier", "")))
    fields = body.get("fields", ["*"])
    if lic is None:
        raise web.HTTPNotFound(text="no such license")
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise web.HTTPBadRequest(text="fields must be a list of strings")
    try:
        qr = mint_holder_qr(core.cfg, lic, fields, core.clock())
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return web.json_response({"qr": qr})


async def health(request: web.Request) -> web.Response:
    cfg = request.app[SIM].cfg
    return web.json_response({"status": "ok", "node": cfg.id, "style": cfg.simulator})


SIM_ROUTES = [
    web.post("/_sim/mode", set_mode),
    web.post("/_sim/tick", tick),
    web.get("/_sim/requests/{key}", show_request),
    web.get("/_sim/notices", notices),
    web.get("/_sim/licenses", licenses),
    web.post("/_sim/licenses", issue),
    web.post("/_sim/licenses/status", set_license_status),
    web.post("/_sim/qr", make_qr),
    web.get("/healthz", health),
]


def build_sim_app(
    cfg: NodeConfig,
    style: SimStyle,
    api_prefix: str,
    *,
    timing: SimTiming,
    clock: Callable[[], float],
) -> web.Application:
    """The simulator app; nothing touches disk or network until it starts."""
    app = web.Application(
        middlewares=[fault_middleware(api_prefix, style)], client_max_size=MAX_SIM_BODY
    )

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        store = SimStore(cfg.data_dir / "simulator.db")
        workflow = SimWorkflow(store, timing, clock)
        core = SimCore(
            cfg=cfg,
            store=store,
            workflow=workflow,
            clock=clock,
            faults=COMMON_FAULTS | style.extra_faults,
        )
        app[SIM] = core
        try:
            seed_licenses(store, cfg)
            core.session = aiohttp.ClientSession(timeout=CALLBACK_TIMEOUT)
            if style.make_deliver is not None:
                workflow.deliver = style.make_deliver(core)
            task = asyncio.create_task(workflow.run_forever(), name=f"sim-{cfg.id}")
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            if core.session is not None:
                await core.session.close()
            store.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_routes(SIM_ROUTES)
    app.router.add_routes(style.routes)
    return app


__all__ = ["SIM", "SimCore", "SimStyle", "build_sim_app"]
