"""Per-partner circuit breaker: stop hammering a partner city that is down (SPEC 5).

::

    closed --(threshold consecutive failures)--> open
    open --(cool-down passed; one delivery admitted as the probe)--> half_open
    half_open --(probe succeeds)--> closed
    half_open --(probe fails, or its answer never comes back)--> open (a new cool-down)

While a circuit is open, deliveries to that partner wait in the outbox without using
up attempts; nothing is lost, only postponed. The transitions are pure functions of a
``CircuitState`` value so the stores (SQLite, shared by every process of a node) only
read, apply and write back inside one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

__all__ = [
    "CircuitPolicy",
    "CircuitState",
    "CircuitStatus",
    "admit",
    "closed",
    "record_failure",
    "record_success",
]

CircuitStatus = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class CircuitPolicy:
    """When to open and how long to wait before probing again."""

    threshold: int = 5
    """Consecutive failed deliveries that open the circuit."""
    cooldown: float = 30.0
    """Seconds an open circuit waits before it admits one probe."""
    probe_timeout: float = 120.0
    """Seconds after which a probe that never reported back counts as failed."""

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.cooldown < 0 or self.probe_timeout <= 0:
            raise ValueError("threshold >= 1, cooldown >= 0, probe_timeout > 0")


@dataclass(frozen=True)
class CircuitState:
    """One partner's breaker as stored; times are epoch seconds."""

    partner: str
    status: CircuitStatus = "closed"
    failures: int = 0
    opened_at: float | None = None
    probe_started_at: float | None = None
    changed_at: float = 0.0

    def retry_at(self, policy: CircuitPolicy) -> float | None:
        """When an open circuit will admit its next probe (``None`` if not open)."""
        if self.status == "open" and self.opened_at is not None:
            return self.opened_at + policy.cooldown
        if self.status == "half_open" and self.probe_started_at is not None:
            return self.probe_started_at + policy.probe_timeout
        return None

    def to_json(self) -> dict[str, object]:
        return {
            "partner": self.partner,
            "state": self.status,
            "failures": self.failures,
            "opened_at": self.opened_at,
        }


def closed(partner: str) -> CircuitState:
    return CircuitState(partner=partner)


def admit(state: CircuitState, now: float, policy: CircuitPolicy) -> tuple[bool, CircuitState]:
    """Whether one delivery to the partner may be attempted now, and the new state.

    A closed circuit admits everything. An open one admits exactly one delivery (the
    probe) once the cool-down has passed, turning half-open; a half-open one admits
    nothing else until the probe reports, unless the probe has been silent longer than
    ``probe_timeout`` (its process died): then it is failed and a new probe admitted.
    """
    if state.status == "closed":
        return True, state
    if state.status == "open":
        if state.opened_at is not None and now < state.opened_at + policy.cooldown:
            return False, state
        return True, replace(state, status="half_open", probe_started_at=now, changed_at=now)
    started = state.probe_started_at
    if started is not None and now < started + policy.probe_timeout:
        return False, state
    return True, replace(state, probe_started_at=now, changed_at=now)


def record_success(state: CircuitState, now: float) -> CircuitState:
    """The partner answered: close the circuit and forget past failures."""
    if state.status == "closed" and state.failures == 0:
        return state
    return CircuitState(partner=state.partner, changed_at=now)


def record_failure(state: CircuitState, now: float, policy: CircuitPolicy) -> CircuitState:
    """A delivery failed: count it; open at the threshold, or re-open after a probe."""
    failures = state.failures + 1
    if state.status == "half_open" or (state.status == "closed" and failures >= policy.threshold):
        return CircuitState(
            partner=state.partner,
            status="open",
            failures=failures,
            opened_at=now,
            changed_at=now,
        )
    return replace(state, failures=failures, changed_at=now)
