"""``GET /v1/catalog``: the items this node handles (SPEC 5, 7)."""

from __future__ import annotations

from aiohttp import web

from gateway.http.context import CATALOG, CONFIG, CTX
from gateway.http.openapi import document, json_body
from gateway.http.problem import json_response

routes = web.RouteTableDef()


@routes.get("/v1/catalog", name="partner:catalog")
async def catalog(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG]
    ctx = request[CTX]
    ctx.event = "catalog.read"
    partner = ctx.partner
    items = [
        i.to_json()
        for i in request.app[CATALOG].handled_by(cfg.id)
        if partner is None or partner.allows_item(i.code)
    ]
    return json_response({"node": cfg.id, "items": items})


document(
    "get",
    "/v1/catalog",
    {
        "summary": "Service items this node handles",
        "security": [{"requestToken": []}],
        "responses": {
            "200": json_body(
                {
                    "type": "object",
                    "required": ["node", "items"],
                    "properties": {
                        "node": {"type": "string"},
                        "items": {"type": "array", "items": {"type": "object"}},
                    },
                }
            )
        },
    },
)
