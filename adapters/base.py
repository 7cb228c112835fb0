"""The adapter contract: what the node needs from any partner city, whatever it runs.

A partner style is one module in ``adapters/`` implementing ``PartnerAdapter`` plus
its simulator. Adapters translate both ways and never let a partner format leak past
them: callers see only ``LicenseStatus``, license JWS strings, ``Submission``,
``SubmissionAck`` and ``StatusEvent``, and errors from ``gateway.errors``:

* ``NotFound`` — the partner says it never issued that license / has no such request;
* ``ConsentRefused`` (``license_fetch`` only) — the issuer refused the QR token as
  consent (``qr_expired``, ``qr_replayed``, ``signature_invalid``);
* ``UpstreamError`` (502) — unreachable, refused, or answered something malformed
  (bad XML, wrong charset, missing fields, bad HMAC);
* ``UpstreamTimeout`` (504) — no answer in time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from gateway.config import NodeConfig, PartnerConfig
from gateway.exchange.model import StatusEvent, Submission, SubmissionAck
from gateway.licenses.status import LicenseStatus
from gateway.tokens import SigningKey

#: Where an adapter hands status events it receives by callback (the exchange service).
EventSink = Callable[[str, StatusEvent], Awaitable[None]]


class PartnerAdapter(Protocol):
    """One partner city, reached in its own style."""

    partner: PartnerConfig

    async def license_status(self, identifier: str) -> LicenseStatus:
        """The issuing city's status of a license; ``NotFound`` if it never issued it."""
        ...

    async def license_fetch(self, qr_token: str, *, purpose: str | None = None) -> str:
        """The signed license (compact JWS) the holder consented to with a QR token."""
        ...

    async def submit_request(self, submission: Submission) -> SubmissionAck:
        """Deliver a service request; idempotent per ``request_id``."""
        ...

    async def poll_request(self, request_id: str) -> list[StatusEvent]:
        """Status events the partner has for a request (polling partners; others: [])."""
        ...

    async def send_event(self, accepting_node: str, event: StatusEvent) -> None:
        """Tell the accepting city (this partner) that a request it sent us changed."""
        ...

    async def health(self) -> None:
        """Raise an upstream error unless the partner answers."""
        ...

    async def close(self) -> None: ...


class AdapterFactory(Protocol):
    def __call__(
        self, node: NodeConfig, partner: PartnerConfig, token_key: SigningKey
    ) -> PartnerAdapter: ...


class InboundRoutes(Protocol):
    """Adapters whose partner calls us in its own style (callbacks) mount routes under
    ``/adapters/<partner id>/`` and hand translated events to the sink."""

    def __call__(
        self, node: NodeConfig, partner: PartnerConfig, sink: EventSink
    ) -> list[web.RouteDef]: ...
