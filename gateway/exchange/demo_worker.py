"""The demo clerk: a demo node works the requests it handles by itself, within seconds.

Only when the node's configuration says ``demo = true``. Every ``step`` seconds a
request moves one status along its plan, each change sent to the accepting city
through the outbox like any staff decision. Which plan a request follows is
deterministic, so the README can show each path (the plans are those of the legacy
partners' simulators, ``adapters.sim_workflow``):

- ``form.demo_outcome`` (``"complete"``, ``"supplement"`` or ``"reject"``) when given;
- otherwise the **last hex digit of the request id**: ``c`` or ``d`` needs a supplement
  (补正), ``e`` or ``f`` is rejected, anything else is completed.

=============  ===========================================================================
plan           statuses
=============  ===========================================================================
complete       received → accepted → in_progress → completed
supplement     received → accepted → in_progress → needs_supplement → in_progress → completed
reject         received → rejected (不予受理)
=============  ===========================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from gateway.errors import GatewayError
from gateway.exchange.model import RequestStatus
from gateway.exchange.requests import ServiceRequest
from gateway.exchange.service import ExchangeService
from gateway.logs import get_logger

__all__ = ["PLANS", "DemoWorker", "demo_outcome", "next_demo_status"]

_log = get_logger("tongban.exchange.demo")

DemoOutcome = Literal["complete", "supplement", "reject"]
PLANS: dict[DemoOutcome, tuple[RequestStatus, ...]] = {
    "complete": ("received", "accepted", "in_progress", "completed"),
    "supplement": (
        "received",
        "accepted",
        "in_progress",
        "needs_supplement",
        "in_progress",
        "completed",
    ),
    "reject": ("received", "rejected"),
}
NOTES: dict[RequestStatus, str] = {
    "accepted": "材料齐全，予以受理 (accepted)",
    "in_progress": "正在办理 (in progress)",
    "needs_supplement": "请补正材料：申请表签字页 (please supply the signed form page)",
    "completed": "办结 (completed)",
    "rejected": "不予受理：不符合受理条件 (not accepted: conditions not met)",
}


def demo_outcome(request_id: str, form: Mapping[str, Any]) -> DemoOutcome:
    """The plan a demo request follows (see the module docstring)."""
    explicit = form.get("demo_outcome")
    for outcome in PLANS:
        if explicit == outcome:
            return outcome
    last = request_id[-1:].lower()
    if last in ("c", "d"):
        return "supplement"
    if last in ("e", "f"):
        return "reject"
    return "complete"


def next_demo_status(record: ServiceRequest) -> RequestStatus | None:
    """The next status on the request's plan, or ``None`` when it is done or someone
    else (staff) took it off the plan."""
    plan = PLANS[demo_outcome(record.request_id, record.submission.form)]
    done = tuple(h.status for h in record.history)
    if done != plan[: len(done)] or len(done) >= len(plan):
        return None
    return plan[len(done)]


class DemoWorker:
    """Moves every open request this node handles one step per ``step`` seconds."""

    def __init__(
        self,
        *,
        service: ExchangeService,
        clock: Callable[[], float],
        step: float = 2.0,
        batch: int = 50,
    ) -> None:
        self.service = service
        self.clock = clock
        self.step = step
        self.batch = batch

    async def run_once(self) -> list[tuple[str, RequestStatus]]:
        """Advance every request whose last change is at least ``step`` old."""
        moved: list[tuple[str, RequestStatus]] = []
        ready = await self.service.store.open_requests(
            role="handling", updated_before=self.clock() - self.step, limit=self.batch
        )
        for record in ready:
            status = next_demo_status(record)
            if status is None:
                continue
            try:
                await self.service.advance(
                    record.request_id, status, note=NOTES[status], actor_sub="demo-clerk"
                )
            except GatewayError as exc:  # another process moved it first
                _log.info("demo step skipped", request_id=record.request_id, code=exc.code)
                continue
            moved.append((record.request_id, status))
        return moved
