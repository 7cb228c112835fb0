"""License calls a node sends to a partner, each recorded in its audit log (SPEC 6).

"Every request a node serves or sends" is an entry. Service-request deliveries are
recorded by the exchange's outbox with their attempt and outcome; the license status
queries and certificate-free fetches a verification makes are recorded here, once,
for every adapter style, so no adapter has to remember to do it.
"""

from __future__ import annotations

from adapters.base import PartnerAdapter
from gateway.audit.events import AuditEvent, AuditLog, Outcome
from gateway.config import PartnerConfig
from gateway.errors import GatewayError, NotFound
from gateway.exchange.model import StatusEvent, Submission, SubmissionAck
from gateway.licenses.status import LicenseStatus


class AuditedAdapter:
    """Wraps an adapter; its license calls become ``license.status_request`` and
    ``license.fetch_request`` entries (actor: this node; subject: the identifier)."""

    def __init__(self, inner: PartnerAdapter, audit: AuditLog, node_id: str) -> None:
        self.inner = inner
        self.partner: PartnerConfig = inner.partner
        self._audit = audit
        self._node = node_id

    @property
    def polls(self) -> bool:
        return bool(getattr(self.inner, "polls", False))

    async def _record(
        self, event: str, subject: str | None, outcome: Outcome, code: str | None
    ) -> None:
        await self._audit.append(
            AuditEvent(
                event=event,
                actor_type="system",
                actor_id=self._node,
                outcome=outcome,
                code=code,
                subject=subject,
                meta={"partner": self.partner.id, "adapter": self.partner.adapter},
            )
        )

    async def license_status(self, identifier: str) -> LicenseStatus:
        try:
            status = await self.inner.license_status(identifier)
        except GatewayError as exc:
            outcome: Outcome = "rejected" if isinstance(exc, NotFound) else "error"
            await self._record("license.status_request", identifier, outcome, exc.code)
            raise
        await self._record("license.status_request", identifier, "ok", None)
        return status

    async def license_fetch(self, qr_token: str, *, purpose: str | None = None) -> str:
        try:
            jws = await self.inner.license_fetch(qr_token, purpose=purpose)
        except GatewayError as exc:
            outcome: Outcome = "error" if exc.status >= 500 else "rejected"
            await self._record("license.fetch_request", None, outcome, exc.code)
            raise
        await self._record("license.fetch_request", None, "ok", None)
        return jws

    async def submit_request(self, submission: Submission) -> SubmissionAck:
        return await self.inner.submit_request(submission)  # the outbox records it

    async def poll_request(self, request_id: str) -> list[StatusEvent]:
        return await self.inner.poll_request(request_id)

    async def send_event(self, accepting_node: str, event: StatusEvent) -> None:
        await self.inner.send_event(accepting_node, event)  # the outbox records it

    async def health(self) -> None:
        await self.inner.health()

    async def close(self) -> None:
        await self.inner.close()
