"""``sharing_api``: 通辽 Tongliao on its provincial sharing platform — JSON with the
national sharing-API field names, epoch milliseconds, every call and answer HMAC-signed.

See ``adapters.sharing_api_format`` for signing. An answer whose signature does not
verify, is stale, or is not bound to our nonce is treated as no answer at all
(``upstream_unavailable``), because believing an unauthenticated "valid" would defeat
the point of asking. Status changes come back as signed JSON callbacks to
``POST /adapters/<partner id>/callback``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from adapters.base import EventSink
from adapters.callback_guard import (
    MAX_CALLBACK_BYTES,
    admit_partner,
    checked_request_id,
    route_name,
)
from adapters.hmac_auth import require_hmac_key
from adapters.legacy_http import LegacyHttp, timeout_from_options
from adapters.sharing_api_format import (
    AUTH_CODE_INVALID,
    AUTH_CODE_USED,
    CONTENT_TYPE,
    LICENSE_FETCH_PATH,
    LICENSE_STATUS_FROM_CODE,
    LICENSE_STATUS_PATH,
    NOT_FOUND_CODES,
    NOTIFY_PATH,
    OK,
    PING_PATH,
    REQUEST_STATUS_FROM_CODE,
    REQUEST_STATUS_TO_CODE,
    RESULT_MEANING,
    SUBMIT_PATH,
    answer_body,
    decode_answer,
    decode_object,
    encode_json,
    request_headers,
    response_headers,
    text,
    verify_request,
    verify_response,
)
from adapters.wire_errors import MalformedMessage, ResultCodes, raise_for_result, upstream_malformed
from adapters.wire_time import from_epoch_ms, parse_rfc3339, rfc3339, to_epoch_ms
from gateway.config import NodeConfig, PartnerConfig
from gateway.errors import AuthError, BodyTooLarge, PartnerUnknown, UpstreamError
from gateway.exchange.model import StatusEvent, Submission, SubmissionAck
from gateway.http.context import CTX
from gateway.http.openapi import document, json_body
from gateway.licenses.status import LicenseStatus
from gateway.tokens import SigningKey


def app_ids(node: NodeConfig, partner: PartnerConfig) -> tuple[str, str]:
    """``(ours, theirs)``: options ``app_id`` / ``partner_app_id``, else the division codes."""
    ours = partner.options.get("app_id", node.id.removeprefix("cn-"))
    theirs = partner.options.get("partner_app_id", partner.id.removeprefix("cn-"))
    return str(ours), str(theirs)


def event_from_callback(body: dict[str, Any]) -> StatusEvent:
    """A status callback (``projectNo``, ``projectStatus``, ``statusTime``, ``opinion``)."""
    code = text(body, "projectStatus")
    status = REQUEST_STATUS_FROM_CODE.get(code)
    if status is None:
        raise MalformedMessage("projectStatus is not a known status", field="projectStatus")
    opinion = body.get("opinion")
    return StatusEvent(
        request_id=checked_request_id(text(body, "projectNo"), "projectNo"),
        status=status,  # type: ignore[arg-type]
        at=rfc3339(from_epoch_ms(body.get("statusTime"), field="statusTime")),
        note=opinion if isinstance(opinion, str) else "",
        meta={"partner_status": code},
    )


def callback_body(event: StatusEvent, event_id: str) -> dict[str, Any]:
    """A ``StatusEvent`` in the platform's field names (callbacks and ``send_event``)."""
    return {
        "eventId": event_id,
        "projectNo": event.request_id,
        "projectStatus": REQUEST_STATUS_TO_CODE[event.status],
        "statusTime": to_epoch_ms(parse_rfc3339(event.at, field="at")),
        "opinion": event.note,
    }


def submission_body(sub: Submission) -> dict[str, Any]:
    """A submission with the national field names; the holder is the applicant."""
    applicant = dict(sub.applicant)
    holder_code = applicant.get("id")
    holder_type = applicant.get("id_type", "111")
    return {
        "projectNo": sub.request_id,
        "itemCode": sub.item_code,
        "applyTime": to_epoch_ms(parse_rfc3339(sub.submitted_at, field="submitted_at")),
        "applicant": applicant,
        "holderCode": holder_code if isinstance(holder_code, str) else "",
        "holderTypeCode": holder_type if isinstance(holder_type, str) else "111",
        "certificateIdentifiers": list(sub.licenses),
        "formData": dict(sub.form),
    }


_CODES = ResultCodes(
    ok=OK,
    not_found=NOT_FOUND_CODES,
    consent_used=AUTH_CODE_USED,
    consent_invalid=AUTH_CODE_INVALID,
    meaning=RESULT_MEANING,
)


class SharingApiAdapter:
    """Tongliao, reached with HMAC-signed JSON on the sharing platform."""

    polls = False

    def __init__(
        self,
        node: NodeConfig,
        partner: PartnerConfig,
        token_key: SigningKey,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        del token_key  # the platform signs with the shared secret, not request tokens
        self.partner = partner
        self._key = require_hmac_key(node, partner)
        self._app_id, _ = app_ids(node, partner)
        self._clock = clock
        self._http = LegacyHttp(partner.id, partner.url, timeout_from_options(partner.options))

    async def _call(self, method: str, path: str, payload: Any, what: str) -> dict[str, Any]:
        """One signed call; the answer's ``data`` if it verifies and its code is 0."""
        body = encode_json(payload) if payload is not None else b""
        nonce = secrets.token_hex(16)
        ts = int(self._clock() * 1000)
        headers = request_headers(self._key, method, path, self._app_id, ts, nonce, body)
        if payload is not None:
            headers["Content-Type"] = CONTENT_TYPE
        reply = await self._http.request(method, path, body=body or None, headers=headers)
        if reply.status != 200:
            raise UpstreamError(f"{self.partner.id} answered the {what} with HTTP {reply.status}")
        try:
            verify_response(
                self._key,
                method,
                path,
                self._app_id,
                nonce,
                reply.headers,
                reply.body,
                self._clock(),
            )
        except AuthError as exc:
            raise UpstreamError(
                f"{self.partner.id} answered the {what} without a valid signature ({exc.code}: "
                f"{exc.detail})"
            ) from exc
        try:
            code, data = decode_answer(reply.body)
        except MalformedMessage as exc:
            raise upstream_malformed(self.partner.id, what, exc) from exc
        raise_for_result(self.partner.id, what, code, _CODES)
        return data

    async def license_status(self, identifier: str) -> LicenseStatus:
        what = "license status query"
        data = await self._call(
            "POST", LICENSE_STATUS_PATH, {"certificateIdentifier": identifier}, what
        )
        try:
            if text(data, "certificateIdentifier") != identifier:
                raise MalformedMessage(
                    "certificateIdentifier does not echo the identifier asked",
                    field="certificateIdentifier",
                )
            status = LICENSE_STATUS_FROM_CODE.get(text(data, "certStatusCode"))
            if status is None:
                raise MalformedMessage("certStatusCode is not known", field="certStatusCode")
            since = reason = None
            if status != "valid":
                if data.get("statusChangeTime") is not None:
                    changed = from_epoch_ms(data["statusChangeTime"], field="statusChangeTime")
                    since = rfc3339(changed)
                reason = text(data, "statusChangeReason", required=False) or None
        except MalformedMessage as exc:
            raise upstream_malformed(self.partner.id, what, exc) from exc
        return LicenseStatus(
            identifier=identifier,
            status=status,  # type: ignore[arg-type]
            since=since,
            reason=reason,
        )

    async def license_fetch(self, qr_token: str, *, purpose: str | None = None) -> str:
        payload = {"authCode": qr_token, "useCause": purpose or ""}
        data = await self._call("POST", LICENSE_FETCH_PATH, payload, "license fetch")
        try:
            return text(data, "certificateFile")
        except MalformedMessage as exc:
            raise upstream_malformed(self.partner.id, "license fetch", exc) from exc

    async def submit_request(self, submission: Submission) -> SubmissionAck:
        what = "service request submission"
        try:
            payload = submission_body(submission)
        except MalformedMessage as exc:
            raise UpstreamError(f"the submission cannot be written: {exc.detail}") from exc
        data = await self._call("POST", SUBMIT_PATH, payload, what)
        try:
            if text(data, "projectNo").lower() != submission.request_id.lower():
                raise MalformedMessage("projectNo does not echo the request id", field="projectNo")
            status = REQUEST_STATUS_FROM_CODE.get(text(data, "projectStatus"))
            if status is None:
                raise MalformedMessage("projectStatus is not known", field="projectStatus")
            ref = text(data, "acceptNo", required=False) or None
        except MalformedMessage as exc:
            raise upstream_malformed(self.partner.id, what, exc) from exc
        return SubmissionAck(
            request_id=submission.request_id,
            status=status,  # type: ignore[arg-type]
            partner_ref=ref,
        )

    async def poll_request(self, request_id: str) -> list[StatusEvent]:
        return []  # the platform pushes signed callbacks; there is nothing to poll

    async def send_event(self, accepting_node: str, event: StatusEvent) -> None:
        try:
            payload = callback_body(event, secrets.token_hex(16))
        except MalformedMessage as exc:
            raise UpstreamError(f"the status event cannot be written: {exc.detail}") from exc
        await self._call("POST", NOTIFY_PATH, payload, "request status event")

    async def health(self) -> None:
        await self._call("GET", PING_PATH, None, "heartbeat")

    async def close(self) -> None:
        await self._http.close()


def callback_routes(
    node: NodeConfig,
    partner: PartnerConfig,
    sink: EventSink,
    *,
    clock: Callable[[], float] = time.time,
) -> list[web.RouteDef]:
    """``POST /adapters/<partner>/callback``: the platform's signed status callbacks."""
    key = require_hmac_key(node, partner)
    _, their_app_id = app_ids(node, partner)
    path = f"/adapters/{partner.id}/callback"

    async def callback(request: web.Request) -> web.Response:
        ctx = request[CTX]
        ctx.event = "service_request.event"
        ctx.meta["style"] = "sharing_api"
        body = ctx.body
        if len(body) > MAX_CALLBACK_BYTES:
            raise BodyTooLarge(f"a callback is at most {MAX_CALLBACK_BYTES} bytes")
        signed = verify_request(key, "POST", path, request.headers, body, clock())
        if signed.app_id != their_app_id:
            raise PartnerUnknown(f"X-App-Id is not the application id of {partner.id}")
        await admit_partner(request, partner, signed.nonce, signed.timestamp_ms / 1000)
        event = event_from_callback(decode_object(body))
        ctx.meta["events"] = [{"request_id": event.request_id, "status": event.status}]
        await sink(partner.id, event)
        ts = int(clock() * 1000)
        answer = answer_body(OK, None, ts)
        headers = response_headers(key, "POST", path, signed.app_id, ts, signed.nonce, answer)
        headers["Content-Type"] = CONTENT_TYPE
        return web.Response(body=answer, headers=headers)

    document(
        "post",
        path,
        {
            "summary": f"Status callbacks from {partner.id} (sharing-platform JSON)",
            "description": "Signed with X-App-Id, X-Timestamp (epoch ms), X-Nonce and "
            "X-Signature (HMAC-SHA256); the answer is signed the same way. See docs/adapters.md.",
            "parameters": [
                {"name": h, "in": "header", "required": True, "schema": {"type": "string"}}
                for h in ("X-App-Id", "X-Timestamp", "X-Nonce", "X-Signature")
            ],
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["projectNo", "projectStatus", "statusTime"],
                        }
                    }
                }
            },
            "responses": {"200": json_body({"type": "object", "required": ["code"]})},
        },
    )
    return [web.post(path, callback, name=route_name(partner.id))]
