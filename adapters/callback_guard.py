"""The checks every inbound partner callback passes before its content is believed.

A legacy partner calls ``/adapters/<partner id>/...`` on the node with an HMAC instead
of a request token. These are the request-token checks of SPEC 2 that still apply —
agreement dates, endpoint ACL, rate, and a message id accepted once — done in the same
order as the middleware does them for ``/v1`` calls, with the same error codes.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from aiohttp import web

from adapters.base import EventSink
from adapters.hmac_auth import FRESHNESS_SECONDS
from adapters.wire_errors import MalformedMessage
from gateway.config import NodeConfig, PartnerConfig
from gateway.errors import Forbidden, PartnerSuspended
from gateway.http.context import CTX, RATE, REPLAY

#: The ACL endpoint a status callback counts as (same as ``POST .../events``).
CALLBACK_ENDPOINT = "service_requests.events"
#: Largest callback body read (a status event is a few hundred bytes).
MAX_CALLBACK_BYTES = 64 * 1024

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


async def admit_partner(
    request: web.Request, partner: PartnerConfig, message_id: str, sent_at: float
) -> None:
    """After the MAC verified: the partner is active, allowed, within rate, and this
    message id is new (``token_replayed`` otherwise). Marks the call as the partner's."""
    ctx = request[CTX]
    ctx.partner = partner
    if not partner.active_on(datetime.now(UTC).date()):
        raise PartnerSuspended(f"partner {partner.id} is disabled or outside its agreement dates")
    if CALLBACK_ENDPOINT not in partner.endpoints:
        raise Forbidden(f"partner {partner.id} may not send status events")
    await request.app[RATE].check(partner.id, partner.rate, partner.burst)
    owner = f"{ctx.request_id}/{secrets.token_urlsafe(8)}"
    expires = sent_at + 2 * FRESHNESS_SECONDS
    await request.app[REPLAY].claim(partner.id, f"callback:{message_id}", expires, owner)


def route_name(partner_id: str) -> str:
    """``adapter:<partner>.callback`` (aiohttp names allow no digits after a dash)."""
    return f"adapter:{partner_id.replace('-', '_')}.callback"


def checked_request_id(value: str, field: str) -> str:
    """Service request ids are UUIDs (SPEC 5); anything else is refused before the sink."""
    if not _UUID.fullmatch(value):
        raise MalformedMessage(f"{field} is not a request id (a UUID)", field=field)
    return value.lower()


class CallbackRoutes(Protocol):
    """``adapters.base.InboundRoutes`` with an injectable clock for signed send times."""

    def __call__(
        self,
        node: NodeConfig,
        partner: PartnerConfig,
        sink: EventSink,
        *,
        clock: Callable[[], float] = ...,
    ) -> list[web.RouteDef]: ...
