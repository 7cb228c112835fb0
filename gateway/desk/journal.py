"""Desk actions as audit entries (SPEC 6): the staff member is ``actor.sub``.

The HTTP middleware audits only ``/v1/`` calls, so each desk action that verifies,
looks something up or changes who is signed in appends its own entry here, *before*
the page is answered, and hands the receipt (seq and leaf) back to the page.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.audit.events import AuditEvent, AuditReceipt, Outcome
from gateway.http.context import AUDIT, CONFIG


def body_bytes(data: Any) -> bytes:
    """The compact JSON bytes a desk API answers with (digested into the entry)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


async def record(
    app: web.Application,
    event: str,
    *,
    staff: str | None,
    outcome: Outcome = "ok",
    code: str | None = None,
    subject: str | None = None,
    request: bytes | None = None,
    response: bytes | None = None,
    payload: bytes | None = None,
    meta: dict[str, Any] | None = None,
) -> AuditReceipt:
    """Append one desk entry (actor: staff of this node) and wait until it is durable."""
    return await app[AUDIT].append(
        AuditEvent(
            event=event,
            actor_type="staff",
            actor_id=app[CONFIG].id,
            actor_sub=staff,
            outcome=outcome,
            code=code,
            subject=subject,
            request=request,
            response=response,
            payload=payload,
            meta={"via": "desk", **(meta or {})},
        )
    )
