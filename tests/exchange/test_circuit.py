"""The per-partner circuit breaker: closed -> open -> half-open -> closed (or open again)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.exchange.breakers import Breakers
from gateway.exchange.circuit import (
    CircuitPolicy,
    CircuitState,
    admit,
    closed,
    record_failure,
    record_success,
)
from gateway.exchange.db import ExchangeDb
from tests.exchange.support import QUZHOU, T0

POLICY = CircuitPolicy(threshold=3, cooldown=30.0, probe_timeout=60.0)


def test_opens_after_threshold_consecutive_failures() -> None:
    state = closed(QUZHOU)
    for _ in range(2):
        state = record_failure(state, T0, POLICY)
        assert state.status == "closed"
        assert admit(state, T0, POLICY)[0]
    state = record_failure(state, T0 + 1, POLICY)
    assert (state.status, state.failures, state.opened_at) == ("open", 3, T0 + 1)
    assert admit(state, T0 + 30, POLICY) == (False, state)


def test_a_success_in_between_resets_the_count() -> None:
    state = record_failure(record_failure(closed(QUZHOU), T0, POLICY), T0, POLICY)
    state = record_success(state, T0)
    state = record_failure(record_failure(state, T0, POLICY), T0, POLICY)
    assert state.status == "closed"


def test_half_open_admits_one_probe_then_closes_on_success() -> None:
    state = closed(QUZHOU)
    for _ in range(3):
        state = record_failure(state, T0, POLICY)
    allowed, probing = admit(state, T0 + 30, POLICY)
    assert allowed and probing.status == "half_open"
    assert admit(probing, T0 + 31, POLICY)[0] is False  # only the one probe
    assert record_success(probing, T0 + 32) == CircuitState(QUZHOU, changed_at=T0 + 32)


def test_a_failed_probe_opens_again_with_a_new_cooldown() -> None:
    state = closed(QUZHOU)
    for _ in range(3):
        state = record_failure(state, T0, POLICY)
    _, probing = admit(state, T0 + 30, POLICY)
    reopened = record_failure(probing, T0 + 31, POLICY)
    assert (reopened.status, reopened.opened_at) == ("open", T0 + 31)
    assert admit(reopened, T0 + 60, POLICY)[0] is False
    assert admit(reopened, T0 + 61, POLICY)[0] is True


def test_a_probe_that_never_reports_is_replaced_after_its_timeout() -> None:
    state = closed(QUZHOU)
    for _ in range(3):
        state = record_failure(state, T0, POLICY)
    _, probing = admit(state, T0 + 30, POLICY)
    assert admit(probing, T0 + 89, POLICY)[0] is False
    allowed, again = admit(probing, T0 + 90, POLICY)
    assert allowed and again.probe_started_at == T0 + 90


@pytest.mark.parametrize("kwargs", [{"threshold": 0}, {"cooldown": -1.0}, {"probe_timeout": 0.0}])
def test_policy_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CircuitPolicy(**kwargs)  # type: ignore[arg-type]


async def test_breaker_state_is_shared_and_survives_a_restart(tmp_path: Path) -> None:
    first = ExchangeDb(tmp_path / "exchange.db")
    try:
        breakers = Breakers(first, POLICY)
        for _ in range(3):
            await breakers.failed(QUZHOU, T0)
        assert (await breakers.state(QUZHOU)).status == "open"
    finally:
        await first.close()
    # a new process (and ``tongban requests list``) sees the same state
    second, third = ExchangeDb(tmp_path / "exchange.db"), ExchangeDb(tmp_path / "exchange.db")
    try:
        a, b = Breakers(second, POLICY), Breakers(third, POLICY)
        assert [s.status for s in await a.states()] == ["open"]
        # two processes race for the half-open probe: exactly one gets it
        results = await asyncio.gather(a.admit(QUZHOU, T0 + 30), b.admit(QUZHOU, T0 + 30))
        assert sorted(allowed for allowed, _ in results) == [False, True]
        await a.succeeded(QUZHOU, T0 + 31)
        assert (await b.state(QUZHOU)).status == "closed"
    finally:
        await second.close()
        await third.close()


async def test_an_operator_retry_lets_an_open_circuit_probe_now(tmp_path: Path) -> None:
    db = ExchangeDb(tmp_path / "exchange.db")
    try:
        breakers = Breakers(db, POLICY)
        for _ in range(3):
            await breakers.failed(QUZHOU, T0)
        assert (await breakers.admit(QUZHOU, T0 + 1))[0] is False
        await breakers.probe_now(QUZHOU, T0 + 1)
        allowed, state = await breakers.admit(QUZHOU, T0 + 1)
        assert allowed and state.status == "half_open"
    finally:
        await db.close()
