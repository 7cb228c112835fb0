"""Simulator of 株洲 Zhuzhou's gateway (``form_async``): signed forms in, JSON out.

``POST /zzzw/gateway.do`` dispatches on ``method``. Like the real servlet it answers
HTTP 200 with ``rtn_code`` for every refusal and serves JSON as ``text/html``. A
submission answers ``{"status": "pending", "ticket": ...}`` at once; the request is then
worked by ``SimWorkflow`` and its 流水记录 read with ``bj.query`` — Zhuzhou never calls
back, it is polled.

Fault mode beyond the common ones: ``missing`` (answers ``rtn_code`` 0 and nothing else).
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from adapters.form_async_format import (
    BUSY,
    CONSENT_INVALID,
    CONSENT_USED,
    DUPLICATE_CONFLICT,
    FETCH,
    GATEWAY_PATH,
    LICENSE_NOT_FOUND,
    LICENSE_STATUS_TO_CODE,
    METHOD_UNKNOWN,
    NOTIFY,
    OK,
    PARAMETER_INVALID,
    PING,
    QUERY,
    REQUEST_NOT_FOUND,
    REQUEST_STATUS_FROM_CODE,
    REQUEST_STATUS_TO_CODE,
    RESULT_TEXT,
    SIGNATURE_INVALID,
    STATUS_NAMES,
    STATUS_QUERY,
    SUBMIT,
    TIMESTAMP_INVALID,
    decode_form,
    json_field,
    required,
    verify_params,
)
from adapters.hmac_auth import FRESHNESS_SECONDS
from adapters.sim_core import SIM, SimCore, SimStyle
from adapters.sim_licenses import ConsentInvalid, ConsentUsed, fetch_with_consent
from adapters.sim_workflow import plan_for
from adapters.wire_errors import MalformedMessage
from adapters.wire_time import from_dashed_beijing, to_dashed_beijing
from gateway.encoding import canonical_json, sha256_b64u
from gateway.errors import AuthError

#: The servlet container's content type for every answer (a quirk worth keeping).
ANSWER_TYPE = "text/html;charset=UTF-8"


def _answer(code: str, **data: Any) -> web.Response:
    body = {"rtn_code": code, "rtn_msg": RESULT_TEXT.get(code, ""), **data}
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return web.Response(body=text.encode("utf-8"), headers={"Content-Type": ANSWER_TYPE})


def _dashed(at: float) -> str:
    return to_dashed_beijing(datetime.fromtimestamp(at, UTC))


def _status_query(core: SimCore, params: dict[str, str]) -> web.Response:
    lic = core.store.license(required(params, "zzbh"))
    if lic is None:
        return _answer(LICENSE_NOT_FOUND)
    extra: dict[str, str] = {}
    if lic.status != "valid":
        extra = {"bgsj": _dashed(lic.since or core.clock()), "bgyy": lic.reason or ""}
    return _answer(OK, zzbh=lic.identifier, zzzt=LICENSE_STATUS_TO_CODE[lic.status], **extra)


def _fetch(core: SimCore, params: dict[str, str]) -> web.Response:
    try:
        jws = fetch_with_consent(core.store, core.cfg, required(params, "sqm"), core.clock())
    except ConsentUsed:
        return _answer(CONSENT_USED)
    except ConsentInvalid:
        return _answer(CONSENT_INVALID)
    return _answer(OK, zzwj=jws)


def _submit(core: SimCore, partner_id: str, params: dict[str, str]) -> web.Response:
    request_id = required(params, "sqbh")
    item_code = required(params, "sxbm")
    fields = {
        "sqbh": request_id,
        "sxbm": item_code,
        "sqr": json_field(params, "sqr"),
        "zzbh_list": params.get("zzbh_list", ""),
        "bdsj": json_field(params, "bdsj"),
        "sqsj": required(params, "sqsj"),
    }
    from_dashed_beijing(params["sqsj"], field="sqsj")
    now = core.clock()
    day = to_dashed_beijing(core.now_dt())[:10].replace("-", "")
    outcome, stored = core.store.submit(
        request_id=request_id,
        digest=sha256_b64u(canonical_json(fields)),
        partner=partner_id,
        item_code=item_code,
        ticket=f"ZZ{day}{secrets.randbelow(10**8):08d}",
        plan=plan_for(request_id),
        now=now,
        first_step_at=now + core.workflow.timing.step_seconds,
    )
    if outcome == "conflict":
        return _answer(DUPLICATE_CONFLICT)
    core.workflow.wake()
    return _answer(OK, status="pending", ticket=stored.ticket)


def _query(core: SimCore, params: dict[str, str]) -> web.Response:
    found = core.store.request(params.get("sqbh") or required(params, "ticket"))
    if found is None:
        return _answer(REQUEST_NOT_FOUND)
    current = REQUEST_STATUS_TO_CODE[found.status]
    return _answer(
        OK,
        sqbh=found.request_id,
        ticket=found.ticket,
        blzt=current,
        blztmc=STATUS_NAMES[current],
        lsjl=[
            {"blzt": REQUEST_STATUS_TO_CODE[e.status], "blsj": _dashed(e.at), "blyj": e.note}
            for e in found.history
        ],
    )


def _notify(core: SimCore, partner_id: str, params: dict[str, str]) -> web.Response:
    status = REQUEST_STATUS_FROM_CODE.get(required(params, "blzt"))
    if status is None:
        return _answer(PARAMETER_INVALID)
    core.store.add_notice(
        partner_id,
        required(params, "sqbh"),
        status,
        required(params, "blsj"),
        params.get("blyj", ""),
        core.clock(),
    )
    return _answer(OK)


async def gateway(request: web.Request) -> web.Response:
    """The one endpoint of Zhuzhou's gateway."""
    core = request.app[SIM]
    try:
        params = decode_form(await request.read())
        partner = core.partner_by_division(required(params, "app_id"))
        method = required(params, "method")
        sent = from_dashed_beijing(required(params, "timestamp"), field="timestamp")
    except MalformedMessage:
        return _answer(PARAMETER_INVALID)
    if partner is None or partner.hmac_key is None:
        return _answer(SIGNATURE_INVALID)
    try:
        verify_params(partner.hmac_key, params)
    except AuthError:
        return _answer(SIGNATURE_INVALID)
    if abs(sent.timestamp() - core.clock()) > FRESHNESS_SECONDS:
        return _answer(TIMESTAMP_INVALID)
    try:
        if method == STATUS_QUERY:
            return _status_query(core, params)
        if method == FETCH:
            return _fetch(core, params)
        if method == SUBMIT:
            return _submit(core, partner.id, params)
        if method == QUERY:
            return _query(core, params)
        if method == NOTIFY:
            return _notify(core, partner.id, params)
        if method == PING:
            return _answer(OK)
    except MalformedMessage:
        return _answer(PARAMETER_INVALID)
    return _answer(METHOD_UNKNOWN)


def distort(mode: str, request: web.Request, response: web.Response) -> web.Response:
    """``missing``: success with none of the fields the method promises."""
    del request, response
    if mode == "missing":
        return _answer(OK)
    return _answer(BUSY)


STYLE = SimStyle(
    name="form_async",
    routes=[web.post(GATEWAY_PATH, gateway)],
    extra_faults=frozenset({"missing"}),
    distort=distort,
    garbage_type=ANSWER_TYPE,
    make_deliver=None,
)
API_PREFIX = GATEWAY_PATH
