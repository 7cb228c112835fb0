"""Appending the exchange's own audit events (deliveries, status changes, escalations).

The audit store is shared by every process of a node. When another process (say
``tongban requests submit``) appended in between, the store rewinds to what is on disk
and asks the writer of the batch it could not place to retry (``storage_unavailable``).
Background steps have no caller to pass that on to, so they retry here, a few times.
"""

from __future__ import annotations

from gateway.audit.events import AuditEvent, AuditLog, AuditReceipt
from gateway.errors import ServiceUnavailable

__all__ = ["append_event"]

ATTEMPTS = 3


async def append_event(audit: AuditLog, event: AuditEvent) -> AuditReceipt:
    """Append ``event``; retry while the store says another writer came first."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await audit.append(event)
        except ServiceUnavailable:
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")
