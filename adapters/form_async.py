"""``form_async``: 株洲 Zhuzhou's legacy gateway — signed form posts, asynchronous answers.

See ``adapters.form_async_format`` for the wire format. Zhuzhou never calls us: a
submission is answered ``pending`` with a ticket, and the node's poller asks
``bj.query`` for the request's 流水记录 (``polls = True``), which this adapter turns
into ``StatusEvent``s in Zhuzhou's order.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from adapters.form_async_format import (
    CONSENT_INVALID,
    CONSENT_USED,
    CONTENT_TYPE,
    FETCH,
    GATEWAY_PATH,
    LICENSE_NOT_FOUND,
    LICENSE_STATUS_FROM_CODE,
    NOTIFY,
    OK,
    PING,
    QUERY,
    REQUEST_NOT_FOUND,
    REQUEST_STATUS_TO_CODE,
    RESULT_MEANING,
    STATUS_QUERY,
    SUBMIT,
    decode_reply,
    encode_form,
    events_from_history,
    required,
    sign_params,
)
from adapters.hmac_auth import require_hmac_key
from adapters.legacy_http import LegacyHttp, timeout_from_options
from adapters.wire_errors import MalformedMessage, ResultCodes, raise_for_result, upstream_malformed
from adapters.wire_time import (
    from_dashed_beijing,
    parse_rfc3339,
    rfc3339,
    to_dashed_beijing,
)
from gateway.config import NodeConfig, PartnerConfig
from gateway.errors import UpstreamError
from gateway.exchange.model import StatusEvent, Submission, SubmissionAck
from gateway.licenses.status import LicenseStatus
from gateway.tokens import SigningKey

_CODES = ResultCodes(
    ok=OK,
    not_found=frozenset({LICENSE_NOT_FOUND, REQUEST_NOT_FOUND}),
    consent_used=CONSENT_USED,
    consent_invalid=CONSENT_INVALID,
    meaning=RESULT_MEANING,
)


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class FormAsyncAdapter:
    """Zhuzhou, reached with signed form posts and polled for progress."""

    polls = True

    def __init__(
        self,
        node: NodeConfig,
        partner: PartnerConfig,
        token_key: SigningKey,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        del token_key  # Zhuzhou does not take request tokens
        self.partner = partner
        self._key = require_hmac_key(node, partner)
        app_id = partner.options.get("app_id", node.id.removeprefix("cn-"))
        self._app_id = str(app_id)
        self._clock = clock
        self._http = LegacyHttp(partner.id, partner.url, timeout_from_options(partner.options))

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def _call(self, method: str, business: dict[str, str], what: str) -> dict[str, Any]:
        """One signed gateway call; the answer object if ``rtn_code`` is ``"0"``."""
        params = {
            "app_id": self._app_id,
            "method": method,
            "timestamp": to_dashed_beijing(self._now()),
            "nonce": secrets.token_hex(8),
            "version": "1.0",
            "sign_type": "HMAC-SHA256",
            **business,
        }
        params["sign"] = sign_params(self._key, params)
        reply = await self._http.request(
            "POST", GATEWAY_PATH, body=encode_form(params), headers={"Content-Type": CONTENT_TYPE}
        )
        if reply.status != 200:
            raise UpstreamError(f"{self.partner.id} answered the {what} with HTTP {reply.status}")
        try:
            answer = decode_reply(reply.body)
        except MalformedMessage as exc:
            raise upstream_malformed(self.partner.id, what, exc) from exc
        code = answer["rtn_code"]
        raise_for_result(self.partner.id, what, code, _CODES)
        return answer

    async def license_status(self, identifier: str) -> LicenseStatus:
        what = "license status query"
        answer = await self._call(STATUS_QUERY, {"zzbh": identifier}, what)
        try:
            if required(answer, "zzbh") != identifier:
                raise MalformedMessage("zzbh does not echo the identifier asked", field="zzbh")
            status = LICENSE_STATUS_FROM_CODE.get(required(answer, "zzzt"))
            if status is None:
                raise MalformedMessage("zzzt is not a known 证照状态 code", field="zzzt")
            since = reason = None
            if status != "valid":
                if answer.get("bgsj"):
                    since = rfc3339(from_dashed_beijing(answer["bgsj"], field="bgsj"))
                raw_reason = answer.get("bgyy")
                reason = raw_reason if isinstance(raw_reason, str) and raw_reason else None
        except MalformedMessage as exc:
            raise upstream_malformed(self.partner.id, what, exc) from exc
        return LicenseStatus(
            identifier=identifier,
            status=status,  # type: ignore[arg-type]
            since=since,
            reason=reason,
        )

    async def license_fetch(self, qr_token: str, *, purpose: str | None = None) -> str:
        answer = await self._call(FETCH, {"sqm": qr_token, "yzsy": purpose or ""}, "license fetch")
        try:
            return required(answer, "zzwj")
        except MalformedMessage as exc:
            raise upstream_malformed(self.partner.id, "license fetch", exc) from exc

    async def submit_request(self, submission: Submission) -> SubmissionAck:
        what = "service request submission"
        try:
            submitted = to_dashed_beijing(parse_rfc3339(submission.submitted_at))
        except MalformedMessage as exc:
            raise UpstreamError(f"the submission cannot be written: {exc.detail}") from exc
        answer = await self._call(
            SUBMIT,
            {
                "sqbh": submission.request_id,
                "sxbm": submission.item_code,
                "sqr": _json_text(submission.applicant),
                "zzbh_list": ",".join(submission.licenses),
                "bdsj": _json_text(submission.form),
                "sqsj": submitted,
            },
            what,
        )
        try:
            if required(answer, "status") != "pending":
                raise MalformedMessage("status is not pending", field="status")
            ticket = required(answer, "ticket")
        except MalformedMessage as exc:
            raise upstream_malformed(self.partner.id, what, exc) from exc
        return SubmissionAck(
            request_id=submission.request_id, status="received", partner_ref=ticket
        )

    async def poll_request(self, request_id: str) -> list[StatusEvent]:
        what = "service request query"
        answer = await self._call(QUERY, {"sqbh": request_id}, what)
        try:
            if required(answer, "sqbh").lower() != request_id.lower():
                raise MalformedMessage("sqbh does not echo the request id", field="sqbh")
            return events_from_history(request_id, answer.get("lsjl"))
        except MalformedMessage as exc:
            raise upstream_malformed(self.partner.id, what, exc) from exc

    async def send_event(self, accepting_node: str, event: StatusEvent) -> None:
        try:
            at = to_dashed_beijing(parse_rfc3339(event.at, field="at"))
        except MalformedMessage as exc:
            raise UpstreamError(f"the status event cannot be written: {exc.detail}") from exc
        await self._call(
            NOTIFY,
            {
                "sqbh": event.request_id,
                "blzt": REQUEST_STATUS_TO_CODE[event.status],
                "blsj": at,
                "blyj": event.note,
            },
            "request status event",
        )

    async def health(self) -> None:
        await self._call(PING, {}, "heartbeat")

    async def close(self) -> None:
        await self._http.close()
