"""Per-partner rate limiting: a token bucket of ``burst`` requests refilled at ``rate_per_s``.

A partner over its rate gets ``rate_limited`` (429) with ``Retry-After``: the whole
seconds until one more request would be let through, at least 1.

The limiter protects capacity, not safety. So unlike the replay cache, which fails
closed, ``RedisRateLimiter`` fails *soft* when Redis cannot answer: it logs a warning
and limits with a bucket in this process until Redis is tried again. A Redis outage
then loosens the limit (each process enforces it on its own) instead of turning into
a refusal of every partner call.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
import structlog
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from gateway.errors import RateLimited
from gateway.tokens.replay import redis_from_url

_log = structlog.get_logger(__name__)


class RateLimiter(Protocol):
    """Admits one request of ``partner`` or raises ``RateLimited``."""

    async def check(self, partner: str, rate_per_s: float, burst: int) -> None:
        """Take one token from the partner's bucket; ``RateLimited`` when it is empty."""
        ...


def _check_limits(rate_per_s: float, burst: int) -> None:
    # A zero rate would never refill; refuse it loudly rather than block a partner forever.
    if not rate_per_s > 0 or burst < 1:
        raise ValueError(f"a rate limit needs rate_per_s > 0 and burst >= 1: {rate_per_s}/{burst}")


def _limited(partner: str, wait_s: float) -> RateLimited:
    retry_after = max(1, math.ceil(wait_s))
    return RateLimited(
        f"partner {partner} is over its request rate; retry in {retry_after} s",
        retry_after=retry_after,
    )


class InProcessRateLimiter:
    """Token buckets in this process: exact for a one-process node, cheap, no I/O.

    One bucket per partner name; only authenticated partners reach the limiter, so
    the table is as large as the partner list. ``clock`` is monotonic seconds.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # partner -> (tokens, updated)

    def take(self, partner: str, rate_per_s: float, burst: int) -> None:
        """Synchronous core of ``check``; raises ``RateLimited`` when the bucket is empty."""
        _check_limits(rate_per_s, burst)
        now = self._clock()
        tokens, updated = self._buckets.get(partner, (float(burst), now))
        tokens = min(float(burst), tokens + max(0.0, now - updated) * rate_per_s)
        if tokens < 1.0:
            self._buckets[partner] = (tokens, now)
            raise _limited(partner, (1.0 - tokens) / rate_per_s)
        self._buckets[partner] = (tokens - 1.0, now)

    async def check(self, partner: str, rate_per_s: float, burst: int) -> None:
        """Take one token; see ``RateLimiter.check``."""
        self.take(partner, rate_per_s, burst)


# Atomic token bucket. Times are integer milliseconds so they survive Lua's number to
# string conversion exactly; returns 0 when admitted, else the milliseconds to wait.
# The key expires once the bucket would be full again, as a missing key means "full".
_BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = tokens + (now - ts) * rate / 1000
  ts = now
end
tokens = math.min(burst, tokens)
local wait_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait_ms = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', ts)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait_ms
"""


class RedisRateLimiter:
    """Token buckets in Redis, shared by every process of a node (one Lua call each).

    The bucket's clock is ``clock`` (epoch seconds) of the calling process, passed into
    the script: processes of one node share a host or NTP, and a process whose clock is
    behind merely sees no refill (elapsed time is never negative).

    When Redis fails, requests are limited by an ``InProcessRateLimiter`` for
    ``retry_redis_after`` seconds, with one warning per outage window.
    """

    def __init__(
        self,
        redis: str | aioredis.Redis,
        *,
        prefix: str = "tongban:rate:",
        clock: Callable[[], float] = time.time,
        retry_redis_after: float = 5.0,
    ) -> None:
        if isinstance(redis, str):
            self._redis = redis_from_url(redis)
            self._owns_client = True
        else:
            self._redis = redis
            self._owns_client = False
        self._script: AsyncScript = self._redis.register_script(_BUCKET_SCRIPT)
        self._prefix = prefix
        self._clock = clock
        self._retry_redis_after = retry_redis_after
        self._redis_down_until = -math.inf
        self._fallback = InProcessRateLimiter(clock=clock)

    async def check(self, partner: str, rate_per_s: float, burst: int) -> None:
        """Take one token; see ``RateLimiter.check``. Never raises for Redis trouble."""
        _check_limits(rate_per_s, burst)
        now = self._clock()
        if now < self._redis_down_until:
            self._fallback.take(partner, rate_per_s, burst)
            return
        try:
            wait_ms = int(
                await self._script(
                    keys=[f"{self._prefix}{partner}"],
                    args=[repr(float(rate_per_s)), burst, int(now * 1000)],
                )
            )
        except (RedisError, OSError) as exc:
            self._redis_down_until = now + self._retry_redis_after
            _log.warning(
                "rate_limit.redis_unavailable",
                error=type(exc).__name__,
                fallback="in-process buckets",
                retry_in_s=self._retry_redis_after,
            )
            self._fallback.take(partner, rate_per_s, burst)
            return
        if wait_ms > 0:
            raise _limited(partner, wait_ms / 1000)

    async def close(self) -> None:
        """Close the client if this limiter created it."""
        if self._owns_client:
            await self._redis.aclose()
