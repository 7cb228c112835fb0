"""``/v1/service-requests``: submit, read and report status of cross-provincial requests
(SPEC 5, 7). Handlers only translate HTTP to ``ExchangeService`` calls and describe the
call for its audit entry; ``setup`` also starts the exchange's background work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.encoding import canonical_json
from gateway.errors import InternalError
from gateway.exchange.metrics import make_exchange_metrics
from gateway.exchange.requests import ServiceRequest
from gateway.exchange.runtime import ExchangeRuntime, ExchangeTiming, open_stores
from gateway.exchange.service import EXCHANGE, ExchangeService
from gateway.exchange.validation import (
    MAX_EVENT_BYTES,
    MAX_SUBMISSION_BYTES,
    load_json_object,
    parse_request_id,
    parse_status_event,
)
from gateway.http.context import ADAPTERS, AUDIT, CATALOG, CONFIG, CTX, METRICS, CallContext
from gateway.http.openapi import document, json_body
from gateway.http.problem import json_response

__all__ = ["EXCHANGE_TIMING", "routes", "setup"]

routes = web.RouteTableDef()

#: Optional: the exchange's intervals and policies (tests set a fast one before start).
EXCHANGE_TIMING = web.AppKey("exchange_timing", ExchangeTiming)


def _service(request: web.Request) -> ExchangeService:
    service = request.app.get(EXCHANGE)
    if service is None:  # the route exists only when setup ran, which starts the service
        raise InternalError("the exchange service is not running")
    return service


def _partner_id(ctx: CallContext) -> str:
    if ctx.partner is None:  # partner routes are authenticated by the middleware
        raise InternalError("partner route without a partner")
    return ctx.partner.id


def _describe(ctx: CallContext, event: str, record: ServiceRequest, **meta: object) -> None:
    ctx.event = event
    ctx.subject = record.applicant_id
    ctx.meta.update({"request_id": record.request_id, "item": record.item_code, **meta})


@routes.post("/v1/service-requests", name="partner:service_requests.submit")
async def submit(request: web.Request) -> web.Response:
    """A partner city submits a request for an item this node handles (202 received)."""
    ctx = request[CTX]
    ctx.event = "request.submit"
    partner = ctx.partner
    if partner is None:
        raise InternalError("partner route without a partner")
    data = load_json_object(ctx.body, limit=MAX_SUBMISSION_BYTES)
    record, created = await _service(request).receive_submission(partner, data)
    _describe(ctx, "request.submit", record, role="handling", created=created)
    if created:  # the personal data, committed and erasable (SPEC 6)
        ctx.payload = canonical_json(record.submission.to_json())
    return json_response(record.answer, status=202)


@routes.get("/v1/service-requests/{request_id}", name="partner:service_requests.get")
async def read(request: web.Request) -> web.Response:
    """Status, history, deadline and escalations; only for the two cities involved."""
    ctx = request[CTX]
    ctx.event = "request.read"
    service = _service(request)
    record = await service.read(_partner_id(ctx), request.match_info["request_id"])
    _describe(ctx, "request.read", record)
    return json_response(service.view(record))


@routes.post("/v1/service-requests/{request_id}/events", name="partner:service_requests.events")
async def events(request: web.Request) -> web.Response:
    """The handling city reports a status change of a request this node accepted."""
    ctx = request[CTX]
    ctx.event = "request.status"
    service = _service(request)
    request_id = parse_request_id(request.match_info["request_id"], "request_id (path)")
    data = load_json_object(ctx.body, limit=MAX_EVENT_BYTES)
    event = parse_status_event(data, request_id=request_id, now=service.now())
    record, changed = await service.apply_event(_partner_id(ctx), event)
    _describe(ctx, "request.status", record, status=event.status, at=event.at, changed=changed)
    return json_response(service.view(record))


async def exchange_context(app: web.Application) -> AsyncIterator[None]:
    """Open the exchange stores, start the background work; stop and close on shutdown."""
    cfg = app[CONFIG]
    timing = app.get(EXCHANGE_TIMING) or ExchangeTiming()
    stores = open_stores(cfg, timing)
    adapters = app[ADAPTERS]
    runtime = ExchangeRuntime(
        cfg=cfg,
        catalog=app[CATALOG],
        audit=app[AUDIT],
        adapters=adapters,
        stores=stores,
        timing=timing,
        metrics=make_exchange_metrics(app[METRICS].registry),
    )
    try:
        await runtime.start()
        app[EXCHANGE] = runtime.service
        yield
    finally:
        await runtime.stop()
        await stores.close()


def setup(app: web.Application) -> None:
    """Routes of SPEC 7 for service requests, and the exchange's lifetime."""
    app.router.add_routes(routes)
    app.cleanup_ctx.append(exchange_context)


_RECORD_SCHEMA = {
    "type": "object",
    "required": ["request_id", "item_code", "handling_node", "accepting_node", "status"],
    "properties": {
        "request_id": {"type": "string", "format": "uuid"},
        "item_code": {"type": "string"},
        "item_name": {"type": ["string", "null"]},
        "handling_node": {"type": "string"},
        "accepting_node": {"type": "string"},
        "status": {"type": "string"},
        "submitted_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "history": {"type": "array", "items": {"type": "object"}},
        "deadline": {"type": ["object", "null"]},
        "escalations": {"type": "array", "items": {"type": "object"}},
    },
}
_ID_PARAM = {"name": "request_id", "in": "path", "required": True, "schema": {"type": "string"}}

document(
    "post",
    "/v1/service-requests",
    {
        "summary": "Submit a cross-provincial service request (异地受理) to its handling city",
        "security": [{"requestToken": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["request_id", "item_code", "applicant", "submitted_at"],
                        "properties": {
                            "request_id": {"type": "string", "format": "uuid"},
                            "item_code": {"type": "string"},
                            "applicant": {"type": "object"},
                            "licenses": {"type": "array", "items": {"type": "string"}},
                            "form": {"type": "object"},
                            "submitted_at": {"type": "string", "format": "date-time"},
                        },
                    }
                }
            },
        },
        "responses": {
            "202": json_body(
                {
                    "type": "object",
                    "required": ["request_id", "status"],
                    "properties": {
                        "request_id": {"type": "string"},
                        "status": {"type": "string"},
                        "item_code": {"type": "string"},
                        "handling_node": {"type": "string"},
                        "received_at": {"type": "string", "format": "date-time"},
                    },
                },
                "Received (the same answer for a resend of the same request)",
            )
        },
    },
)
document(
    "get",
    "/v1/service-requests/{request_id}",
    {
        "summary": "Status, history, deadline and escalations of a request",
        "security": [{"requestToken": []}],
        "parameters": [_ID_PARAM],
        "responses": {"200": json_body(_RECORD_SCHEMA)},
    },
)
document(
    "post",
    "/v1/service-requests/{request_id}/events",
    {
        "summary": "A status change from the city handling the request",
        "security": [{"requestToken": []}],
        "parameters": [_ID_PARAM],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["status", "at"],
                        "properties": {
                            "request_id": {"type": "string"},
                            "status": {"type": "string"},
                            "at": {"type": "string", "format": "date-time"},
                            "note": {"type": "string"},
                        },
                    }
                }
            },
        },
        "responses": {"200": json_body(_RECORD_SCHEMA, "The request after the event")},
    },
)
