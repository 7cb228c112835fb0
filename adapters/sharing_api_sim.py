"""Simulator of 通辽 Tongliao's provincial sharing platform (``sharing_api``).

JSON under ``/share/api/v1``, every call and answer HMAC-signed
(``adapters.sharing_api_format``); refusals are HTTP 200 with a non-zero ``code``.
Requests it handles are worked by ``SimWorkflow`` and each status change is pushed to
the accepting node as a signed JSON callback, whose signed answer it checks.

Fault modes beyond the common ones: ``missing`` (a signed success with empty
``data``), ``badsig`` (the right answer under a wrong signature), ``stale`` (the right
answer signed with a timestamp ten minutes old).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from adapters.sharing_api import callback_body
from adapters.sharing_api_format import (
    API_ROOT,
    APP_UNKNOWN,
    AUTH_CODE_INVALID,
    AUTH_CODE_USED,
    CONTENT_TYPE,
    LICENSE_FETCH_PATH,
    LICENSE_NOT_FOUND,
    LICENSE_STATUS_PATH,
    LICENSE_STATUS_TO_CODE,
    NONCE_REPLAYED,
    NOTIFY_PATH,
    OK,
    PARAMETER_INVALID,
    PING_PATH,
    PROJECT_CONFLICT,
    REQUEST_STATUS_FROM_CODE,
    REQUEST_STATUS_TO_CODE,
    SIGNATURE_INVALID,
    SUBMIT_PATH,
    TIMESTAMP_INVALID,
    answer_body,
    decode_answer,
    decode_object,
    encode_json,
    read_signed_headers,
    request_headers,
    response_headers,
    text,
    verify_request,
    verify_response,
)
from adapters.sim_core import SIM, SimCore, SimStyle
from adapters.sim_licenses import ConsentInvalid, ConsentUsed, fetch_with_consent
from adapters.sim_store import DueCallback
from adapters.sim_workflow import Deliver, Delivery, plan_for
from adapters.wire_errors import MalformedMessage
from adapters.wire_time import from_epoch_ms, rfc3339, to_epoch_ms
from gateway.config import PartnerConfig
from gateway.encoding import canonical_json, sha256_b64u
from gateway.errors import AuthError, TokenExpired, TokenNotYetValid
from gateway.exchange.model import StatusEvent

_SEEN_NONCES = "nonces"
MAX_REMEMBERED_NONCES = 20_000
Handler = Callable[[SimCore, PartnerConfig, dict[str, Any]], tuple[int, dict[str, Any] | None]]


def _app_id_of(partner: PartnerConfig) -> str:
    return str(partner.options.get("app_id", partner.id.removeprefix("cn-")))


def _our_app_id(core: SimCore) -> str:
    return core.cfg.id.removeprefix("cn-")


def _partner_for_app(core: SimCore, app_id: str) -> PartnerConfig | None:
    for p in core.cfg.partners:
        if _app_id_of(p) == app_id and p.hmac_key is not None:
            return p
    return None


def _signed_answer(
    core: SimCore,
    request: web.Request,
    code: int,
    data: dict[str, Any] | None,
    *,
    ts_ms: int | None = None,
) -> web.Response:
    """An answer signed over the caller's nonce when the caller is known, else unsigned."""
    ts = ts_ms if ts_ms is not None else int(core.clock() * 1000)
    body = answer_body(code, data, ts)
    headers = {"Content-Type": CONTENT_TYPE}
    app_id, nonce = request.headers.get("X-App-Id", ""), request.headers.get("X-Nonce", "")
    partner = _partner_for_app(core, app_id)
    if partner is not None and partner.hmac_key is not None and nonce:
        headers.update(
            response_headers(
                partner.hmac_key, request.method, request.path, app_id, ts, nonce, body
            )
        )
    return web.Response(body=body, headers=headers)


def _remember_nonce(core: SimCore, app_id: str, nonce: str, now: float) -> bool:
    seen: dict[str, float] = core.extra.setdefault(_SEEN_NONCES, {})
    if len(seen) > MAX_REMEMBERED_NONCES:
        for key in [k for k, t in seen.items() if t < now - 600]:
            del seen[key]
    key = f"{app_id}:{nonce}"
    if key in seen:
        return False
    seen[key] = now
    return True


def _license_status(
    core: SimCore, partner: PartnerConfig, body: dict[str, Any]
) -> tuple[int, dict[str, Any] | None]:
    lic = core.store.license(text(body, "certificateIdentifier"))
    if lic is None:
        return LICENSE_NOT_FOUND, None
    data: dict[str, Any] = {
        "certificateIdentifier": lic.identifier,
        "certStatusCode": LICENSE_STATUS_TO_CODE[lic.status],
    }
    if lic.status != "valid":
        data["statusChangeTime"] = int((lic.since or core.clock()) * 1000)
        data["statusChangeReason"] = lic.reason or ""
    return OK, data


def _fetch(
    core: SimCore, partner: PartnerConfig, body: dict[str, Any]
) -> tuple[int, dict[str, Any] | None]:
    try:
        jws = fetch_with_consent(core.store, core.cfg, text(body, "authCode"), core.clock())
    except ConsentUsed:
        return AUTH_CODE_USED, None
    except ConsentInvalid:
        return AUTH_CODE_INVALID, None
    return OK, {"certificateFile": jws}


def _submit(
    core: SimCore, partner: PartnerConfig, body: dict[str, Any]
) -> tuple[int, dict[str, Any] | None]:
    request_id = text(body, "projectNo")
    item = text(body, "itemCode")
    from_epoch_ms(body.get("applyTime"), field="applyTime")
    now = core.clock()
    outcome, stored = core.store.submit(
        request_id=request_id,
        digest=sha256_b64u(canonical_json(body)),
        partner=partner.id,
        item_code=item,
        ticket=f"TL{int(now * 1000)}{secrets.randbelow(1000):03d}",
        plan=plan_for(request_id),
        now=now,
        first_step_at=now + core.workflow.timing.step_seconds,
    )
    if outcome == "conflict":
        return PROJECT_CONFLICT, None
    core.workflow.wake()
    return OK, {
        "projectNo": stored.request_id,
        "projectStatus": REQUEST_STATUS_TO_CODE[stored.status],
        "acceptNo": stored.ticket,
    }


def _notify(
    core: SimCore, partner: PartnerConfig, body: dict[str, Any]
) -> tuple[int, dict[str, Any] | None]:
    status = REQUEST_STATUS_FROM_CODE.get(text(body, "projectStatus"))
    if status is None:
        return PARAMETER_INVALID, None
    at = rfc3339(from_epoch_ms(body.get("statusTime"), field="statusTime"))
    opinion = body.get("opinion")
    core.store.add_notice(
        partner.id,
        text(body, "projectNo"),
        status,
        at,
        opinion if isinstance(opinion, str) else "",
        core.clock(),
    )
    return OK, {"projectNo": text(body, "projectNo")}


def _ping(
    core: SimCore, partner: PartnerConfig, body: dict[str, Any]
) -> tuple[int, dict[str, Any] | None]:
    return OK, {"status": "UP"}


def endpoint(handle: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Signature, freshness and nonce checks around one platform operation."""

    async def handler(request: web.Request) -> web.Response:
        core = request.app[SIM]
        raw = await request.read()
        try:
            signed = read_signed_headers(request.headers)
        except AuthError:
            return _signed_answer(core, request, SIGNATURE_INVALID, None)
        partner = _partner_for_app(core, signed.app_id)
        if partner is None or partner.hmac_key is None:
            return _signed_answer(core, request, APP_UNKNOWN, None)
        try:
            verify_request(
                partner.hmac_key, request.method, request.path, request.headers, raw, core.clock()
            )
        except (TokenExpired, TokenNotYetValid):
            return _signed_answer(core, request, TIMESTAMP_INVALID, None)
        except AuthError:
            return _signed_answer(core, request, SIGNATURE_INVALID, None)
        if not _remember_nonce(core, signed.app_id, signed.nonce, core.clock()):
            return _signed_answer(core, request, NONCE_REPLAYED, None)
        try:
            body = decode_object(raw) if raw else {}
            code, data = handle(core, partner, body)
        except MalformedMessage:
            code, data = PARAMETER_INVALID, None
        return _signed_answer(core, request, code, data)

    return handler


def distort(mode: str, request: web.Request, response: web.Response) -> web.Response:
    core = request.app[SIM]
    body = response.body if isinstance(response.body, bytes) else b""
    if mode == "missing":
        return _signed_answer(core, request, OK, {})
    try:
        code, data = decode_answer(body)
    except MalformedMessage:
        return response
    if mode == "stale":
        return _signed_answer(core, request, code, data, ts_ms=int((core.clock() - 600) * 1000))
    forged = web.Response(body=body, headers=dict(response.headers))
    forged.headers["X-Signature"] = "A" * 43 + "="  # 32 bytes, not the MAC
    return forged


def make_deliver(core: SimCore) -> Deliver:
    """Push one status change as a signed JSON callback; check the node's signed answer."""

    async def deliver(due: DueCallback) -> Delivery:
        partner = core.cfg.partner(due.partner)
        if partner is None or partner.hmac_key is None or core.session is None:
            return "refused"
        event = StatusEvent(
            request_id=due.request_id,
            status=due.entry.status,  # type: ignore[arg-type]
            at=rfc3339(datetime.fromtimestamp(due.entry.at, UTC)),
            note=due.entry.note,
        )
        body = encode_json(callback_body(event, f"{due.request_id}:{due.entry.seq}"))
        url = core.callback_url(partner)
        path = f"/adapters/{core.cfg.id}/callback"
        nonce = secrets.token_hex(16)
        app_id = _our_app_id(core)
        ts = to_epoch_ms(core.now_dt())
        headers = request_headers(partner.hmac_key, "POST", path, app_id, ts, nonce, body)
        headers["Content-Type"] = CONTENT_TYPE
        try:
            async with core.session.post(url, data=body, headers=headers) as resp:
                answer = await resp.read()
                status, answer_headers = resp.status, resp.headers
        except (aiohttp.ClientError, OSError, TimeoutError):
            return "retry"
        if status != 200:
            return "refused" if 400 <= status < 500 and status != 429 else "retry"
        try:
            verify_response(
                partner.hmac_key,
                "POST",
                path,
                app_id,
                nonce,
                answer_headers,
                answer,
                core.clock(),
            )
            code, _ = decode_answer(answer)
        except (AuthError, MalformedMessage):
            return "retry"
        return "delivered" if code == OK else "retry"

    return deliver


def _routes() -> list[web.RouteDef]:
    return [
        web.post(LICENSE_STATUS_PATH, endpoint(_license_status)),
        web.post(LICENSE_FETCH_PATH, endpoint(_fetch)),
        web.post(SUBMIT_PATH, endpoint(_submit)),
        web.post(NOTIFY_PATH, endpoint(_notify)),
        web.get(PING_PATH, endpoint(_ping)),
    ]


STYLE = SimStyle(
    name="sharing_api",
    routes=_routes(),
    extra_faults=frozenset({"missing", "badsig", "stale"}),
    distort=distort,
    garbage_type=CONTENT_TYPE,
    make_deliver=make_deliver,
)
API_PREFIX = API_ROOT
