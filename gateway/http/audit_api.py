"""The audit log over HTTP (SPEC 6, 7): checkpoint, proofs, entries, and witnessing.

Proof hashes are standard base64, as in C2SP checkpoints; the ``Tongban-Audit`` header
and entry digests use base64url (SPEC 3, 6).
"""

from __future__ import annotations

import base64

from aiohttp import web

from gateway.audit.entry import parse_entry
from gateway.audit.service import STORE, WITNESS
from gateway.audit.witness import SIZE_CONTENT_TYPE, HistoryRewritten, WitnessError, add_checkpoint
from gateway.errors import Forbidden, NotFound, ValidationFailed
from gateway.http.context import CTX
from gateway.http.openapi import document, json_body
from gateway.http.problem import json_response, problem_response

routes = web.RouteTableDef()

MAX_WITNESS_BODY = 64 * 1024


def _int_param(request: web.Request, name: str, *, minimum: int = 0) -> int:
    raw = request.query.get(name)
    if raw is None:
        raise ValidationFailed(f"query parameter {name} is missing", fields={name: "missing"})
    if not raw.isdigit() or len(raw) > 18:
        raise ValidationFailed(
            f"{name} must be a non-negative integer", fields={name: "not an integer"}
        )
    value = int(raw)
    if value < minimum:
        raise ValidationFailed(f"{name} must be at least {minimum}", fields={name: "too small"})
    return value


def _hashes(proof: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode("ascii") for h in proof]


@routes.get("/v1/audit/checkpoint", name="public:audit.checkpoint")
async def checkpoint(request: web.Request) -> web.Response:
    """The latest signed checkpoint with the cosignatures partners gave it."""
    request[CTX].event = "audit.checkpoint"
    note = await request.app[STORE].latest_checkpoint()
    if note is None:
        raise NotFound("no checkpoint has been signed yet")
    return web.Response(body=note, content_type="text/plain", charset="utf-8")


@routes.get("/v1/audit/proof/inclusion", name="audit:audit.proof")
async def inclusion(request: web.Request) -> web.Response:
    request[CTX].event = "audit.proof"
    store = request.app[STORE]
    index = _int_param(request, "index")
    size = _int_param(request, "size", minimum=1)
    if size > store.size:
        raise ValidationFailed(
            f"the log has {store.size} entries", fields={"size": "beyond the log"}
        )
    if index >= size:
        raise ValidationFailed("index must be below size", fields={"index": "not below size"})
    proof = await store.inclusion_proof(index, size)
    return json_response({"index": index, "size": size, "hashes": _hashes(proof)})


@routes.get("/v1/audit/proof/consistency", name="audit:audit.proof-consistency")
async def consistency(request: web.Request) -> web.Response:
    request[CTX].event = "audit.proof"
    store = request.app[STORE]
    old = _int_param(request, "old", minimum=1)
    new = _int_param(request, "new", minimum=1)
    if new > store.size:
        raise ValidationFailed(
            f"the log has {store.size} entries", fields={"new": "beyond the log"}
        )
    if old > new:
        raise ValidationFailed("old must not exceed new", fields={"old": "greater than new"})
    proof = await store.consistency_proof(old, new)
    return json_response({"old": old, "new": new, "hashes": _hashes(proof)})


@routes.get("/v1/audit/entries/{seq}", name="audit:audit.entries")
async def entry(request: web.Request) -> web.Response:
    """An entry's exact bytes, for the partner that is its actor or a signed-in auditor."""
    ctx = request[CTX]
    ctx.event = "audit.entry"
    raw = request.match_info["seq"]
    if not raw.isdigit() or len(raw) > 18:
        raise ValidationFailed(
            "seq must be a non-negative integer", fields={"seq": "not an integer"}
        )
    store = request.app[STORE]
    seq = int(raw)
    if seq >= store.size:
        raise NotFound(f"the log has {store.size} entries")
    data = await store.entry(seq)
    if ctx.staff is None:  # a partner: only entries it is the actor of
        actor = parse_entry(data).actor
        if ctx.partner is None or actor.type != "partner" or actor.id != ctx.partner.id:
            raise Forbidden("a partner may read only the entries of its own calls")
    ctx.meta["entry_seq"] = seq
    return web.Response(body=data, content_type="application/json")


@routes.post("/v1/witness/add-checkpoint", name="partner:witness")
async def witness(request: web.Request) -> web.Response:
    """C2SP tlog-witness add-checkpoint: check consistency with what we saw, then cosign."""
    ctx = request[CTX]
    ctx.event = "witness.cosign"
    if len(ctx.body) > MAX_WITNESS_BODY:
        raise ValidationFailed("add-checkpoint body is too large", fields={"body": "too large"})
    w = request.app[WITNESS]
    try:
        lines = await add_checkpoint(w.store, ctx.body, w.verifiers, w.name, w.key)
    except WitnessError as exc:
        if isinstance(exc, HistoryRewritten):
            ctx.event = "witness.refused"  # evidence of a rewritten log, kept in our chain
            ctx.meta.update({k: v for k, v in exc.extra.items() if k != "root"})
        if exc.latest_size is not None:
            resp = web.Response(
                status=409, body=f"{exc.latest_size}\n".encode(), content_type=SIZE_CONTENT_TYPE
            )
            ctx.meta["refused"] = exc.code
            return resp
        return problem_response(exc, ctx.request_id)
    return web.Response(body=lines, content_type="text/plain", charset="utf-8")


_PROOF = {
    "type": "object",
    "required": ["hashes"],
    "properties": {"hashes": {"type": "array", "items": {"type": "string"}}},
}
document(
    "get",
    "/v1/audit/checkpoint",
    {
        "summary": "Latest signed checkpoint (C2SP signed note) with cosignatures",
        "responses": {
            "200": {
                "description": "signed note",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    },
)
document(
    "get",
    "/v1/audit/proof/inclusion",
    {
        "summary": "RFC 9162 inclusion proof",
        "security": [{"requestToken": []}],
        "parameters": [
            {
                "name": "index",
                "in": "query",
                "required": True,
                "schema": {"type": "integer", "minimum": 0},
            },
            {
                "name": "size",
                "in": "query",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            },
        ],
        "responses": {"200": json_body(_PROOF)},
    },
)
document(
    "get",
    "/v1/audit/proof/consistency",
    {
        "summary": "RFC 9162 consistency proof",
        "security": [{"requestToken": []}],
        "parameters": [
            {
                "name": "old",
                "in": "query",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            },
            {
                "name": "new",
                "in": "query",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            },
        ],
        "responses": {"200": json_body(_PROOF)},
    },
)
document(
    "get",
    "/v1/audit/entries/{seq}",
    {
        "summary": "One entry's exact bytes (its actor or an auditor)",
        "security": [{"requestToken": []}],
        "parameters": [
            {
                "name": "seq",
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 0},
            }
        ],
        "responses": {"200": json_body({"type": "object"}, "the entry (RFC 8785 JSON)")},
    },
)
document(
    "post",
    "/v1/witness/add-checkpoint",
    {
        "summary": "C2SP tlog-witness add-checkpoint",
        "security": [{"requestToken": []}],
        "requestBody": {
            "required": True,
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        "responses": {
            "200": {
                "description": "cosignature lines",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "409": {
                "description": "old size is not ours",
                "content": {SIZE_CONTENT_TYPE: {"schema": {"type": "string"}}},
            },
        },
    },
)
