"""E-license endpoints (SPEC 4, 7): verify, fetch with consent, status.

Handlers only translate HTTP to ``gateway.licenses.service.LicenseService`` and back,
and describe the call for its audit entry: ``event``, ``subject`` (the license
identifier, which the log pseudonymises), ``meta`` (the outcome, nothing personal) and
``payload`` (the fields shown, kept apart and erasable). The middleware writes that
entry before the answer leaves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gateway.errors import Forbidden, InvalidJson, ValidationFailed
from gateway.http.context import ADAPTERS, CATALOG, CONFIG, CTX, READINESS, REPLAY, TOKEN_KEY
from gateway.http.openapi import document, json_body
from gateway.http.problem import json_response
from gateway.licenses.errors import ConsentRefused
from gateway.licenses.qr import parse_qr
from gateway.licenses.service import (
    LICENSES,
    LicenseService,
    read_verify_request,
    verdict_payload,
)
from gateway.licenses.store import AsyncLicenseStore, license_db_path
from gateway.licenses.strict_json import load_object
from gateway.licenses.trust import TrustStore

routes = web.RouteTableDef()


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        return load_object(raw)
    except ValueError as exc:
        raise InvalidJson(f"the body is {exc}") from None


@routes.post("/v1/licenses/verify", name="partner:licenses.verify")
async def verify(request: web.Request) -> web.Response:
    """Verify a license or a 亮证码 for a partner; the verdict is a 200 even when invalid."""
    ctx = request[CTX]
    ctx.event = "license.verify"
    wanted = read_verify_request(_json_object(ctx.body))
    service = request.app[LICENSES]
    if wanted.purpose:
        service.policy.item(wanted.purpose)  # an unknown item is a bad request, not a refusal
        if ctx.partner is not None and not ctx.partner.allows_item(wanted.purpose):
            raise Forbidden(f"partner {ctx.partner.id} may not use service item {wanted.purpose}")
    verdict = await service.verify(wanted)
    ctx.subject = verdict.identifier
    ctx.meta.update(verdict.audit_meta())
    ctx.payload = verdict_payload(verdict)
    return json_response(verdict.to_json())


@routes.post("/v1/licenses/fetch", name="partner:licenses.fetch")
async def fetch(request: web.Request) -> web.Response:
    """Hand over a license this node issued, for a valid single-use QR token (consent)."""
    ctx = request[CTX]
    ctx.event = "license.fetch"
    body = _json_object(ctx.body)
    unknown = sorted(set(body) - {"qr", "purpose"})
    if unknown:
        reason = "is not a member of a fetch request"
        raise ValidationFailed(f"{unknown[0]}: {reason}", fields={unknown[0]: reason})
    purpose = body.get("purpose")
    if purpose is not None and not isinstance(purpose, str):
        raise ValidationFailed("purpose: must be a string", fields={"purpose": "must be a string"})
    ctx.meta["purpose"] = purpose
    token = parse_qr(body.get("qr"), require_prefix=False)
    ctx.subject = token.lid  # refusals too: an auditor looks up every use of a license
    ctx.meta["jti"] = token.jti  # links this use to the QR code's minting entry
    try:
        stored = await request.app[LICENSES].fetch(token.jws, purpose=purpose)
    except ConsentRefused as exc:
        ctx.meta["reason"] = exc.reason
        raise
    ctx.meta.update(type_code=stored.type_code, status=stored.status.status)
    return json_response({"license": stored.jws})


@routes.get("/v1/licenses/status", name="partner:licenses.status")
async def status(request: web.Request) -> web.Response:
    """The issuing node's status of one of its licenses (``404 not_found`` otherwise)."""
    ctx = request[CTX]
    ctx.event = "license.status"
    identifier = request.query.get("identifier")
    if not identifier:
        reason = "is required"
        raise ValidationFailed(f"identifier {reason}", fields={"identifier": reason})
    ctx.subject = identifier
    answer = await request.app[LICENSES].status(identifier)
    ctx.meta["status"] = answer.status
    return json_response(answer.to_json())


async def _license_service(app: web.Application) -> AsyncIterator[None]:
    """Open the register and build the service once adapters and the replay cache exist."""
    cfg = app[CONFIG]
    adapters = app[ADAPTERS]
    store = AsyncLicenseStore(license_db_path(cfg))
    app[LICENSES] = LicenseService(
        cfg=cfg,
        catalog=app[CATALOG],
        store=store,
        trust=TrustStore.from_dir(cfg.trust_dir),
        adapters=adapters,
        replay=app[REPLAY],
        token_key=app[TOKEN_KEY],
    )
    app[READINESS]["licenses"] = store.ping
    try:
        yield
    finally:
        await store.close()


def setup(app: web.Application) -> None:
    """Add the license endpoints and the service they share to a node."""
    app.cleanup_ctx.append(_license_service)
    app.router.add_routes(routes)


_STRING = {"type": "string"}
_VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["verdict", "reasons", "checks", "license", "checked_at"],
    "properties": {
        "verdict": {"type": "string", "enum": ["valid", "invalid", "undetermined"]},
        "reasons": {"type": "array", "items": _STRING},
        "checks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "result", "code", "detail"],
                "properties": {
                    "name": _STRING,
                    "result": {"type": "string", "enum": ["pass", "fail", "unknown"]},
                    "code": {"type": ["string", "null"]},
                    "detail": _STRING,
                },
            },
        },
        "license": {"type": "object", "description": "Disclosed fields by catalog name"},
        "checked_at": {"type": "string", "format": "date-time"},
        "identifier": {"type": ["string", "null"]},
        "source": {"type": "string", "enum": ["license", "qr"]},
        "purpose": {"type": ["string", "null"]},
        "explanations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {k: _STRING for k in ("code", "zh", "en", "next_zh", "next_en")},
            },
        },
    },
}

document(
    "post",
    "/v1/licenses/verify",
    {
        "summary": "Verify an e-license or a 亮证码 (SPEC 4.5)",
        "security": [{"requestToken": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "license": {"type": "string", "description": "compact JWS"},
                            "qr": {"type": "string", "description": "TB1:<JWS>"},
                            "holder": {
                                "type": "object",
                                "properties": {
                                    "id_type": {"type": "string", "enum": ["111", "001"]},
                                    "id": _STRING,
                                },
                                "required": ["id"],
                            },
                            "holder_id": _STRING,
                            "purpose": {"type": "string", "description": "service item code"},
                        },
                    }
                }
            },
        },
        "responses": {"200": json_body(_VERDICT_SCHEMA, "The verdict (also when invalid)")},
    },
)
document(
    "post",
    "/v1/licenses/fetch",
    {
        "summary": "Fetch a license this node issued, with a 亮证码 as consent (SPEC 4.4)",
        "description": "Each QR token works once. A refused token is 403 `forbidden` with "
        "`reason` qr_expired, qr_replayed or signature_invalid; an unknown license 404.",
        "security": [{"requestToken": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["qr"],
                        "additionalProperties": False,
                        "properties": {"qr": _STRING, "purpose": _STRING},
                    }
                }
            },
        },
        "responses": {
            "200": json_body(
                {"type": "object", "required": ["license"], "properties": {"license": _STRING}}
            )
        },
    },
)
document(
    "get",
    "/v1/licenses/status",
    {
        "summary": "Status of a license this node issued (SPEC 4.3)",
        "security": [{"requestToken": []}],
        "parameters": [{"name": "identifier", "in": "query", "required": True, "schema": _STRING}],
        "responses": {
            "200": json_body(
                {
                    "type": "object",
                    "required": ["identifier", "status", "since", "reason"],
                    "properties": {
                        "identifier": _STRING,
                        "status": {"type": "string", "enum": ["valid", "revoked", "suspended"]},
                        "since": {"type": ["string", "null"]},
                        "reason": {"type": ["string", "null"]},
                    },
                }
            )
        },
    },
)
