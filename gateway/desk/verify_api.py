"""``/desk/api/items`` and ``/desk/api/verify``: the staff verify screen (SPEC 4.4-4.6).

A verification runs in-process through ``gateway.licenses.service`` (the same engine
as ``POST /v1/licenses/verify`` and ``tongban license verify``); for a 亮证码 that
includes fetching the license from the issuing city certificate-free. Its audit entry
(``license.verify``, actor staff, ``actor.sub`` the staff id, subject the license
identifier, which the log pseudonymises) is durable before the page sees the verdict,
and its seq and leaf hash become the usage record (用证记录).

The entry's ``response`` digest is that of the verdict JSON (SPEC 4.5) the engine
produced; the page gets a view of the same verdict plus the usage-record block, which
can only exist once the entry does (the same split as the ``Tongban-Audit`` header of
partner calls).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.desk.access import require
from gateway.desk.inputs import MAX_INPUT_CHARS, classify_input
from gateway.desk.receipts import ReceiptRef, qr_data_uri
from gateway.desk.requests import json_body, text_field
from gateway.desk.verdict_view import desk_view
from gateway.desk.verification import verify_at_desk
from gateway.encoding import b64u_encode
from gateway.errors import ValidationFailed
from gateway.http.context import CATALOG, CONFIG, CTX
from gateway.http.problem import json_response

routes = web.RouteTableDef()
MAX_VERIFY_BODY = MAX_INPUT_CHARS * 2 + 4096
"""JSON escaping can double a pasted license; anything larger is refused as 413."""


@routes.get("/desk/api/items", name="desk:items")
async def items(request: web.Request) -> web.Response:
    """Every service item of the catalog (a desk accepts items other cities handle too)."""
    await require(request, "staff")
    catalog = request.app[CATALOG]
    out = []
    for item in catalog.items.values():
        data = item.to_json()
        data["license_type_names"] = [catalog.type_name(c) for c in item.license_types]
        out.append(data)
    return json_response({"items": out})


@routes.post("/desk/api/verify", name="desk:verify")
async def verify(request: web.Request) -> web.Response:
    caller = await require(request, "staff")
    app = request.app
    cfg = app[CONFIG]
    data = json_body(request, MAX_VERIFY_BODY)
    text = text_field(data, "input", max_len=MAX_INPUT_CHARS)
    purpose = text_field(data, "purpose", max_len=64)
    item = app[CATALOG].item(purpose)
    if item is None:
        raise ValidationFailed("unknown service item", fields={"purpose": "not in the catalog"})
    given = classify_input(text)
    verdict, receipt = await verify_at_desk(
        app, given, item.code, staff=caller.user, body=request[CTX].body
    )
    view: dict[str, Any] = desk_view(cfg, verdict, item)
    ref = ReceiptRef.of(cfg.id, receipt)
    view["receipt"] = {
        "ref": ref.text(),
        "seq": receipt.seq,
        "leaf": b64u_encode(receipt.leaf),
        "qr": qr_data_uri(ref.text()),
        "node": cfg.id,
        "node_name": cfg.name,
        "staff": caller.user,
        "time": verdict.checked_at,
    }
    response = json_response(view)
    response.headers["Cache-Control"] = "no-store"
    return response
