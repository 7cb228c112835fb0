"""Per-partner token buckets: in-process and in a real redis-server, with a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import structlog

from gateway.errors import RateLimited
from gateway.tokens import InProcessRateLimiter, RateLimiter, RedisRateLimiter
from tests.support.redis_server import RedisServer


@dataclass
class Clock:
    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["in-process", "redis"])
async def limiter(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[RateLimiter]:
    if request.param == "in-process":
        yield InProcessRateLimiter(clock=clock)
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    redis_limiter = RedisRateLimiter(server.url, clock=clock)
    yield redis_limiter
    await redis_limiter.close()


async def _admitted(limiter: RateLimiter, n: int, partner: str = "cn-330800") -> int:
    """How many of ``n`` calls get through, at rate 1/s and burst 3."""
    passed = 0
    for _ in range(n):
        try:
            await limiter.check(partner, 1.0, 3)
            passed += 1
        except RateLimited:
            pass
    return passed


async def test_burst_then_limited_with_retry_after(limiter: RateLimiter) -> None:
    assert await _admitted(limiter, 3) == 3
    with pytest.raises(RateLimited) as caught:
        await limiter.check("cn-330800", 1.0, 3)
    assert caught.value.code == "rate_limited"
    assert caught.value.status == 429
    assert caught.value.retry_after == 1


async def test_refills_with_the_clock(limiter: RateLimiter, clock: Clock) -> None:
    assert await _admitted(limiter, 5) == 3
    clock.advance(0.5)
    with pytest.raises(RateLimited) as caught:
        await limiter.check("cn-330800", 1.0, 3)
    assert caught.value.retry_after == 1  # half a second rounds up, never 0
    clock.advance(0.5)
    assert await _admitted(limiter, 2) == 1
    clock.advance(2.0)
    assert await _admitted(limiter, 5) == 2


async def test_refill_is_capped_at_burst(limiter: RateLimiter, clock: Clock) -> None:
    assert await _admitted(limiter, 3) == 3
    clock.advance(3600)
    assert await _admitted(limiter, 10) == 3


async def test_slow_rate_gives_long_retry_after(limiter: RateLimiter) -> None:
    await limiter.check("cn-430200", 0.1, 1)
    with pytest.raises(RateLimited) as caught:
        await limiter.check("cn-430200", 0.1, 1)
    assert caught.value.retry_after == 10


async def test_partners_have_separate_buckets(limiter: RateLimiter) -> None:
    assert await _admitted(limiter, 4, "cn-330800") == 3
    assert await _admitted(limiter, 4, "cn-350800") == 3


async def test_clock_going_back_does_not_refill(limiter: RateLimiter, clock: Clock) -> None:
    assert await _admitted(limiter, 3) == 3
    clock.advance(-100)
    assert await _admitted(limiter, 1) == 0


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 3), (-1.0, 3), (1.0, 0)])
async def test_nonsense_limits_are_refused(limiter: RateLimiter, rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        await limiter.check("cn-330800", rate, burst)


async def test_redis_bucket_is_shared_between_processes(
    redis_server: RedisServer, clock: Clock
) -> None:
    first = RedisRateLimiter(redis_server.url, clock=clock)
    second = RedisRateLimiter(redis_server.url, clock=clock)
    try:
        assert await _admitted(first, 2) == 2
        assert await _admitted(second, 2) == 1
    finally:
        await first.close()
        await second.close()


async def test_redis_down_fails_soft_with_local_buckets(
    redis_server: RedisServer, clock: Clock
) -> None:
    limiter = RedisRateLimiter(redis_server.url, clock=clock, retry_redis_after=5)
    try:
        assert await _admitted(limiter, 3) == 3  # the shared bucket is now empty
        redis_server.stop()
        with structlog.testing.capture_logs() as logs:
            # Not refused for Redis trouble, but still limited by this process's bucket.
            assert await _admitted(limiter, 5) == 3
        assert [e["event"] for e in logs] == ["rate_limit.redis_unavailable"]
        assert logs[0]["log_level"] == "warning"

        redis_server.start()  # empty again; used once the retry window has passed
        clock.advance(1)
        assert await _admitted(limiter, 1) == 1  # still local: one token refilled
        clock.advance(5)
        assert await _admitted(limiter, 5) == 3  # Redis again, with a fresh bucket
    finally:
        await limiter.close()


async def test_redis_keys_expire_when_the_bucket_would_be_full(
    redis_server: RedisServer, clock: Clock
) -> None:
    limiter = RedisRateLimiter(redis_server.url, clock=clock, prefix="rl:")
    try:
        await limiter.check("cn-330800", 2.0, 10)
        # Private client access is fine in a test: it is the same server.
        ttl_ms = await limiter._redis.pttl("rl:cn-330800")
        assert 5_000 < ttl_ms <= 6_000  # 10 tokens at 2/s refill in 5 s, plus 1 s
    finally:
        await limiter.close()
