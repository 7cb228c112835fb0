"""Cross-provincial service requests (异地受理、属地办理) as values (SPEC 5).

These are the only shapes that cross the adapter boundary: adapters translate partner
formats to and from them and nothing else leaks past.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

RequestStatus = Literal[
    "received", "accepted", "in_progress", "completed", "rejected", "needs_supplement"
]
REQUEST_STATUSES: tuple[str, ...] = (
    "received",
    "accepted",
    "in_progress",
    "completed",
    "rejected",
    "needs_supplement",
)

#: The status machine of SPEC 5: which status may follow which.
TRANSITIONS: dict[str, frozenset[str]] = {
    "received": frozenset({"accepted", "rejected"}),
    "accepted": frozenset({"in_progress", "rejected"}),
    "in_progress": frozenset({"completed", "rejected", "needs_supplement"}),
    "needs_supplement": frozenset({"in_progress", "rejected"}),
    "completed": frozenset(),
    "rejected": frozenset(),
}
FINAL_STATUSES: frozenset[str] = frozenset({"completed", "rejected"})


@dataclass(frozen=True)
class Submission:
    """What the accepting city sends the handling city (``POST /v1/service-requests``)."""

    request_id: str
    item_code: str
    applicant: dict[str, Any]
    licenses: tuple[str, ...]
    form: dict[str, Any]
    submitted_at: str
    accepting_node: str

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "item_code": self.item_code,
            "applicant": self.applicant,
            "licenses": list(self.licenses),
            "form": self.form,
            "submitted_at": self.submitted_at,
        }


@dataclass(frozen=True)
class StatusEvent:
    """One status change of a request, as the handling city reports it."""

    request_id: str
    status: RequestStatus
    at: str
    note: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "status": self.status,
            "at": self.at,
            "note": self.note,
        }


@dataclass(frozen=True)
class SubmissionAck:
    """The handling city's answer to a submission: its status now (usually ``received``)."""

    request_id: str
    status: RequestStatus
    partner_ref: str | None = None
