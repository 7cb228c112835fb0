"""How a request is shown: its deadline on a node's calendar and its public JSON.

Pure functions of the record, the catalog and the calendar, shared by the HTTP API
(``GET /v1/service-requests/{id}``) and the CLI, which reads the stores directly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.exchange.catalog import Catalog
from gateway.exchange.deadlines import Deadline, WorkCalendar, compute_deadline
from gateway.exchange.requests import ServiceRequest
from gateway.exchange.validation import format_rfc3339, parse_rfc3339

__all__ = ["request_deadline", "request_view"]


def _time(epoch: float) -> str:
    return format_rfc3339(datetime.fromtimestamp(epoch, UTC))


def request_deadline(
    record: ServiceRequest, catalog: Catalog, calendar: WorkCalendar
) -> Deadline | None:
    """The request's deadline on ``calendar`` (``None`` if its item left the catalog)."""
    item = catalog.item(record.item_code)
    if item is None:
        return None
    submitted = parse_rfc3339(record.submission.submitted_at)
    return compute_deadline(submitted, item.time_limit_days, calendar)


def request_view(
    record: ServiceRequest, catalog: Catalog, calendar: WorkCalendar
) -> dict[str, Any]:
    """Status, history, deadline and escalations; no applicant data (both cities involved
    already hold it, and nobody else may read the request)."""
    deadline = request_deadline(record, catalog, calendar)
    item = catalog.item(record.item_code)
    return {
        "request_id": record.request_id,
        "item_code": record.item_code,
        "item_name": item.name if item else None,
        "handling_node": record.handling_node,
        "accepting_node": record.accepting_node,
        "status": record.status,
        "submitted_at": record.submission.submitted_at,
        "updated_at": _time(record.updated_at),
        "history": [h.to_json() for h in record.history],
        "deadline": deadline.to_json() if deadline else None,
        "escalations": [
            {"level": e.level, "due_at": e.due_at, "fired_at": _time(e.fired_at)}
            for e in record.escalations
        ],
    }
