"""Typed application and request state (``web.AppKey`` / ``web.RequestKey``).

Every long-lived object a handler needs hangs off the application under one of these
keys; per-request facts (who called, what to audit) live in one ``CallContext``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.audit.events import AuditLog
from gateway.config import NodeConfig, PartnerConfig
from gateway.exchange.catalog import Catalog
from gateway.http.metrics import NodeMetrics
from gateway.tokens import KeyRegistry, RateLimiter, ReplayCache, SigningKey, VerifiedToken

if TYPE_CHECKING:  # adapters import this module for CTX; a runtime import would be a cycle
    from adapters.base import PartnerAdapter


@dataclass
class CallContext:
    """What the middleware learned about a request, and what the handler adds for the audit.

    Handlers set ``event``, ``subject``, ``payload`` and ``meta`` so that the one audit
    entry the middleware writes describes the call precisely; they never append the
    request's own entry themselves.
    """

    request_id: str
    route: str = "-"
    partner: PartnerConfig | None = None
    token: VerifiedToken | None = None
    staff: str | None = None
    body: bytes = b""
    event: str | None = None
    subject: str | None = None
    payload: bytes | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def caller(self) -> str:
        return self.partner.id if self.partner else "-"


CONFIG = web.AppKey("config", NodeConfig)
CATALOG = web.AppKey("catalog", Catalog)
AUDIT = web.AppKey("audit", AuditLog)
REGISTRY = web.AppKey("registry", KeyRegistry)
REPLAY = web.AppKey("replay", ReplayCache)
RATE = web.AppKey("rate", RateLimiter)
METRICS = web.AppKey("metrics", NodeMetrics)
TOKEN_KEY = web.AppKey("token_key", SigningKey)
#: One adapter (and so one ClientSession) per partner, by partner id.
ADAPTERS: web.AppKey[dict[str, PartnerAdapter]] = web.AppKey("adapters")
#: Returns the auditor's id when the request carries a signed-in auditor (desk session).
AuditorCheck = Callable[[web.Request], Awaitable[str | None]]
AUDITOR_CHECK: web.AppKey[AuditorCheck] = web.AppKey("auditor_check")
#: Extra readiness probes by name (database, Redis, ...); each raises when not ready.
READINESS: web.AppKey[dict[str, Callable[[], Awaitable[None]]]] = web.AppKey("readiness")

CTX = web.RequestKey("ctx", CallContext)
