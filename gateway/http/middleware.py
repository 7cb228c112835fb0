"""The request pipeline every call goes through, in this order:

1. request id (echoed or generated) and a structlog context;
2. body size limit (413 before reading a byte too many);
3. for partner routes: read the body, verify the request token (SPEC 2), check the
   partner's agreement dates, endpoint ACL and rate, then claim the ``jti`` — last, so a
   refused request does not burn its token;
4. the handler;
5. errors become problem+json in one place;
6. the audit entry for the call is made durable, and only then is the response sent
   with its ``Tongban-Audit`` header;
7. one canonical log line and the metrics.

Route names carry the access policy: ``partner:<endpoint>``, ``audit:<endpoint>``
(partner or signed-in auditor), ``public:<name>``, ``desk:<name>``, and
``adapter:<partner>.<name>`` (a legacy partner's callback, authenticated by its adapter
in its own style and audited like a ``/v1`` call). A ``-suffix`` tells apart routes that
share one ACL endpoint (``audit:audit.proof-consistency``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from gateway import randpool
from gateway.audit.events import AuditEvent
from gateway.errors import (
    BodyTooLarge,
    Forbidden,
    GatewayError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PartnerSuspended,
    RequestError,
)
from gateway.http.context import (
    AUDIT,
    AUDITOR_CHECK,
    CONFIG,
    CTX,
    METRICS,
    RATE,
    REGISTRY,
    REPLAY,
    CallContext,
)
from gateway.http.problem import problem_response
from gateway.logs import get_logger
from gateway.tokens import verify_request_token

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_log = get_logger("tongban.http")


def route_policy(request: web.Request) -> tuple[str, str]:
    """``(policy, endpoint)`` from the matched route's name; unmatched routes are public."""
    name = request.match_info.route.name
    if not name or ":" not in name:
        return "public", "-"
    policy, _, endpoint = name.partition(":")
    return policy, endpoint.partition("-")[0]


async def read_body(request: web.Request, limit: int) -> bytes:
    """The raw body, refusing anything over ``limit`` with ``body_too_large``."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"the body is larger than {limit} bytes")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise BodyTooLarge(f"the body is larger than {limit} bytes") from exc


async def authenticate_partner(request: web.Request, ctx: CallContext, endpoint: str) -> None:
    """Every check of SPEC 2 for one inbound partner call; raises the exact error."""
    app = request.app
    cfg = app[CONFIG]
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    verified = verify_request_token(
        token or None,
        registry=app[REGISTRY],
        node_id=cfg.id,
        method=request.method,
        path_qs=request.raw_path,
        body=ctx.body,
    )
    partner = cfg.partner(verified.iss)
    if partner is None:  # the registry only holds keys of configured partners
        raise InternalError("registered key without a partner")
    ctx.partner = partner
    ctx.token = verified
    if not partner.active_on(datetime.now(UTC).date()):
        raise PartnerSuspended(f"partner {partner.id} is disabled or outside its agreement dates")
    if endpoint not in partner.endpoints:
        raise Forbidden(f"partner {partner.id} may not call {endpoint}")
    await app[RATE].check(partner.id, partner.rate, partner.burst)
    owner = f"{ctx.request_id}/{randpool.token_urlsafe(8)}"
    await app[REPLAY].claim(verified.iss, verified.jti, verified.replay_expires_at, owner)


def _outcome(status: int) -> str:
    return "ok" if status < 400 else ("rejected" if status < 500 else "error")


@web.middleware
async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    sent_id = request.headers.get("X-Request-Id", "")
    request_id = sent_id if _REQUEST_ID_RE.match(sent_id) else randpool.token_hex(8)
    ctx = CallContext(request_id=request_id)
    request[CTX] = ctx
    app = request.app
    cfg = app[CONFIG]
    policy, endpoint = route_policy(request)
    ctx.route = endpoint
    audited = request.path.startswith("/v1/") or policy == "adapter"
    code: str | None = None
    try:
        ctx.body = await read_body(request, cfg.max_body_bytes)
        if isinstance(request.match_info.http_exception, web.HTTPMethodNotAllowed):
            raise MethodNotAllowed(f"{request.method} is not allowed on this path")
        if request.match_info.http_exception is not None:
            raise NotFound("no such endpoint")
        if policy == "partner":
            await authenticate_partner(request, ctx, endpoint)
        elif policy == "audit":
            auditor_check = app.get(AUDITOR_CHECK)
            ctx.staff = await auditor_check(request) if auditor_check else None
            if ctx.staff is None:
                await authenticate_partner(request, ctx, endpoint)
        response = await handler(request)
    except GatewayError as exc:
        code = exc.code
        response = problem_response(exc, request_id)
        app[METRICS].rejections.labels(code).inc()
    except web.HTTPException as exc:  # raised by aiohttp itself (e.g. a redirect)
        if exc.status < 400:
            raise
        err: GatewayError = (
            NotFound("no such endpoint") if exc.status == 404 else RequestError(exc.reason)
        )
        code = err.code
        response = problem_response(err, request_id)
    except Exception:
        _log.exception("unhandled", request_id=request_id, route=ctx.route)
        code = "internal"
        response = problem_response(
            InternalError("unexpected error; it has been logged"), request_id
        )
    response.headers["X-Request-Id"] = request_id
    if audited and isinstance(response, web.Response):
        try:
            receipt = await app[AUDIT].append(_audit_event(request, ctx, response, code))
        except GatewayError as exc:  # the log cannot write: nothing is answered as done
            code = exc.code
            response = problem_response(exc, request_id)
            response.headers["X-Request-Id"] = request_id
        else:
            response.headers["Tongban-Audit"] = receipt.header()
    elapsed = time.perf_counter() - started
    metrics = app[METRICS]
    metrics.requests.labels(ctx.route, ctx.caller, str(response.status)).inc()
    metrics.latency.labels(ctx.route).observe(elapsed)
    _log.info(
        "request",
        request_id=request_id,
        method=request.method,
        route=ctx.route,
        partner=ctx.caller,
        staff=ctx.staff,
        status=response.status,
        code=code,
        duration_ms=round(elapsed * 1000, 2),
    )
    return response


def _audit_event(
    request: web.Request, ctx: CallContext, response: web.Response, code: str | None
) -> AuditEvent:
    body = response.body if isinstance(response.body, bytes) else b""
    meta = {
        "route": ctx.route,
        "method": request.method,
        "status": response.status,
        "request_id": ctx.request_id,
    }
    meta.update(ctx.meta)
    if ctx.partner is not None:
        actor_type, actor_id = "partner", ctx.partner.id
        sub = ctx.token.sub if ctx.token else None
    elif ctx.staff is not None:
        actor_type, actor_id, sub = "staff", request.app[CONFIG].id, ctx.staff
    else:
        actor_type, actor_id, sub = "partner", "unauthenticated", None
    event = ctx.event or (ctx.route if ctx.route != "-" else "http.unrouted")
    return AuditEvent(
        event=event,
        actor_type=actor_type,  # type: ignore[arg-type]
        actor_id=actor_id,
        actor_sub=sub,
        outcome=_outcome(response.status),  # type: ignore[arg-type]
        code=code,
        subject=ctx.subject,
        request=ctx.body,
        response=body,
        payload=ctx.payload,
        meta=meta,
    )
