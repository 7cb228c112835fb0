"""``native``: a partner that runs Tongban itself, spoken to exactly as the SPEC says."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from gateway.config import NodeConfig, PartnerConfig
from gateway.encoding import json_loads
from gateway.errors import NotFound, UpstreamError, UpstreamTimeout
from gateway.exchange.model import REQUEST_STATUSES, StatusEvent, Submission, SubmissionAck
from gateway.http.client import PartnerClient, PartnerResponse
from gateway.licenses.errors import CONSENT_REASONS, ConsentReason, ConsentRefused
from gateway.licenses.status import STATUS_VALUES, LicenseStatus
from gateway.tokens import SigningKey


def _problem_code(resp: PartnerResponse) -> str | None:
    try:
        body = json_loads(resp.body)
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def _consent_refusal(resp: PartnerResponse) -> ConsentReason | None:
    if resp.status != 403:
        return None
    try:
        body = json_loads(resp.body)
    except ValueError:
        return None
    reason = body.get("reason") if isinstance(body, dict) else None
    return reason if reason in CONSENT_REASONS else None


def _expect_object(resp: PartnerResponse, partner: str) -> dict[str, Any]:
    body = resp.json()
    if not isinstance(body, dict):
        raise UpstreamError(f"{partner} answered with JSON that is not an object")
    return body


class NativeAdapter:
    """Signed ``/v1`` calls to another Tongban node."""

    def __init__(self, node: NodeConfig, partner: PartnerConfig, token_key: SigningKey) -> None:
        self.partner = partner
        self.client = PartnerClient(
            node_id=node.id, partner_id=partner.id, base_url=partner.url, key=token_key
        )

    def _check(self, resp: PartnerResponse, what: str) -> None:
        if resp.status == 404 and _problem_code(resp) == "not_found":
            raise NotFound(f"{self.partner.id} has no such {what}")
        if resp.status == 504:
            raise UpstreamTimeout(f"{self.partner.id} timed out answering for the {what}")
        if resp.status >= 400:
            code = _problem_code(resp) or f"HTTP {resp.status}"
            raise UpstreamError(f"{self.partner.id} refused the {what} request ({code})")

    async def license_status(self, identifier: str) -> LicenseStatus:
        resp = await self.client.call(
            "GET", f"/v1/licenses/status?identifier={quote(identifier, safe='')}"
        )
        self._check(resp, "license")
        body = _expect_object(resp, self.partner.id)
        status = body.get("status")
        if body.get("identifier") != identifier or status not in STATUS_VALUES:
            raise UpstreamError(f"{self.partner.id} answered a status without the right fields")
        since, reason = body.get("since"), body.get("reason")
        return LicenseStatus(
            identifier=identifier,
            status=status,
            since=since if isinstance(since, str) else None,
            reason=reason if isinstance(reason, str) else None,
        )

    async def license_fetch(self, qr_token: str, *, purpose: str | None = None) -> str:
        payload: dict[str, Any] = {"qr": qr_token}
        if purpose:
            payload["purpose"] = purpose
        resp = await self.client.call("POST", "/v1/licenses/fetch", json_body=payload)
        refusal = _consent_refusal(resp)
        if refusal is not None:
            # The issuer's refusal of the consent is an answer, not an outage: the
            # verifier reports qr_expired / qr_replayed instead of "undetermined".
            raise ConsentRefused(refusal, f"{self.partner.id} refused the QR code ({refusal})")
        if resp.status == 404 and _problem_code(resp) == "not_found":
            raise NotFound(f"{self.partner.id} has no such license")
        self._check(resp, "license fetch")
        body = _expect_object(resp, self.partner.id)
        license_jws = body.get("license")
        if not isinstance(license_jws, str):
            raise UpstreamError(f"{self.partner.id} answered a fetch without a license")
        return license_jws

    async def submit_request(self, submission: Submission) -> SubmissionAck:
        resp = await self.client.call(
            "POST", "/v1/service-requests", json_body=submission.to_json()
        )
        self._check(resp, "service request")
        body = _expect_object(resp, self.partner.id)
        status = body.get("status")
        if body.get("request_id") != submission.request_id or status not in REQUEST_STATUSES:
            raise UpstreamError(f"{self.partner.id} answered a submission without the right fields")
        return SubmissionAck(request_id=submission.request_id, status=status)

    async def poll_request(self, request_id: str) -> list[StatusEvent]:
        return []  # native partners push events to /v1/service-requests/{id}/events

    async def send_event(self, accepting_node: str, event: StatusEvent) -> None:
        resp = await self.client.call(
            "POST",
            f"/v1/service-requests/{quote(event.request_id, safe='')}/events",
            json_body=event.to_json(),
        )
        self._check(resp, "status event")

    async def health(self) -> None:
        resp = await self.client.call("GET", "/v1/catalog")
        self._check(resp, "catalog")

    async def close(self) -> None:
        await self.client.close()
