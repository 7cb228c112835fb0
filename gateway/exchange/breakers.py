"""The per-partner circuit breakers, kept in the exchange database.

Stored rather than in memory so that every process of a node (and ``tongban requests
list``) sees the same state, and a restart does not forget that a partner is down. Each
operation reads, applies one pure transition from ``gateway.exchange.circuit`` and
writes back inside one transaction, so two workers cannot both take the single
half-open probe.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from gateway.exchange.circuit import (
    CircuitPolicy,
    CircuitState,
    admit,
    closed,
    record_failure,
    record_success,
)
from gateway.exchange.db import ExchangeDb

__all__ = ["Breakers"]

Transition = Callable[[CircuitState], CircuitState]


def _load(db: sqlite3.Connection, partner: str) -> CircuitState:
    row = db.execute(
        "SELECT status, failures, opened_at, probe_started_at, changed_at FROM circuits "
        "WHERE partner = ?",
        (partner,),
    ).fetchone()
    if row is None:
        return closed(partner)
    return CircuitState(partner, row[0], row[1], row[2], row[3], row[4])


def _save(db: sqlite3.Connection, state: CircuitState) -> None:
    db.execute(
        "INSERT INTO circuits (partner, status, failures, opened_at, probe_started_at, "
        "changed_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (partner) DO UPDATE SET "
        "status = excluded.status, failures = excluded.failures, opened_at = excluded.opened_at, "
        "probe_started_at = excluded.probe_started_at, changed_at = excluded.changed_at",
        (
            state.partner,
            state.status,
            state.failures,
            state.opened_at,
            state.probe_started_at,
            state.changed_at,
        ),
    )


class Breakers:
    """Every partner's circuit breaker; see ``gateway.exchange.circuit``."""

    def __init__(self, db: ExchangeDb, policy: CircuitPolicy) -> None:
        self.db = db
        self.policy = policy

    async def _apply(self, partner: str, change: Transition) -> tuple[CircuitState, CircuitState]:
        def txn(db: sqlite3.Connection) -> tuple[CircuitState, CircuitState]:
            before = _load(db, partner)
            after = change(before)
            if after != before:
                _save(db, after)
            return before, after

        return await self.db.write(txn)

    async def admit(self, partner: str, now: float) -> tuple[bool, CircuitState]:
        """Whether a delivery to ``partner`` may be attempted now (see ``circuit.admit``)."""
        allowed: list[bool] = []

        def change(state: CircuitState) -> CircuitState:
            ok, after = admit(state, now, self.policy)
            allowed.append(ok)
            return after

        _, after = await self._apply(partner, change)
        return allowed[0], after

    async def succeeded(self, partner: str, now: float) -> tuple[CircuitState, CircuitState]:
        """The partner answered; returns the state before and after."""
        return await self._apply(partner, lambda s: record_success(s, now))

    async def failed(self, partner: str, now: float) -> tuple[CircuitState, CircuitState]:
        """A delivery to the partner failed; returns the state before and after."""
        return await self._apply(partner, lambda s: record_failure(s, now, self.policy))

    async def probe_now(self, partner: str, now: float) -> None:
        """An operator asked to retry: an open circuit admits its probe at once."""

        def change(state: CircuitState) -> CircuitState:
            if state.status == "open":
                opened = now - self.policy.cooldown
                return CircuitState(state.partner, "open", state.failures, opened, None, now)
            if state.status == "half_open":
                return CircuitState(
                    state.partner, "half_open", state.failures, state.opened_at,
                    now - self.policy.probe_timeout, now,
                )  # fmt: skip
            return state

        await self._apply(partner, change)

    async def states(self) -> list[CircuitState]:
        def txn(db: sqlite3.Connection) -> list[CircuitState]:
            partners = [r[0] for r in db.execute("SELECT partner FROM circuits ORDER BY partner")]
            return [_load(db, p) for p in partners]

        return await self.db.read(txn)

    async def state(self, partner: str) -> CircuitState:
        return await self.db.read(lambda db: _load(db, partner))
