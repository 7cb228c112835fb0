"""Simulator of 龙岩 Longyan's exchange (``xml_envelope``): GB18030 envelopes, signed.

It answers ``POST /lyzwfw/exchange`` the way the real system does: every refusal is an
envelope with HTTP 200 and a result code (``2001`` bad signature, ``2003`` stale send
time, ``1001`` no such license, ...), except a body it cannot read at all (HTTP 400,
plain text). Requests it handles are worked by ``SimWorkflow`` and every status change
is pushed to the accepting node as a signed ``KSTB0202`` envelope.

Fault modes beyond the common ones: ``charset`` (the reply is UTF-8 and says so),
``missing`` (the reply's record has no ``DATA``).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import aiohttp
from aiohttp import web

from adapters.hmac_auth import FRESHNESS_SECONDS
from adapters.sim_core import SIM, SimCore, SimStyle
from adapters.sim_licenses import ConsentInvalid, ConsentUsed, fetch_with_consent
from adapters.sim_store import DueCallback
from adapters.sim_workflow import Deliver, Delivery, plan_for
from adapters.wire_errors import MalformedMessage
from adapters.wire_time import rfc3339, to_compact_beijing
from adapters.xml_envelope import (
    DEFAULT_PATH,
    SIGN_HEADER,
    event_record,
    new_collab_no,
    sign_body,
    verify_body_signature,
)
from adapters.xml_envelope_format import (
    BUSINESS_UNKNOWN,
    CHARSET,
    CONSENT_INVALID,
    CONSENT_USED,
    CONTENT_TYPE,
    DUPLICATE_CONFLICT,
    FORMAT_INVALID,
    HEARTBEAT,
    LICENSE_FETCH,
    LICENSE_NOT_FOUND,
    LICENSE_STATUS,
    LICENSE_STATUS_TO_CODE,
    OK,
    REQUEST_STATUS_FROM_CODE,
    REQUEST_STATUS_TO_CODE,
    SIGNATURE_INVALID,
    STATUS_NOTIFY,
    SUBMIT,
    TIME_INVALID,
    VERSION,
    Envelope,
    FieldValue,
    Header,
    Record,
    decode_envelope,
    division_code,
    encode_envelope,
    reply_to,
    result,
)
from gateway.encoding import canonical_json, sha256_b64u
from gateway.errors import AuthError
from gateway.exchange.model import StatusEvent


def _answer(core: SimCore, request: Header, record: Record) -> web.Response:
    env = reply_to(request, (record,), send_time=core.now_dt())
    return web.Response(body=encode_envelope(env), headers={"Content-Type": CONTENT_TYPE})


def _since(core: SimCore, at: float | None) -> str:
    return to_compact_beijing(datetime.fromtimestamp(at, UTC)) if at else ""


def _license_status(core: SimCore, rec: Record) -> Record:
    lic = core.store.license(rec.text("ZZBS"))
    if lic is None:
        return result(LICENSE_NOT_FOUND)
    data: dict[str, FieldValue] = {
        "ZZBS": lic.identifier,
        "ZZZT": LICENSE_STATUS_TO_CODE[lic.status],
    }
    if lic.status != "valid":
        data["ZTBGSJ"] = _since(core, lic.since)
        data["ZTBGYY"] = lic.reason or ""
    return result(OK, data)


def _fetch(core: SimCore, rec: Record) -> Record:
    try:
        jws = fetch_with_consent(core.store, core.cfg, rec.text("SQM"), core.clock())
    except ConsentUsed:
        return result(CONSENT_USED)
    except ConsentInvalid:
        return result(CONSENT_INVALID)
    return result(OK, {"ZZWJ": jws})


def _submit(core: SimCore, partner_id: str, rec: Record) -> Record:
    request_id = rec.text("SBLSH")
    fields = {k: rec.data.get(k, "") for k in ("SBLSH", "SXBM", "SQR", "ZZLB", "BDSJ", "SQSJ")}
    rec.text("SQSJ")  # required, though only the digest keeps it
    now = core.clock()
    outcome, stored = core.store.submit(
        request_id=request_id,
        digest=sha256_b64u(canonical_json(fields)),
        partner=partner_id,
        item_code=rec.text("SXBM"),
        ticket=f"LY{to_compact_beijing(core.now_dt())}{secrets.randbelow(10**6):06d}",
        plan=plan_for(request_id),
        now=now,
        first_step_at=now + core.workflow.timing.step_seconds,
    )
    if outcome == "conflict":
        return result(DUPLICATE_CONFLICT)
    core.workflow.wake()
    return result(
        OK,
        {
            "SBLSH": stored.request_id,
            "BJZT": REQUEST_STATUS_TO_CODE[stored.status],
            "BJBH": stored.ticket,
        },
    )


def _notice(core: SimCore, partner_id: str, rec: Record) -> Record:
    code = rec.text("BJZT")
    status = REQUEST_STATUS_FROM_CODE.get(code)
    if status is None:
        raise MalformedMessage("BJZT is not a known code", field="BJZT")
    core.store.add_notice(
        partner_id,
        rec.text("SBLSH"),
        status,
        rec.text("ZTSJ"),
        rec.text("BLYJ", required=False),
        core.clock(),
    )
    return result(OK, {"SBLSH": rec.text("SBLSH")})


async def exchange(request: web.Request) -> web.Response:
    """The one endpoint of Longyan's exchange."""
    core = request.app[SIM]
    body = await request.read()
    try:
        env = decode_envelope(body, request.charset)
    except MalformedMessage:
        return web.Response(status=400, text="报文格式错误", charset="utf-8")
    h = env.header
    partner = core.partner_by_division(h.sender_code)
    if partner is None or partner.hmac_key is None:
        return _answer(core, h, result(SIGNATURE_INVALID))
    try:
        verify_body_signature(partner.hmac_key, body, request.headers.get(SIGN_HEADER))
    except AuthError:
        return _answer(core, h, result(SIGNATURE_INVALID))
    if abs(h.send_time.timestamp() - core.clock()) > FRESHNESS_SECONDS:
        return _answer(core, h, result(TIME_INVALID))
    if h.receiver_code != division_code(core.cfg.id):
        return _answer(core, h, result(FORMAT_INVALID))
    rec = env.first
    try:
        if h.business_class == LICENSE_STATUS:
            answer = _license_status(core, rec)
        elif h.business_class == LICENSE_FETCH:
            answer = _fetch(core, rec)
        elif h.business_class == SUBMIT:
            answer = _submit(core, partner.id, rec)
        elif h.business_class == STATUS_NOTIFY:
            answer = _notice(core, partner.id, rec)
        elif h.business_class == HEARTBEAT:
            answer = result(OK)
        else:
            answer = result(BUSINESS_UNKNOWN)
    except MalformedMessage:
        answer = result(FORMAT_INVALID)
    return _answer(core, h, answer)


def distort(mode: str, request: web.Request, response: web.Response) -> web.Response:
    """``charset``: re-encode the reply as UTF-8; ``missing``: drop the record's DATA."""
    body = response.body if isinstance(response.body, bytes) else b""
    try:
        env = decode_envelope(body, CHARSET)
    except MalformedMessage:
        return response
    if mode == "charset":
        text = body.decode(CHARSET).replace(f'encoding="{CHARSET}"', 'encoding="UTF-8"', 1)
        return web.Response(
            body=text.encode("utf-8"), headers={"Content-Type": "text/xml; charset=UTF-8"}
        )
    stripped = tuple(Record(code=r.code, msg=r.msg) for r in env.records)
    return web.Response(
        body=encode_envelope(Envelope(env.header, stripped)),
        headers={"Content-Type": CONTENT_TYPE},
    )


def make_deliver(core: SimCore) -> Deliver:
    """Push one status change to the accepting node as a signed ``KSTB0202`` envelope."""

    async def deliver(due: DueCallback) -> Delivery:
        partner = core.cfg.partner(due.partner)
        if partner is None or partner.hmac_key is None or core.session is None:
            return "refused"
        now = core.now_dt()
        event = StatusEvent(
            request_id=due.request_id,
            status=due.entry.status,  # type: ignore[arg-type]
            at=rfc3339(datetime.fromtimestamp(due.entry.at, UTC)),
            note=due.entry.note,
        )
        ours = division_code(core.cfg.id)
        header = Header(
            version=VERSION,
            sender_code=ours,
            sender_name=core.cfg.name,
            receiver_code=division_code(partner.id),
            receiver_name=partner.name,
            business_class=STATUS_NOTIFY,
            collab_no=new_collab_no(ours, now),  # a fresh message id for every attempt
            send_time=now,
        )
        body = encode_envelope(Envelope(header, (event_record(event),)))
        headers = {"Content-Type": CONTENT_TYPE, SIGN_HEADER: sign_body(partner.hmac_key, body)}
        try:
            async with core.session.post(
                core.callback_url(partner), data=body, headers=headers
            ) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, OSError, TimeoutError):
            return "retry"
        if status == 200:
            return "delivered"
        return "refused" if 400 <= status < 500 and status != 429 else "retry"

    return deliver


STYLE = SimStyle(
    name="xml_envelope",
    routes=[web.post(DEFAULT_PATH, exchange)],
    extra_faults=frozenset({"charset", "missing"}),
    distort=distort,
    garbage_type=CONTENT_TYPE,
    make_deliver=make_deliver,
)
API_PREFIX = DEFAULT_PATH
