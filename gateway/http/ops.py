"""Operator endpoints: liveness, readiness, metrics, public keys, the OpenAPI document."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import ServiceUnavailable
from gateway.http.context import CONFIG, METRICS, READINESS
from gateway.http.openapi import document, openapi_document
from gateway.http.problem import json_response
from gateway.keys import public_keys_document

routes = web.RouteTableDef()


@routes.get("/healthz", name="public:healthz")
async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers. Readiness is separate so load balancers can drain."""
    return json_response({"status": "ok", "node": request.app[CONFIG].id})


@routes.get("/readyz", name="public:readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready only when every safety store (database, Redis when configured) answers."""
    checks: dict[str, str] = {}
    ready = True
    for name, probe in request.app[READINESS].items():
        try:
            await probe()
            checks[name] = "ok"
        except Exception as exc:  # any failure means not ready; the reason is for operators
            ready = False
            checks[name] = f"unavailable: {type(exc).__name__}"
    if not ready:
        err = ServiceUnavailable("a safety store is not reachable")
        body = {"status": "unavailable", "checks": checks, "code": err.code}
        resp = json_response(body, status=503)
        return resp
    return json_response({"status": "ready", "checks": checks})


@routes.get("/metrics", name="public:metrics")
async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[METRICS].render(), content_type="text/plain", charset="utf-8"
    )


@routes.get("/.well-known/tongban/keys", name="public:keys")
async def keys(request: web.Request) -> web.Response:
    return json_response(public_keys_document(request.app[CONFIG]))


@routes.get("/openapi.json", name="public:openapi")
async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document(request.app[CONFIG].id))


document("get", "/healthz", {"summary": "Liveness", "responses": {"200": {"description": "alive"}}})
document(
    "get",
    "/readyz",
    {
        "summary": "Readiness (database, Redis)",
        "responses": {
            "200": {"description": "ready"},
            "503": {"description": "a safety store is down"},
        },
    },
)
document(
    "get",
    "/metrics",
    {"summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition"}}},
)
document(
    "get",
    "/.well-known/tongban/keys",
    {"summary": "This node's public keys", "responses": {"200": {"description": "keys"}}},
)
document(
    "get",
    "/openapi.json",
    {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}},
)
