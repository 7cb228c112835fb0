"""How a simulated partner works the requests it handles, by itself.

Every request is received, then moves one step every ``step_seconds`` along a plan
fixed at submission by a deterministic rule on its request id, so a test (or a demo
presenter) can know the outcome in advance and any restart resumes the same plan:

    last hex digit of the request id (the same rule as a Tongban demo node's clerk,
    ``gateway.exchange.demo_worker.demo_outcome``, so the README tells one rule):
    0-b  完成   accepted -> in_progress -> completed
    c-d  补正   accepted -> in_progress -> needs_supplement -> in_progress -> completed
    e-f  不予受理 rejected (straight from received)

Push-style simulators then owe the accepting city one callback per step. Callbacks go
out in order per request, are retried with capped exponential backoff while the
accepting node is down (never lost: they wait in SQLite), and are dropped only when
the node refuses them outright (a 4xx other than 429).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from adapters.sim_store import DueCallback, PlannedStep, SimStore
from gateway.exchange.demo_worker import demo_outcome
from gateway.logs import get_logger

_log = get_logger("tongban.simulator")

Outcome = Literal["complete", "supplement", "reject"]
Delivery = Literal["delivered", "retry", "refused"]
#: Sends one callback; says whether it landed, should be retried, or was refused.
Deliver = Callable[[DueCallback], Awaitable[Delivery]]

PLANS: dict[Outcome, tuple[PlannedStep, ...]] = {
    "complete": (
        PlannedStep("accepted", "材料齐全，予以受理"),
        PlannedStep("in_progress", "已转审批科室办理"),
        PlannedStep("completed", "办结：准予办理，结果已寄递"),
    ),
    "supplement": (
        PlannedStep("accepted", "予以受理"),
        PlannedStep("in_progress", "已转审批科室办理"),
        PlannedStep("needs_supplement", "请补正：申请表签字页不清晰"),
        PlannedStep("in_progress", "补正材料已收到，继续办理"),
        PlannedStep("completed", "办结：准予办理，结果已寄递"),
    ),
    "reject": (PlannedStep("rejected", "不予受理：申请事项不属于本机关受理范围"),),
}


def planned_outcome(request_id: str) -> Outcome:
    """The deterministic rule above."""
    return demo_outcome(request_id, {})


def plan_for(request_id: str) -> tuple[PlannedStep, ...]:
    return PLANS[planned_outcome(request_id)]


@dataclass(frozen=True)
class SimTiming:
    """How fast a simulator works: demo defaults; tests pass ``step_seconds=0``."""

    step_seconds: float = 2.0
    poll_seconds: float = 0.5
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 30.0


class SimWorkflow:
    """Moves requests along their plans and delivers the callbacks they cause."""

    def __init__(
        self,
        store: SimStore,
        timing: SimTiming,
        clock: Callable[[], float] = time.time,
        deliver: Deliver | None = None,
    ) -> None:
        self.store = store
        self.timing = timing
        self.clock = clock
        self.deliver = deliver
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    def wake(self) -> None:
        """Run a pass now (a request arrived) instead of at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        """One pass: advance every due request, then deliver due callbacks. Returns the
        number of steps taken and callbacks settled (0 when there was nothing to do)."""
        async with self._lock:
            now = self.clock()
            push = self.deliver is not None
            done = self.store.advance_due(now, self.timing.step_seconds, push=push)
            if self.deliver is not None:
                for due in self.store.due_callbacks(now):
                    outcome = await self.deliver(due)
                    if outcome == "retry":
                        delay = min(
                            self.timing.retry_base_seconds * 2 ** min(due.attempts, 16),
                            self.timing.retry_max_seconds,
                        )
                        self.store.callback_retry(due.request_id, due.entry.seq, now + delay)
                    else:
                        self.store.callback_done(due.request_id, due.entry.seq, outcome)
                        done += 1
            return done

    async def run_forever(self) -> None:
        """The simulator's background loop; ends when cancelled at shutdown. A failing
        pass is logged and retried at the next poll rather than ending the loop."""
        while True:
            try:
                busy = await self.run_once()
            except Exception:
                _log.exception("simulator pass failed")
                busy = 0
            if busy:  # zero-length steps: keep going while there is work
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.timing.poll_seconds)
            self._wake.clear()
