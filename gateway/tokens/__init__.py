"""Request tokens (SPEC 2): minting, verification, the replay cache and rate limits.

Pure domain code with no HTTP in it; the aiohttp middleware calls, in order,
``verify_request_token`` -> ``ReplayCache.claim`` -> ``RateLimiter.check``.
"""

from gateway.tokens.mint import (
    MAX_LIFETIME,
    TOKEN_TYPE,
    SigningKey,
    mint_request_token,
)
from gateway.tokens.ratelimit import InProcessRateLimiter, RateLimiter, RedisRateLimiter
from gateway.tokens.registry import (
    KeyRegistry,
    RegisteredKey,
    alg_for_key,
    jwk_thumbprint,
    public_jwk,
)
from gateway.tokens.replay import (
    RedisReplayCache,
    ReplayCache,
    SqliteReplayCache,
    redis_from_url,
)
from gateway.tokens.verify import (
    CLOCK_LEEWAY,
    MAX_TOKEN_BYTES,
    VerifiedToken,
    verify_request_token,
)

__all__ = [
    "CLOCK_LEEWAY",
    "MAX_LIFETIME",
    "MAX_TOKEN_BYTES",
    "TOKEN_TYPE",
    "InProcessRateLimiter",
    "KeyRegistry",
    "RateLimiter",
    "RedisRateLimiter",
    "RedisReplayCache",
    "RegisteredKey",
    "ReplayCache",
    "SigningKey",
    "SqliteReplayCache",
    "VerifiedToken",
    "alg_for_key",
    "jwk_thumbprint",
    "mint_request_token",
    "public_jwk",
    "redis_from_url",
    "verify_request_token",
]
