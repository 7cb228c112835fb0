"""``xml_envelope``: 龙岩 Longyan's legacy exchange, GB18030 XML envelopes over HTTP.

Every call is one ``POST`` of an envelope (``adapters.xml_envelope_format``) to the
partner's exchange path, signed with ``X-LY-Sign: hex(HMAC-SHA256(secret, body))``
under the partner's ``hmac.key``; the envelope's ``SEND_TIME`` and ``XTBH`` give
freshness and a message id. Replies are not signed (the partner signs only what it
sends on its own initiative); they must echo our ``XTBH`` and business class.

Status changes of requests Longyan handles come back as ``KSTB0202`` envelopes pushed
to ``POST /adapters/<partner id>/callback`` on this node, signed the same way.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import web

from adapters.base import EventSink
from adapters.callback_guard import (
    MAX_CALLBACK_BYTES,
    admit_partner,
    checked_request_id,
    route_name,
)
from adapters.hmac_auth import hmac_sha256, require_hmac_key, verify_fresh, verify_mac
from adapters.legacy_http import LegacyHttp, timeout_from_options
from adapters.wire_errors import MalformedMessage, ResultCodes, raise_for_result, upstream_malformed
from adapters.wire_time import from_compact_beijing, parse_rfc3339, rfc3339, to_compact_beijing
from adapters.xml_envelope_format import (
    CONSENT_INVALID,
    CONSENT_USED,
    CONTENT_TYPE,
    HEARTBEAT,
    LICENSE_FETCH,
    LICENSE_NOT_FOUND,
    LICENSE_STATUS,
    LICENSE_STATUS_FROM_CODE,
    OK,
    REQUEST_NOT_FOUND,
    REQUEST_STATUS_FROM_CODE,
    REQUEST_STATUS_TO_CODE,
    RESULT_MEANING,
    STATUS_NOTIFY,
    SUBMIT,
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
from gateway.config import NodeConfig, PartnerConfig
from gateway.errors import (
    BodyTooLarge,
    PartnerUnknown,
    TokenAudience,
    TokenMissing,
    TokenSignature,
    UpstreamError,
)
from gateway.exchange.model import StatusEvent, Submission, SubmissionAck
from gateway.http.context import CTX
from gateway.http.openapi import document
from gateway.licenses.status import LicenseStatus
from gateway.tokens import SigningKey

SIGN_HEADER = "X-LY-Sign"
DEFAULT_PATH = "/lyzwfw/exchange"
_CODES = ResultCodes(
    ok=OK,
    not_found=frozenset({LICENSE_NOT_FOUND, REQUEST_NOT_FOUND}),
    consent_used=CONSENT_USED,
    consent_invalid=CONSENT_INVALID,
    meaning=RESULT_MEANING,
)


def sign_body(key: bytes, body: bytes) -> str:
    return hmac_sha256(key, body).hex()


def verify_body_signature(key: bytes, body: bytes, header: str | None) -> None:
    """``token_missing`` without ``X-LY-Sign``; ``token_signature`` unless it verifies."""
    if not header:
        raise TokenMissing(f"no {SIGN_HEADER} header")
    try:
        given = bytes.fromhex(header.strip())
    except ValueError:
        raise TokenSignature(f"{SIGN_HEADER} is not hex") from None
    verify_mac(key, body, given)


def new_collab_no(sender_code: str, now: datetime) -> str:
    """协同编号: sender, Beijing send time and 48 random bits, unique per message."""
    return f"{sender_code}-{to_compact_beijing(now)}-{secrets.token_hex(6)}"


def event_from_record(rec: Record) -> StatusEvent:
    """One ``KSTB0202`` record as a ``StatusEvent``; ``MalformedMessage`` if unreadable."""
    code = rec.text("BJZT")
    status = REQUEST_STATUS_FROM_CODE.get(code)
    if status is None:
        raise MalformedMessage("BJZT is not a known 办件状态 code", field="BJZT")
    return StatusEvent(
        request_id=checked_request_id(rec.text("SBLSH"), "SBLSH"),
        status=status,  # type: ignore[arg-type]
        at=rfc3339(from_compact_beijing(rec.text("ZTSJ"), field="ZTSJ")),
        note=rec.text("BLYJ", required=False),
        meta={"partner_status": code},
    )


def event_record(event: StatusEvent) -> Record:
    """A ``StatusEvent`` as a ``KSTB0202`` record (callbacks and ``send_event``)."""
    return Record(
        code=OK,
        msg="",
        data={
            "SBLSH": event.request_id,
            "BJZT": REQUEST_STATUS_TO_CODE[event.status],
            "ZTSJ": to_compact_beijing(parse_rfc3339(event.at, field="at")),
            "BLYJ": event.note,
        },
    )


def submission_record(sub: Submission) -> Record:
    return Record(
        code=OK,
        msg="",
        data={
            "SBLSH": sub.request_id,
            "SXBM": sub.item_code,
            "SQR": dict(sub.applicant),
            "ZZLB": list(sub.licenses),
            "BDSJ": dict(sub.form),
            "SQSJ": to_compact_beijing(parse_rfc3339(sub.submitted_at, field="submitted_at")),
        },
    )


class XmlEnvelopeAdapter:
    """Longyan, reached with signed GB18030 XML envelopes."""

    polls = False

    def __init__(
        self,
        node: NodeConfig,
        partner: PartnerConfig,
        token_key: SigningKey,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        del token_key  # Longyan does not take request tokens
        self.partner = partner
        self._key = require_hmac_key(node, partner)
        self._our_code = division_code(node.id)
        self._our_name = node.name
        self._their_code = division_code(partner.id)
        path = partner.options.get("path", DEFAULT_PATH)
        self._path = path if isinstance(path, str) and path.startswith("/") else DEFAULT_PATH
        self._clock = clock
        self._http = LegacyHttp(partner.id, partner.url, timeout_from_options(partner.options))

    async def _call(self, business_class: str, data: dict[str, FieldValue], what: str) -> Record:
        """Send one envelope and return the reply's record if its code is ``0000``."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        header = Header(
            version=VERSION,
            sender_code=self._our_code,
            sender_name=self._our_name,
            receiver_code=self._their_code,
            receiver_name=self.partner.name,
            business_class=business_class,
            collab_no=new_collab_no(self._our_code, now),
            send_time=now,
        )
        try:
            body = encode_envelope(Envelope(header, (Record(code=OK, msg="请求", data=data),)))
        except MalformedMessage as exc:
            raise UpstreamError(
                f"the {what} cannot be written for {self.partner.id}: {exc.detail}"
            ) from exc
        reply = await self._http.request(
            "POST",
            self._path,
            body=body,
            headers={"Content-Type": CONTENT_TYPE, SIGN_HEADER: sign_body(self._key, body)},
        )
        if reply.status != 200:
            raise UpstreamError(f"{self.partner.id} answered the {what} with HTTP {reply.status}")
        try:
            env = decode_envelope(reply.body, reply.charset)
        except MalformedMessage as exc:
            raise upstream_malformed(self.partner.id, what, exc) from exc
        h = env.header
        if (
            h.collab_no != header.collab_no
            or h.business_class != business_class
            or h.sender_code != self._their_code
        ):
            raise UpstreamError(f"{self.partner.id} answered the {what} with another message")
        rec = env.first
        raise_for_result(self.partner.id, what, rec.code, _CODES)
        return rec

    async def license_status(self, identifier: str) -> LicenseStatus:
        rec = await self._call(LICENSE_STATUS, {"ZZBS": identifier}, "license status query")
        try:
            if rec.text("ZZBS") != identifier:
                raise MalformedMessage("ZZBS does not echo the identifier asked", field="ZZBS")
            status = LICENSE_STATUS_FROM_CODE.get(rec.text("ZZZT"))
            if status is None:
                raise MalformedMessage("ZZZT is not a known 证照状态 code", field="ZZZT")
            since_text = rec.text("ZTBGSJ", required=False)
            since = (
                rfc3339(from_compact_beijing(since_text, field="ZTBGSJ")) if since_text else None
            )
            reason = rec.text("ZTBGYY", required=False) or None
        except MalformedMessage as exc:
            raise upstream_malformed(self.partner.id, "license status query", exc) from exc
        return LicenseStatus(
            identifier=identifier,
            status=status,  # type: ignore[arg-type]
            since=since if status != "valid" else None,
            reason=reason if status != "valid" else None,
        )

    async def license_fetch(self, qr_token: str, *, purpose: str | None = None) -> str:
        rec = await self._call(
            LICENSE_FETCH, {"SQM": qr_token, "YZSY": purpose or ""}, "license fetch"
        )
        try:
            return rec.text("ZZWJ")
        except MalformedMessage as exc:
            raise upstream_malformed(self.partner.id, "license fetch", exc) from exc

    async def submit_request(self, submission: Submission) -> SubmissionAck:
        try:
            record = submission_record(submission)
        except MalformedMessage as exc:
            raise UpstreamError(
                f"the submission cannot be written for {self.partner.id}: {exc.detail}"
            ) from exc
        rec = await self._call(SUBMIT, dict(record.data), "service request submission")
        try:
            if rec.text("SBLSH").lower() != submission.request_id.lower():
                raise MalformedMessage("SBLSH does not echo the request id", field="SBLSH")
            status = REQUEST_STATUS_FROM_CODE.get(rec.text("BJZT"))
            if status is None:
                raise MalformedMessage("BJZT is not a known 办件状态 code", field="BJZT")
            ref = rec.text("BJBH", required=False) or None
        except MalformedMessage as exc:
            raise upstream_malformed(self.partner.id, "service request submission", exc) from exc
        return SubmissionAck(
            request_id=submission.request_id,
            status=status,  # type: ignore[arg-type]
            partner_ref=ref,
        )

    async def poll_request(self, request_id: str) -> list[StatusEvent]:
        return []  # Longyan pushes KSTB0202 callbacks; there is nothing to poll

    async def send_event(self, accepting_node: str, event: StatusEvent) -> None:
        try:
            record = event_record(event)
        except MalformedMessage as exc:
            raise UpstreamError(
                f"the status event cannot be written for {self.partner.id}: {exc.detail}"
            ) from exc
        await self._call(STATUS_NOTIFY, dict(record.data), "request status event")

    async def health(self) -> None:
        await self._call(HEARTBEAT, {}, "heartbeat")

    async def close(self) -> None:
        await self._http.close()


def callback_routes(
    node: NodeConfig,
    partner: PartnerConfig,
    sink: EventSink,
    *,
    clock: Callable[[], float] = time.time,
) -> list[web.RouteDef]:
    """``POST /adapters/<partner>/callback``: Longyan's ``KSTB0202`` status envelopes."""
    key = require_hmac_key(node, partner)
    our_code, their_code = division_code(node.id), division_code(partner.id)

    async def callback(request: web.Request) -> web.Response:
        ctx = request[CTX]
        ctx.event = "service_request.event"
        ctx.meta["style"] = "xml_envelope"
        body = ctx.body
        if len(body) > MAX_CALLBACK_BYTES:
            raise BodyTooLarge(f"a callback is at most {MAX_CALLBACK_BYTES} bytes")
        verify_body_signature(key, body, request.headers.get(SIGN_HEADER))
        env = decode_envelope(body, request.charset)
        h = env.header
        if h.sender_code != their_code:
            raise PartnerUnknown(f"the envelope is not from {partner.id}")
        if h.receiver_code != our_code:
            raise TokenAudience(f"the envelope is not addressed to {node.id}")
        if h.business_class != STATUS_NOTIFY:
            raise MalformedMessage(f"BUSI_CODE must be {STATUS_NOTIFY} here", field="BUSI_CODE")
        verify_fresh(h.send_time.timestamp(), clock())
        await admit_partner(request, partner, h.collab_no, h.send_time.timestamp())
        events = [event_from_record(rec) for rec in env.records]
        ctx.meta["events"] = [{"request_id": e.request_id, "status": e.status} for e in events]
        for event in events:
            await sink(partner.id, event)
        now = datetime.fromtimestamp(clock(), UTC)
        ack = reply_to(h, tuple(result(OK, {"SBLSH": e.request_id}) for e in events), send_time=now)
        return web.Response(body=encode_envelope(ack), headers={"Content-Type": CONTENT_TYPE})

    path = f"/adapters/{partner.id}/callback"
    document(
        "post",
        path,
        {
            "summary": f"Status callbacks from {partner.id} (Longyan-style XML envelope, KSTB0202)",
            "description": "GB18030 XML envelope signed with X-LY-Sign (hex HMAC-SHA256 of the "
            "body under the partner's shared secret); see docs/adapters.md.",
            "parameters": [
                {
                    "name": SIGN_HEADER,
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                }
            ],
            "requestBody": {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}},
            "responses": {"200": {"description": "Ack envelope (GB18030 XML)"}},
        },
    )
    return [web.post(path, callback, name=route_name(partner.id))]
